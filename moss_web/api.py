"""API v1: the NinjaAPI instance, its auth, and one error shape for every error."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from moss_web.outages import DATABASE_UNAVAILABLE, failure_for
from sessions_app.api.auth import ProjectKeyAuth
from sessions_app.api.sessions import router as sessions_router
from sessions_app.errors import DomainError

api = NinjaAPI(
    title="moss-web API",
    version="1",
    description="Sessions, turns, search and handoffs. Authenticate with the "
    "X-Project-Id and X-Project-Key headers.",
    auth=ProjectKeyAuth(),
    urls_namespace="api-v1",
)
api.add_router("/", sessions_router)

logger = logging.getLogger(__name__)


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, {"error": code, "message": message}, status=status)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "unauthorized", "missing or invalid X-Project-Id / X-Project-Key")


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
