"""Every server error has a short, well-formed reply: JSON in the one error shape under
/api/, a small page elsewhere. The failures here are bugs simulated by making one of our
own functions raise; database outages are exercised for real in test_outage_database."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory

from moss_web.outages import server_error
from sessions_app.api import sessions as api_sessions
from sessions_app.console import views as console_views
from tests.conftest import ApiClient


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug")


def test_an_unexpected_error_in_the_api_is_a_logged_json_500(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(api_sessions, "session_get", broken)
    api.client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="moss_web.api"):
        response = api.get("/sessions/conv-1")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "error": "server_error",
        "message": "internal server error; it has been logged",
    }
    assert "RuntimeError: a bug" in caplog.text


def test_an_unexpected_error_in_a_page_is_a_short_500_page(
    api: ApiClient, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_views.fragments, "queue_context", broken)
    client = Client(raise_request_exception=False)
    client.force_login(make_user("ana", api.project))
    response = client.get("/console/")
    assert response.status_code == 500
    assert "Server error" in response.content.decode()
    assert "Retry-After" not in response


@pytest.mark.parametrize(
    ("path", "exc", "status"),
    [
        ("/api/v1/sessions", RuntimeError("a bug"), 500),
        ("/api/v1/sessions", OperationalError("connection refused"), 503),
        ("/console/", OperationalError("connection refused"), 503),
    ],
)
def test_the_handler_for_errors_outside_the_api_operations(
    rf: RequestFactory, path: str, exc: Exception, status: int
) -> None:
    """Django's handler500 also covers what fails before an API operation runs."""
    try:
        raise exc
    except Exception:
        response = server_error(rf.get(path))
    assert response.status_code == status
    assert ("Retry-After" in response) == (status == 503)
    if path.startswith("/api/"):
        assert response["Content-Type"] == "application/json"
        assert set(json.loads(response.content)) == {"error", "message"}
    else:
        assert "Temporarily unavailable" in response.content.decode()
