"""Webhook delivery, one call of the worker's step at a time, to a real HTTP receiver."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from moss_client.webhooks import verify
from sessions_app.actors import Actor
from sessions_app.errors import InvalidInput
from sessions_app.models import AuditEvent, Event, Project, WebhookAttempt, WebhookEndpoint
from sessions_app.services.event_log import event_payload, events_prune
from sessions_app.services.handoffs import session_claim, session_hand_back, session_push
from sessions_app.services.sessions import session_open
from sessions_app.webhooks.addresses import url_addresses
from sessions_app.webhooks.services import (
    Clients,
    Delivery,
    webhook_attempts_prune,
    webhook_create,
    webhook_deliver_due,
    webhook_enable,
)
from tests.webhook_receiver import Receiver, receiver_running


@pytest.fixture
def allow_private(settings):
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_running() as running:
        yield running


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def bot(project: Project) -> Actor:
    return Actor.for_key(project.api_keys.get(), agent="sms-bot")


def deliver_all(clients: Clients) -> list[Delivery]:
    done = []
    while (delivery := webhook_deliver_due(clients=clients)) is not None:
        done.append(delivery)
    return done


def escalate_and_hand_back(project: Project, make_user, name: str = "conv-1") -> None:
    ana = make_user("ana", project)
    session, _ = session_open(project=project, name=name, actor=bot(project))
    session_push(session=session, actor=bot(project), to_kind="humans", reason="refund")
    session_claim(session=session, user=ana)
    session_hand_back(session=session, user=ana, bot="sms-bot", note="I've reversed the fee")


def test_each_event_arrives_signed_in_cursor_order(
    make_project, make_user, allow_private, receiver, clients
):
    project, _ = make_project()
    endpoint, secret = webhook_create(project=project, actor=bot(project), url=receiver.url)
    escalate_and_hand_back(project, make_user)

    deliver_all(clients)

    events = list(Event.objects.filter(project=project).order_by("cursor"))
    assert [r.event for r in receiver.received] == [event_payload(e) for e in events]
    for received, event in zip(receiver.received, events, strict=True):
        assert verify(secret, received.headers, received.body) == event_payload(event)
        assert received.headers["webhook-id"] == event_payload(event)["id"]
        assert received.headers["x-moss-event-type"] == event.type
        assert received.headers["content-type"] == "application/json"
        assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    endpoint.refresh_from_db()
    assert endpoint.cursor == events[-1].cursor
    assert [a.status_code for a in WebhookAttempt.objects.order_by("id")] == [200] * len(events)


def test_the_secret_is_whsec_and_base64_of_32_bytes(make_project, allow_private, receiver):
    project, _ = make_project()
    _, secret = webhook_create(project=project, actor=bot(project), url=receiver.url)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_an_endpoint_hears_only_what_is_committed_after_it_is_created(
    make_project, make_user, allow_private, receiver, clients
):
    project, _ = make_project()
    session_open(project=project, name="before", actor=bot(project))
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="after", actor=bot(project))
    deliver_all(clients)
    assert [r.event["session"]["name"] for r in receiver.received] == ["after"]


def test_types_select_what_is_sent_and_the_rest_is_skipped(
    make_project, make_user, allow_private, receiver, clients
):
    project, _ = make_project()
    endpoint, _ = webhook_create(
        project=project,
        actor=bot(project),
        url=receiver.url,
        types=["session.escalated", "session.handed_back"],
    )
    escalate_and_hand_back(project, make_user)
    deliver_all(clients)
    assert [r.headers["x-moss-event-type"] for r in receiver.received] == [
        "session.escalated",
        "session.handed_back",
    ]
    endpoint.refresh_from_db()
    assert endpoint.cursor == Project.objects.get(pk=project.pk).event_cursor


def test_a_project_s_events_reach_only_its_own_endpoints(
    make_project, make_user, allow_private, clients
):
    acme, _ = make_project("Acme")
    globex, _ = make_project("Globex")
    with receiver_running() as acme_hook, receiver_running() as globex_hook:
        webhook_create(project=acme, actor=bot(acme), url=acme_hook.url)
        webhook_create(project=globex, actor=bot(globex), url=globex_hook.url)
        session_open(project=acme, name="acme-conv", actor=bot(acme))
        session_open(project=acme, name="acme-conv-2", actor=bot(acme))
        session_open(project=globex, name="globex-conv", actor=bot(globex))
        deliver_all(clients)
        assert [r.event["session"]["name"] for r in acme_hook.received] == [
            "acme-conv",
            "acme-conv-2",
        ]
        assert [r.event["session"]["name"] for r in globex_hook.received] == ["globex-conv"]


def test_a_failure_is_retried_later_and_holds_back_later_events(
    make_project, make_user, allow_private, receiver, clients, settings
):
    settings.MOSS_WEBHOOK_RETRY_BASE_SECONDS = 60
    project, _ = make_project()
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    escalate_and_hand_back(project, make_user)
    receiver.answer = lambda _n: 500

    before = timezone.now()
    deliveries = deliver_all(clients)

    assert len(deliveries) == 1 and len(receiver.received) == 1  # nothing after the failed one
    endpoint.refresh_from_db()
    assert endpoint.failures == 1 and endpoint.cursor == 0
    assert endpoint.next_attempt_at is not None
    delay = (endpoint.next_attempt_at - before).total_seconds()
    assert 30 <= delay <= 61  # half the base delay, plus jitter up to the whole of it
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.error, attempt.attempt) == (500, "HTTP 500", 1)
    assert attempt.event_type == "session.created" and attempt.latency_ms is not None


def test_retries_back_off_then_the_receiver_gets_everything_once_in_order(
    make_project, make_user, allow_private, receiver, clients, settings
):
    settings.MOSS_WEBHOOK_RETRY_BASE_SECONDS = 0.02
    project, _ = make_project()
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    escalate_and_hand_back(project, make_user)
    receiver.answer = lambda n: 500 if n <= 3 else 200

    total = Event.objects.filter(project=project).count()
    while len(receiver.unique()) < total or endpoint.failures:
        deliver_all(clients)
        endpoint.refresh_from_db()
        time.sleep(0.01)

    cursors = [r.event["cursor"] for r in receiver.unique()]
    assert cursors == sorted(cursors) and len(cursors) == total
    tries = list(WebhookAttempt.objects.order_by("id").values_list("attempt", "status_code"))
    assert tries[:4] == [(1, 500), (2, 500), (3, 500), (4, 200)]


def test_after_the_retry_window_the_endpoint_is_disabled_with_the_reason(
    make_project, make_user, allow_private, receiver, clients, settings
):
    settings.MOSS_WEBHOOK_RETRY_BASE_SECONDS = 0.02
    settings.MOSS_WEBHOOK_RETRY_WINDOW_SECONDS = 0.3
    project, _ = make_project()
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    receiver.answer = lambda _n: 503

    while endpoint.disabled_at is None:
        deliver_all(clients)
        endpoint.refresh_from_db()
        time.sleep(0.01)

    attempts = endpoint.attempts.count()
    assert attempts >= 2
    assert f"{attempts} attempts" in endpoint.disabled_reason
    assert "session.created" in endpoint.disabled_reason
    assert "last: HTTP 503" in endpoint.disabled_reason
    assert AuditEvent.objects.filter(kind="webhook_disabled").count() == 1
    # A disabled endpoint is sent nothing more, until it is enabled again.
    session_open(project=project, name="conv-2", actor=bot(project))
    deliver_all(clients)
    assert endpoint.attempts.count() == attempts
    receiver.answer = lambda _n: 200
    webhook_enable(endpoint=endpoint, actor=bot(project))
    deliver_all(clients)
    assert [r.event["session"]["name"] for r in receiver.unique()] == ["conv-1", "conv-2"]


def test_a_redirect_is_a_failure_and_is_not_followed(
    make_project, allow_private, receiver, clients
):
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    receiver.answer = lambda _n: 302
    deliver_all(clients)
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (302, "HTTP 302")
    assert len(receiver.received) == 1


def test_a_receiver_slower_than_the_timeout_is_a_failure(
    make_project, allow_private, receiver, settings
):
    settings.MOSS_WEBHOOK_TIMEOUT_SECONDS = 0.2
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    receiver.delay_seconds = 1.0
    slow_clients = Clients()  # made after the setting changed
    try:
        deliver_all(slow_clients)
    finally:
        slow_clients.close()
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("timed out after 0.2 s")


def test_a_receiver_that_answers_a_byte_at_a_time_fails_at_the_timeout(
    make_project, allow_private, receiver, settings
):
    """The timeout bounds the whole attempt, not each read: every byte here comes well
    within it, and the whole answer would take about 4 s."""
    settings.MOSS_WEBHOOK_TIMEOUT_SECONDS = 0.5
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    receiver.trickle_seconds = 0.1
    trickled = Clients()
    started = time.monotonic()
    try:
        deliver_all(trickled)
    finally:
        trickled.close()
    assert time.monotonic() - started < 2.0
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("timed out after 0.5 s")
    assert len(receiver.received) == 1


class _SlowResolver:
    """slow.example resolves to the loopback address, after `delay` seconds (a system
    resolver may retry for half a minute)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delay = 0.0
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: str, port: int, *args: object, **kwargs: object) -> object:
        if host != "slow.example":  # the database's and Redis's own lookups
            return self._real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        time.sleep(self.delay)
        return self._real("127.0.0.1", port, *args, **kwargs)  # type: ignore[arg-type]


