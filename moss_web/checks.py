"""Django's deploy checks, run against the middleware as it really is.

moss_web.middleware's classes are Django's own (subclasses that run on the event loop), but
Django's security checks look for Django's dotted paths in MIDDLEWARE: they would report the
middleware missing (W001, W002, W003) and skip every check that depends on it (HSTS, SSL
redirect, secure cookies, ...). This check runs them as if Django's paths were listed; the
three "missing" warnings are silenced in settings, since this check covers what they guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.checks.security import base, csrf, sessions
from django.test.utils import override_settings

DJANGO_PATHS = {
    "moss_web.middleware.SecurityMiddleware": "django.middleware.security.SecurityMiddleware",
    "moss_web.middleware.SessionMiddleware": "django.contrib.sessions.middleware.SessionMiddleware",
    "moss_web.middleware.CsrfViewMiddleware": "django.middleware.csrf.CsrfViewMiddleware",
    "moss_web.middleware.XFrameOptionsMiddleware": (
        "django.middleware.clickjacking.XFrameOptionsMiddleware"
    ),
}

MIDDLEWARE_DEPENDENT_CHECKS = (
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
    sessions.check_session_cookie_secure,
    sessions.check_session_cookie_httponly,
)


@checks.register(checks.Tags.security, deploy=True)
def security_with_the_async_middleware(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[checks.CheckMessage]:
    middleware = [DJANGO_PATHS.get(path, path) for path in settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        return [
            message
            for check in MIDDLEWARE_DEPENDENT_CHECKS
            for message in check(app_configs=app_configs)
        ]
