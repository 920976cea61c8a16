"""API v1: the NinjaAPI instance, its auth, and one error shape for every error."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.operation import PathView
from ninja.parser import Parser

from moss_web.outages import DATABASE_UNAVAILABLE, failure_for
from sessions_app.api.auth import ProjectKeyAuth
from sessions_app.api.events import router as events_router
from sessions_app.api.sessions import router as sessions_router
from sessions_app.api.throttles import ApiKeyRateThrottle, AuthFailuresThrottled
from sessions_app.api.webhooks import router as webhooks_router
from sessions_app.errors import DomainError
from sessions_app.validation import unpaired_surrogate_at


def docs_switch(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs page and the OpenAPI schema exist only while MOSS_API_DOCS is on."""

    @wraps(view)
    def switched(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.MOSS_API_DOCS:
            raise Http404("API docs are switched off (MOSS_API_DOCS=false)")
        return view(request, *args, **kwargs)

    return switched


class BodyRejected(Exception):
    """A JSON body that parses but cannot be taken: a 422 naming where (ninja answers any
    parser error with a 400 "Cannot parse request body", raised from it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# A JSON escape of a UTF-16 surrogate. Most bodies hold none, and are not walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class MossParser(Parser):
    """Two checks ninja does not make: a query parameter that is not a list must be given
    once (ninja would take the last of several values silently), and no string of a JSON
    body may hold an unpaired surrogate (`"\\ud800"`: UTF-8, so PostgreSQL, cannot hold
    it; pydantic let some through)."""

    def parse_body(self, request: HttpRequest) -> Any:
        data = super().parse_body(request)
        if _SURROGATE_ESCAPE.search(request.body):
            where = unpaired_surrogate_at(data)
            if where is not None:
                raise BodyRejected(f"{where}: must not contain unpaired surrogates")
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        for key in data:
            if key not in list_fields and len(data.getlist(key)) > 1:
                raise HttpError(422, f"{key}: must be given once")
        return super().parse_querydict(data, list_fields, request)


class MossApi(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        """Ninja's schema, plus the X-Project-Id header that goes with every key
        (ninja documents one header per auth class), so the docs page and schema-driven
        clients send both."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemes = schema.get("components", {}).get("securitySchemes", {})
        if KEY_SCHEME in schemes:
            schemes[PROJECT_SCHEME] = {"type": "apiKey", "in": "header", "name": "X-Project-Id"}
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for requirement in operation.get("security", []):
                        if KEY_SCHEME in requirement:
                            requirement[PROJECT_SCHEME] = []
        return schema

    def _get_urls(self) -> list[Any]:
        urls = super()._get_urls()
        # The path views serving those URLs (ninja's bound copies of the routers').
        for bound in self._get_bound_routers():
            for view in bound.path_operations.values():
                view._not_allowed = partial(method_not_allowed, view)  # type: ignore[method-assign]
        return urls


KEY_SCHEME = ProjectKeyAuth.__name__
PROJECT_SCHEME = "ProjectIdHeader"

api = MossApi(
    title="moss-web API",
    version="1",
    description="Sessions, turns, search, handoffs, the event stream and webhooks. "
    "Authenticate with the "
    "X-Project-Id and X-Project-Key headers.",
    auth=ProjectKeyAuth(),
    parser=MossParser(),
    throttle=[ApiKeyRateThrottle()],
    urls_namespace="api-v1",
    docs_decorator=docs_switch,
)
api.add_router("/", sessions_router)
api.add_router("/", events_router)
api.add_router("/", webhooks_router)


def method_not_allowed(view: PathView) -> HttpResponse:
    """405 in the API's error shape, with Allow (django-ninja answers in plain text)."""
    allowed = sorted({method for operation in view.operations for method in operation.methods})
    response = JsonResponse(
        {
            "error": "method_not_allowed",
            "message": f"this path takes {', '.join(allowed)}",
        },
        status=405,
    )
    response["Allow"] = ", ".join(allowed)
    return response


logger = logging.getLogger(__name__)
# Where a parameter came from, which the message leaves out: "docs.1.text", "X-Agent".
_SOURCES = {"body", "query", "path", "header", "cookie"}


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
    problems = [f"{_location(error.get('loc', ()))}: {_problem(error)}" for error in exc.errors]
    return _error(request, 422, "invalid_input", "; ".join(problems) or "invalid input")


def _location(loc: Any) -> str:
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        # A body's location also names the operation's parameter ("payload").
        parts = parts[2:] if parts[0] == "body" else parts[1:]
    return ".".join(str(part) for part in parts)


def _problem(error: dict[str, Any]) -> str:
    """Pydantic's message, reworded to name the limit (ninja leaves the input value out)."""
    kind = error.get("type")
    context: dict[str, Any] = error.get("ctx") or {}
    if kind == "value_error" and "error" in context:
        # Our own validators raise ValueError; pydantic would prefix "Value error, ".
        return str(context["error"])
    if kind == "string_too_short":
        minimum = context.get("min_length")
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    if kind in ("too_short", "too_long"):
        count = context.get("actual_length")
        if kind == "too_short":
            return f"has {count} items, at least {context.get('min_length')} required"
        return f"has {count} items, the limit is {context.get('max_length')}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    return str(error.get("msg", "invalid"))


@api.exception_handler(RequestDataTooBig)
def body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(
        request, 413, "too_large", f"request body is larger than the limit of {limit} bytes"
    )


@api.exception_handler(TooManyFieldsSent)
def too_many_fields(request: HttpRequest, exc: TooManyFieldsSent) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    return _error(
        request, 422, "invalid_input", f"too many query or form parameters: at most {limit}"
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, BodyRejected):
        return _error(request, 422, "invalid_input", exc.__cause__.message)
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
