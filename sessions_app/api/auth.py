from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyHeader

from sessions_app.services.projects import api_key_authenticate


class ProjectKeyAuth(APIKeyHeader):
    """Project id in ``X-Project-Id``, project key in ``X-Project-Key``."""

    param_name = "X-Project-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        project_id = request.headers.get("X-Project-Id", "")
        api_key = api_key_authenticate(project_public_id=project_id, raw_key=key or "")
        if api_key is None:
            return None
        request.api_key = api_key  # type: ignore[attr-defined]
        return api_key
