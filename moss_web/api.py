"""API v1: the NinjaAPI instance, its auth, and one error shape for every error."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from moss_web.outages import DATABASE_UNAVAILABLE, failure_for
from sessions_app.api.auth import ProjectKeyAuth
from sessions_app.api.events import router as events_router
from sessions_app.api.sessions import router as sessions_router
from sessions_app.api.throttles import ApiKeyRateThrottle, AuthFailuresThrottled
from sessions_app.api.webhooks import router as webhooks_router
from sessions_app.errors import DomainError


def docs_switch(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs page and the OpenAPI schema exist only while MOSS_API_DOCS is on."""

    @wraps(view)
    def switched(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.MOSS_API_DOCS:
            raise Http404("API docs are switched off (MOSS_API_DOCS=false)")
        return view(request, *args, **kwargs)

    return switched


api = NinjaAPI(
    title="moss-web API",
    version="1",
    description="Sessions, turns, search, handoffs, the event stream and webhooks. "
    "Authenticate with the "
    "X-Project-Id and X-Project-Key headers.",
    auth=ProjectKeyAuth(),
    throttle=[ApiKeyRateThrottle()],
    urls_namespace="api-v1",
    docs_decorator=docs_switch,
)
api.add_router("/", sessions_router)
api.add_router("/", events_router)
api.add_router("/", webhooks_router)

logger = logging.getLogger(__name__)


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, {"error": code, "message": message}, status=status)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "unauthorized", "missing or invalid X-Project-Id / X-Project-Key")


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = max(1, math.ceil(exc.wait)) if exc.wait is not None else None
    if isinstance(exc, AuthFailuresThrottled):
        message = "too many failed authentications from this address"
    else:
        message = "too many requests for this API key"
    response = _error(request, 429, "throttled", message + (f"; retry in {wait} s" if wait else ""))
    if wait is not None:
        response["Retry-After"] = str(wait)
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors:
        location = ".".join(
            str(part) for part in error.get("loc", ()) if part not in ("body", "payload")
        )
        problems.append(f"{location}: {error.get('msg', 'invalid')}")
    return _error(request, 422, "invalid_input", "; ".join(problems) or "invalid input")


@api.exception_handler(RequestDataTooBig)
def body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(
        request, 413, "too_large", f"request body is larger than the limit of {limit} bytes"
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if message == "Cannot parse request body":
        message = "request body is not valid JSON"
    return _error(request, exc.status_code, "invalid_input", message)


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """503 with Retry-After: the request may be retried as it is."""
    logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
    return _server_failure(request, exc)


for _exc_class in DATABASE_UNAVAILABLE:
    api.exception_handler(_exc_class)(database_unavailable)


@api.exception_handler(Exception)
def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Anything else: logged with its traceback, and a 500 in the one error shape."""
    logger.error("server error on %s %s", request.method, request.path, exc_info=exc)
    return _server_failure(request, exc)


def _server_failure(request: HttpRequest, exc: Exception) -> HttpResponse:
    failure = failure_for(exc)
    response = _error(request, failure.status, failure.code, failure.message)
    for name, value in failure.headers().items():
        response[name] = value
    return response
