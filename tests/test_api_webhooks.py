"""API v1 webhooks: register (secret shown once), list, delete; bad input is a 422 naming
the problem and writes nothing; the SSRF stance is a setting, both ways."""

from __future__ import annotations

import base64
import socket
import time

import pytest
from django.test import Client

from sessions_app.actors import Actor
from sessions_app.models import AuditEvent, WebhookAttempt, WebhookEndpoint
from sessions_app.services.sessions import session_open
from sessions_app.webhooks.services import Clients, webhook_deliver_due
from tests.webhook_receiver import receiver_running

PUBLIC_URL = "https://93.184.216.34/hooks/moss"  # a public address, given as such: no DNS


@pytest.fixture
def allow_private(settings):
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True


def test_register_answers_the_secret_once(api):
    response = api.post("/webhooks", {"url": PUBLIC_URL, "types": ["turn.added"]})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("wh_")
    assert body["url"] == PUBLIC_URL
    assert body["types"] == ["turn.added"]
    assert body["enabled"] is True and body["last_attempt"] is None
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32

    listed = api.get("/webhooks")
    assert listed.status_code == 200
    assert secret not in listed.content.decode()
    [webhook] = listed.json()["webhooks"]
    assert "secret" not in webhook
    assert (webhook["id"], webhook["url"], webhook["types"]) == (
        body["id"],
        PUBLIC_URL,
        ["turn.added"],
    )
    assert AuditEvent.objects.filter(kind="webhook_created", data__webhook=body["id"]).exists()


def test_no_types_means_every_type(api):
    body = api.post("/webhooks", {"url": PUBLIC_URL}).json()
    assert body["types"] == []


def test_delete_removes_the_endpoint(api):
    webhook_id = api.post("/webhooks", {"url": PUBLIC_URL}).json()["id"]
    assert api.delete(f"/webhooks/{webhook_id}").status_code == 204
    assert api.get("/webhooks").json() == {"webhooks": []}
    again = api.delete(f"/webhooks/{webhook_id}")
    assert again.status_code == 404 and again.json()["error"] == "not_found"
    assert AuditEvent.objects.filter(kind="webhook_deleted", data__webhook=webhook_id).exists()


def test_another_projects_webhook_is_invisible_and_cannot_be_deleted(api, other_api):
    theirs = other_api.post("/webhooks", {"url": PUBLIC_URL}).json()["id"]
    assert api.get("/webhooks").json() == {"webhooks": []}
    response = api.delete(f"/webhooks/{theirs}")
    assert response.status_code == 404
    assert response.json() == api.delete("/webhooks/wh_missing").json() | {
        "message": f"webhook {theirs!r} not found"
    }
    assert WebhookEndpoint.objects.filter(public_id=theirs).exists()


def test_calls_without_a_key_are_refused():
    client = Client()
    assert client.get("/api/v1/webhooks").status_code == 401
    response = client.post("/api/v1/webhooks", {"url": PUBLIC_URL}, content_type="application/json")
    assert response.status_code == 401


