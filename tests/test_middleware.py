"""The middleware chain stays async, so a waiting long-poll holds no thread."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.utils.module_loading import import_string


def test_every_middleware_can_run_async() -> None:
    # One sync-only middleware would make Django run the whole chain, async views
    # included, in a thread per request.
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        assert getattr(middleware, "async_capable", False), f"{path} is sync-only"


def test_the_real_server_still_serves_static_files(live_server_url: str) -> None:
    response = httpx.get(f"{live_server_url}/static/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "htmx" in response.text[:2000]
    missing = httpx.get(f"{live_server_url}/static/vendor/nothing-here.js")
    assert missing.status_code == 404