def test_a_host_whose_lookup_hangs_fails_the_attempt_at_the_timeout(
    make_project, allow_private, receiver, clients, settings, monkeypatch
):
    """The lookup is part of the attempt: a resolver that never answers fails it at
    the timeout, it does not hold the delivery thread and the endpoint's lock."""
    project, _ = make_project()
    resolver = _SlowResolver(monkeypatch)
    webhook_create(
        project=project, actor=bot(project), url=f"http://slow.example:{receiver.port}/hooks"
    )
    session_open(project=project, name="conv-1", actor=bot(project))
    settings.MOSS_WEBHOOK_TIMEOUT_SECONDS = 0.3
    resolver.delay = 3.0
    started = time.monotonic()
    deliver_all(clients)
    assert time.monotonic() - started < 1.5
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error == "url host 'slow.example' did not resolve within 0.3 s"
    assert receiver.received == []


def test_the_lookup_and_the_request_share_one_deadline(
    make_project, allow_private, receiver, clients, settings, monkeypatch
):
    """A lookup that takes most of the timeout leaves the request only the rest."""
    project, _ = make_project()
    resolver = _SlowResolver(monkeypatch)
    webhook_create(
        project=project, actor=bot(project), url=f"http://slow.example:{receiver.port}/hooks"
    )
    session_open(project=project, name="conv-1", actor=bot(project))
    settings.MOSS_WEBHOOK_TIMEOUT_SECONDS = 1.0
    resolver.delay = 0.6
    receiver.trickle_seconds = 0.1  # the whole answer would take seconds
    started = time.monotonic()
    deliver_all(clients)
    # 0.6 s for the lookup and a full second for the request would be 1.6 s.
    assert time.monotonic() - started < 1.4
    attempt = WebhookAttempt.objects.get()
    assert attempt.error.startswith("timed out after 1 s")


