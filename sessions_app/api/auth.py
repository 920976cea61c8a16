from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyHeader

from sessions_app.actors import Actor
from sessions_app.api.throttles import AuthFailuresThrottled, AuthFailureThrottle
from sessions_app.models import ApiKey
from sessions_app.services.projects import api_key_authenticate


class ProjectKeyAuth(APIKeyHeader):
    """Project id in ``X-Project-Id``, project key in ``X-Project-Key``.

    An address that failed too often is refused (429) before its key is checked.
    """

    param_name = "X-Project-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        failures = AuthFailureThrottle()
        wait = failures.retry_after(request)
        if wait is not None:
            raise AuthFailuresThrottled(wait)
        project_id = request.headers.get("X-Project-Id", "")
        api_key = api_key_authenticate(project_public_id=project_id, raw_key=key or "")
        if api_key is None:
            failures.failure_record(request)
            return None
        request.api_key = api_key  # type: ignore[attr-defined]
        return api_key


def request_key(request: HttpRequest) -> ApiKey:
    """The key an authenticated API request came with (its project is the caller's)."""
    return request.auth  # type: ignore[attr-defined,no-any-return]


def request_actor(request: HttpRequest, agent: str) -> Actor:
    """The bot behind an API request, named for the audit log by its X-Agent header, which
    the operation declares (`agent: XAgent`) so that it is checked."""
    return Actor.for_key(request_key(request), agent=agent)
