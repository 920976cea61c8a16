"""API throttles: requests per API key, failed authentications per client address.

Both are django-ninja's SimpleRateThrottle: a sliding window of timestamps in
Django's default cache (Redis when REDIS_URL is set, so all server processes
share one count; local memory otherwise). Rates come from settings on every
request (MOSS_API_KEY_RATE, MOSS_API_AUTH_FAILURE_RATE), so they can change
under override_settings. When the cache cannot be reached the throttles let
requests through: losing the limit for a while beats failing every call.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import Throttled
from ninja.throttling import SimpleRateThrottle
from redis.exceptions import RedisError

from sessions_app.models import ApiKey

log = logging.getLogger(__name__)

CACHE_ERRORS = (RedisError, OSError)


class AuthFailuresThrottled(Throttled):
    """Too many failed authentications from one client address."""


class _SettingsRateThrottle(SimpleRateThrottle):
    setting = ""

    def __init__(self) -> None:
        # ninja parses a rate once, at construction; ours is read per request.
        self.rate = None
        self.num_requests, self.duration = None, None

    def _configured(self) -> bool:
        rate = getattr(settings, self.setting)
        if not rate:
            return False
        self.num_requests, self.duration = self.parse_rate(rate)
        return True


class ApiKeyRateThrottle(_SettingsRateThrottle):
    """Requests per API key (MOSS_API_KEY_RATE). Runs after authentication."""

    scope = "api_key"
    setting = "MOSS_API_KEY_RATE"

    def get_cache_key(self, request: HttpRequest) -> str | None:
        api_key = getattr(request, "auth", None)
        if not isinstance(api_key, ApiKey):
            return None
        # The key's hash, not its pk: unique across databases that share one Redis.
        return self.cache_format % {"scope": self.scope, "ident": api_key.key_hash[:32]}

    def allow_request(self, request: HttpRequest) -> bool:
        if not self._configured():
            return True
        try:
            return super().allow_request(request)
        except CACHE_ERRORS:
            log.warning("throttle cache unreachable: API key rate not enforced", exc_info=True)
            return True


class AuthFailureThrottle(_SettingsRateThrottle):
    """Failed authentications per client address (MOSS_API_AUTH_FAILURE_RATE).

    Only failures are counted; once an address has used them up, every attempt
    from it is refused, with the right key too, until the oldest failure ages out.
    """

    scope = "api_auth_failures"
    setting = "MOSS_API_AUTH_FAILURE_RATE"

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request: HttpRequest) -> bool:
        if not self._configured():
            return False
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = time.time()
        assert self.duration is not None
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def retry_after(self, request: HttpRequest) -> int | None:
        """Seconds until this address may try again; None while it may try now."""
        try:
            if not self._load(request) or len(self.history) < (self.num_requests or 0):
                return None
        except CACHE_ERRORS:
            log.warning("throttle cache unreachable: auth failures not limited", exc_info=True)
            return None
        assert self.duration is not None
        return max(1, math.ceil(self.duration - (self.now - self.history[-1])))

    def failure_record(self, request: HttpRequest) -> None:
        try:
            if self._load(request):
                self.throttle_success()
        except CACHE_ERRORS:
            log.warning("throttle cache unreachable: auth failure not recorded", exc_info=True)
