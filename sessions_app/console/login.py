"""Sign-in lockouts (django-axes): the sign-in page again, with why and for how long."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; the right password is refused too."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    wait = f" Try again in {max(1, round(seconds / 60))} minutes." if seconds else ""
    context = {
        "locked_out": "Too many failed sign-ins from this address or for this username." + wait,
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    response = render(request, "registration/login.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
