"""Throttling: requests per API key, failed API authentication per client address,
console sign-ins per client address and per username. Each answers 429 with Retry-After.

The tests lower the rates with override_settings; the defaults are far above
what the rest of the suite sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from moss_web.settings import env_rate
from sessions_app.models import Project
from sessions_app.services.projects import api_key_issue
from tests.conftest import ApiClient, need
from tests.servers import free_port, server_process
from tests.test_console_two_servers import redis_is_up

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Sign-in tests hash a password per attempt; the lockout does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def assert_throttled(response: Any, message: str) -> int:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "throttled" and message in body["message"]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


# --- requests per API key -------------------------------------------------------------


@override_settings(MOSS_API_KEY_RATE="3/min")
def test_a_key_over_its_rate_gets_429_with_retry_after_and_writes_nothing(
    api: ApiClient,
) -> None:
    assert api.post("/sessions", {"name": "s1"}).status_code == 201
    for _ in range(2):
        assert api.get("/sessions/s1").status_code == 200
    doc = {"id": "t1", "text": "hello", "embedding": [0.0] * 383 + [1.0]}
    refused = api.post("/sessions/s1/docs", {"docs": [doc]})
    assert_throttled(refused, "too many requests for this API key")
    with override_settings(MOSS_API_KEY_RATE=None):
        assert api.get("/sessions/s1").json()["doc_count"] == 0


@override_settings(MOSS_API_KEY_RATE="2/min")
def test_each_key_has_its_own_budget(api: ApiClient) -> None:
    for _ in range(2):
        api.get("/sessions")
    assert api.get("/sessions").status_code == 429
    _, second_key = api_key_issue(project=api.project, label="second")
    assert ApiClient(api.project, second_key).get("/sessions").status_code == 200


# --- failed API authentication per client address -----------------------------------


def _wrong(api: ApiClient, **extra: str) -> Any:
    headers = {"X-Project-Id": api.project.public_id, "X-Project-Key": "moss_wrong"}
    return Client(headers=headers).get("/api/v1/sessions", **extra)  # type: ignore[arg-type]


@override_settings(MOSS_API_AUTH_FAILURE_RATE="3/min")
def test_an_address_that_failed_too_often_is_refused_even_with_the_right_key(
    api: ApiClient,
) -> None:
    for _ in range(3):
        assert _wrong(api).status_code == 401
    assert_throttled(api.get("/sessions"), "too many failed authentications")
    # A header cannot change the address that is counted.
    spoofed = api.client.get("/api/v1/sessions", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert spoofed.status_code == 429
    # Another address, and the right key, still get in.
    assert api.client.get("/api/v1/sessions", REMOTE_ADDR="198.51.100.7").status_code == 200


@override_settings(MOSS_API_AUTH_FAILURE_RATE="3/min")
def test_successful_requests_do_not_use_up_the_failure_budget(api: ApiClient) -> None:
    for _ in range(10):
        assert api.get("/sessions").status_code == 200
    assert _wrong(api).status_code == 401


# --- console sign-in per address and per username ----------------------------------


def _sign_in(username: str, password: str, address: str = "127.0.0.1") -> Any:
    return Client().post(
        "/accounts/login/",
        {"username": username, "password": password, "next": "/console/"},
        REMOTE_ADDR=address,
    )


@override_settings(AXES_FAILURE_LIMIT=3)
def test_after_too_many_wrong_passwords_the_right_one_is_refused(
    make_user: Callable[..., Any],
) -> None:
    make_user("ana")
    for _ in range(2):
        assert _sign_in("ana", "nope").status_code == 200
    locked = _sign_in("ana", "nope")
    assert locked.status_code == 429
    right = _sign_in("ana", "pw-ana")
    assert right.status_code == 429
    assert int(right["Retry-After"]) == 900
    assert "Too many failed sign-ins" in right.content.decode()
    assert "_auth_user_id" not in right.wsgi_request.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_username_is_locked_whatever_address_the_failures_come_from(
    make_user: Callable[..., Any],
) -> None:
    make_user("ana")
    make_user("ben")
    for n in range(3):
        _sign_in("ana", "nope", address=f"192.0.2.{n + 1}")
    assert _sign_in("ana", "pw-ana", address="192.0.2.200").status_code == 429
    assert _sign_in("ben", "pw-ben", address="192.0.2.201").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_an_address_is_locked_whatever_usernames_it_tries(
    make_user: Callable[..., Any],
) -> None:
    make_user("ana")
    for name in ("root", "admin", "sam"):
        _sign_in(name, "guess", address="192.0.2.50")
    assert _sign_in("ana", "pw-ana", address="192.0.2.50").status_code == 429
    assert _sign_in("ana", "pw-ana", address="192.0.2.51").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_sign_in_resets_the_count(make_user: Callable[..., Any]) -> None:
    make_user("ana")
    for _ in range(2):
        _sign_in("ana", "nope")
    assert _sign_in("ana", "pw-ana").status_code == 302
    for _ in range(2):
        _sign_in("ana", "nope")
    assert _sign_in("ana", "pw-ana").status_code == 302


# --- settings and the shared cache ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("600/min", "600/min"), ("20/10s", "20/10s"), ("5/h", "5/h"), ("off", None)],
)
def test_rates_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, parsed: str | None
) -> None:
    monkeypatch.setenv("MOSS_TEST_RATE", value)
    assert env_rate("MOSS_TEST_RATE", "1/s") == parsed


@pytest.mark.parametrize("value", ["600", "600/fortnight", "many/min", "/min"])
def test_a_malformed_rate_refuses_to_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MOSS_TEST_RATE", value)
    with pytest.raises(ImproperlyConfigured, match="MOSS_TEST_RATE"):
        env_rate("MOSS_TEST_RATE", "1/s")


def test_without_a_reachable_cache_requests_are_not_throttled_and_do_not_fail(
    api: ApiClient,
) -> None:
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(
        CACHES=dead_redis, MOSS_API_KEY_RATE="1/min", MOSS_API_AUTH_FAILURE_RATE="1/min"
    ):
        for _ in range(3):
            assert api.get("/sessions").status_code == 200
            assert _wrong(api).status_code == 401


def test_server_processes_sharing_redis_share_one_budget_per_key(
    transactional_db: None, make_project: Callable[..., tuple[Project, str]]
) -> None:
    need(redis_is_up(), "no Redis on 127.0.0.1:6379")
    project, key = make_project("Acme")
    env = {"REDIS_URL": "redis://127.0.0.1:6379/15", "MOSS_API_KEY_RATE": "4/min"}
    headers = {"X-Project-Id": project.public_id, "X-Project-Key": key}
    with server_process(env=env) as process_a, server_process(env=env) as process_b:
        statuses = [
            httpx.get(f"{base}/api/v1/sessions", headers=headers, timeout=30).status_code
            for base in (process_a, process_b, process_a, process_b, process_a, process_b)
        ]
    assert statuses == [200, 200, 200, 200, 429, 429]