def test_a_host_that_never_answers_holds_one_lookup_thread_not_one_per_attempt(
    settings, monkeypatch
):
    """Each abandoned lookup kept a thread until the resolver gave up: a few endpoints on
    a host that never answers filled the pool, and every other host's lookup then timed
    out behind them ("did not resolve"), for deliveries and registrations alike."""
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True
    real = socket.getaddrinfo
    release = threading.Event()

    def resolver(host: str, port: int, *args: object, **kwargs: object) -> object:
        if host == "never.example":
            release.wait(10)
        elif host != "quick.example":  # the database's and Redis's own lookups
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        return real("127.0.0.1", port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    try:
        for _ in range(80):  # more than the pool has threads
            with pytest.raises(InvalidInput, match="did not resolve within"):
                url_addresses(httpx.URL("https://never.example/hooks"), timeout=0.01)
        started = time.monotonic()
        found = url_addresses(httpx.URL("https://quick.example/hooks"), timeout=2.0)
        assert [str(a) for a in found] == ["127.0.0.1"]
        assert time.monotonic() - started < 0.5
    finally:
        release.set()


def test_a_url_with_a_user_name_or_password_is_refused(make_project):
    project, _ = make_project()
    with pytest.raises(InvalidInput, match="must not carry a user name or password"):
        webhook_create(project=project, actor=bot(project), url="https://bot:s3cret@example.com/h")
    assert not WebhookEndpoint.objects.exists()


def test_a_new_event_does_not_inherit_the_retries_of_a_pruned_one(
    make_project, allow_private, receiver, clients
):
    """Retry state is the endpoint's: once the failing event was pruned (an endpoint
    enabled again near the retention limit), the next one got what was left of its
    window, and was disabled on its first failure naming the wrong attempt count."""
    project, _ = make_project()
    receiver.answer = lambda _n: 500
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-old", actor=bot(project))
    deliver_all(clients)  # event 1 fails
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failures=12,
        failing_since=timezone.now() - timedelta(hours=24),
        next_attempt_at=timezone.now(),
    )
    Event.objects.filter(project=project).update(created_at=timezone.now() - timedelta(days=15))
    assert events_prune() == 1
    session_open(project=project, name="conv-new", actor=bot(project))  # event 2
    [delivery] = deliver_all(clients)
    assert delivery.attempt is not None
    assert (delivery.attempt.event_cursor, delivery.attempt.attempt) == (2, 1)
    assert not delivery.disabled
    endpoint.refresh_from_db()
    assert endpoint.failures == 1 and endpoint.disabled_at is None