BAD_INPUT = [
    (
        "ftp URL",
        {"url": "ftp://example.com/x"},
        "url must be an http or https URL, got scheme 'ftp'",
    ),
    ("javascript URL", {"url": "javascript:alert(1)"}, "got scheme 'javascript'"),
    ("relative URL", {"url": "/hooks"}, "url must be an http or https URL, got scheme 'none'"),
    ("no host", {"url": "http:///hooks"}, "url has no host"),
    ("empty URL", {"url": ""}, "url is required"),
    (
        "too long",
        {"url": "https://example.com/" + "a" * 2000},
        "url: must be at most 2000 characters",
    ),
    ("missing URL", {"types": []}, "url: Field required"),
    ("types not a list", {"url": PUBLIC_URL, "types": "turn.added"}, "types: Input should be"),
    (
        "unknown type",
        {"url": PUBLIC_URL, "types": ["turn.added", "turn.exploded"]},
        "unknown event type 'turn.exploded'; known types: session.created,",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_a_422_naming_the_problem_and_writes_nothing(api, case, body, message):
    response = api.post("/webhooks", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"] == "invalid_input"
    assert message in response.json()["message"]
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(kind="webhook_created").exists()


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.client.post("/api/v1/webhooks", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"] == "request body is not valid JSON"


def test_too_many_endpoints_is_a_422_naming_the_setting(api, other_api, settings):
    settings.MOSS_WEBHOOK_MAX_ENDPOINTS = 2
    for _ in range(2):
        assert api.post("/webhooks", {"url": PUBLIC_URL}).status_code == 201
    response = api.post("/webhooks", {"url": PUBLIC_URL})
    assert response.status_code == 422
    assert response.json()["message"] == (
        "too many webhook endpoints: a project has at most 2 "
        "(MOSS_WEBHOOK_MAX_ENDPOINTS); delete one first"
    )
    assert WebhookEndpoint.objects.filter(project=api.project).count() == 2
    # The limit is per project.
    assert other_api.post("/webhooks", {"url": PUBLIC_URL}).status_code == 201


PRIVATE_URLS = [
    ("http://127.0.0.1:8000/hooks", "url address 127.0.0.1 is a loopback address"),
    ("http://localhost:8000/hooks", "url host 'localhost' resolves to"),
    ("http://[::1]/hooks", "url address ::1 is a loopback address"),
    ("http://10.1.2.3/hooks", "url address 10.1.2.3 is a private address"),
    ("http://192.168.0.10/hooks", "is a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("http://100.64.0.1/hooks", "100.64.0.1 is a non-public address"),
    ("http://0.0.0.0:8000/hooks", "0.0.0.0 is an unspecified address"),
    ("http://[::ffff:127.0.0.1]/hooks", "is a loopback address"),
    ("http://240.0.0.1/hooks", "240.0.0.1 is a reserved address"),
    ("http://224.0.0.1/hooks", "224.0.0.1 is a multicast address"),
]


@pytest.mark.parametrize(("url", "message"), PRIVATE_URLS)
def test_private_addresses_are_refused_by_default(api, url, message):
    response = api.post("/webhooks", {"url": url})
    assert response.status_code == 422, response.content
    text = response.json()["message"]
    assert message in text
    assert "MOSS_WEBHOOK_ALLOW_PRIVATE is off" in text
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(("url", "message"), PRIVATE_URLS[:6])
def test_private_addresses_are_accepted_when_the_setting_allows_them(
    api, allow_private, url, message
):
    assert api.post("/webhooks", {"url": url}).status_code == 201


def test_a_host_that_does_not_resolve_is_refused_while_addresses_are_checked(api):
    response = api.post("/webhooks", {"url": "https://no-such-host.invalid/hooks"})
    assert response.status_code == 422
    assert response.json()["message"] == "url host 'no-such-host.invalid' does not resolve"


def test_a_host_whose_lookup_hangs_is_refused_at_the_timeout_and_nothing_is_created(
    api, settings, monkeypatch
):
    real = socket.getaddrinfo

    def never(host: str, *args: object, **kwargs: object) -> object:
        if host != "slow.example":  # the database's and Redis's own lookups
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        time.sleep(3.0)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", never)
    settings.MOSS_WEBHOOK_TIMEOUT_SECONDS = 0.3
    started = time.monotonic()
    response = api.post("/webhooks", {"url": "https://slow.example/hooks"})
    assert time.monotonic() - started < 1.5
    assert response.status_code == 422
    assert response.json()["message"] == "url host 'slow.example' did not resolve within 0.3 s"
    assert not WebhookEndpoint.objects.exists()


def test_the_list_shows_state_and_the_latest_attempt(api, allow_private):
    with receiver_running() as receiver:
        receiver.answer = lambda _n: 500
        created = api.post("/webhooks", {"url": receiver.url}).json()
        session_open(project=api.project, name="conv-1", actor=Actor.system())
        clients = Clients()
        webhook_deliver_due(clients=clients)
        clients.close()

    [webhook] = api.get("/webhooks").json()["webhooks"]
    assert webhook["id"] == created["id"]
    assert webhook["enabled"] is True and webhook["failures"] == 1
    assert webhook["next_attempt_at"] is not None
    last = webhook["last_attempt"]
    assert (last["event_type"], last["attempt"], last["ok"], last["status_code"]) == (
        "session.created",
        1,
        False,
        500,
    )
    assert last["error"] == "HTTP 500" and last["event_id"].startswith("evt_")

    WebhookEndpoint.objects.update(disabled_reason="gave up", disabled_at="2026-01-01T00:00Z")
    [webhook] = api.get("/webhooks").json()["webhooks"]
    assert webhook["enabled"] is False and webhook["disabled_reason"] == "gave up"
    assert WebhookAttempt.objects.count() == 1
