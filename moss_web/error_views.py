"""Django's error views, except under /api/, where every error is the API's JSON shape.

Errors inside an API operation are answered by moss_web/api.py; these cover
what happens before or around one: an unknown path, a request Django rejects
(a bad Host header). Uncaught failures go to moss_web/outages.server_error.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404
from django.views import defaults

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(400, "bad_request", "the request was rejected before reaching the API")
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        # A view's own Http404 says why (the docs switched off); the URL resolver's does not.
        reason = "" if isinstance(exception, Resolver404) else str(exception)
        return _json(404, "not_found", reason or f"no API operation at {request.path}")
    return defaults.page_not_found(request, exception)