def test_an_unreachable_receiver_is_a_failure_naming_the_address(
    make_project, allow_private, clients
):
    project, _ = make_project()
    with receiver_running() as gone:
        url = gone.url
    webhook_create(project=project, actor=bot(project), url=url)
    session_open(project=project, name="conv-1", actor=bot(project))
    deliver_all(clients)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert "could not connect to 127.0.0.1" in attempt.error


def test_a_host_name_is_resolved_and_sent_as_the_host_header(
    make_project, allow_private, receiver, clients
):
    project, _ = make_project()
    url = f"http://localhost:{receiver.port}/hooks"
    webhook_create(project=project, actor=bot(project), url=url)
    session_open(project=project, name="conv-1", actor=bot(project))
    deliver_all(clients)
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


def test_delivery_checks_the_address_again_and_refuses_a_private_one(
    make_project, allow_private, receiver, clients, settings
):
    """A host that resolved to a public address at registration may resolve to a
    private one later (DNS rebinding): the check runs again before every delivery."""
    project, _ = make_project()
    endpoint, _ = webhook_create(
        project=project, actor=bot(project), url=f"http://localhost:{receiver.port}/hooks"
    )
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = False
    session_open(project=project, name="conv-1", actor=bot(project))
    deliver_all(clients)
    assert receiver.received == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert "loopback address" in attempt.error
    endpoint.refresh_from_db()
    assert endpoint.failures == 1 and endpoint.cursor == 0


def test_old_attempts_are_pruned_with_the_event_retention(
    make_project, allow_private, receiver, clients
):
    project, _ = make_project()
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    deliver_all(clients)
    WebhookAttempt.objects.update(created_at=timezone.now() - timedelta(days=20))
    session_open(project=project, name="conv-2", actor=bot(project))
    deliver_all(clients)
    assert webhook_attempts_prune() == 1
    assert list(endpoint.attempts.values_list("event_type", flat=True)) == ["session.created"]
    assert WebhookEndpoint.objects.count() == 1
    assert json.loads(receiver.received[-1].body)["session"]["name"] == "conv-2"
