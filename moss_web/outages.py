"""Replies for server failures: 503 while the database is unavailable, 500 otherwise.

The API maps exceptions to these in moss_web/api.py. Everything else (the
console, the supervisor pages, admin) gets them from `server_error`, Django's
handler500: a short page that needs neither the database nor the signed-in user.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

# Connection refused or lost, no pooled connection in time (moss_web/postgres),
# the server shutting down, a statement over DB_STATEMENT_TIMEOUT: all retryable.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Failure:
    status: int
    code: str
    message: str

    def headers(self) -> dict[str, str]:
        if self.status == 503:
            return {"Retry-After": str(settings.MOSS_RETRY_AFTER_SECONDS)}
        return {}


def failure_for(exc: BaseException | None) -> Failure:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return Failure(503, "database_unavailable", "the database is unavailable; retry later")
    return Failure(500, "server_error", "internal server error; it has been logged")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: called while Django handles an uncaught exception (already logged)."""
    failure = failure_for(sys.exc_info()[1])
    response: HttpResponse
    if request.path.startswith("/api/"):
        body = {"error": failure.code, "message": failure.message}
        response = JsonResponse(body, status=failure.status)
    else:
        html = render_to_string("errors/server_error.html", {"failure": failure})
        response = HttpResponse(html, status=failure.status)
    for name, value in failure.headers().items():
        response[name] = value
    return response
