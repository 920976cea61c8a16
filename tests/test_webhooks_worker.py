"""The delivery worker as a real process (`manage.py deliver_webhooks`) against the test
database, delivering to real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from moss_client import DocumentInfo, MossClientSync
from moss_client.webhooks import verify
from sessions_app.actors import Actor
from sessions_app.models import Event, Project, WebhookAttempt, WebhookEndpoint
from sessions_app.selectors import session_get
from sessions_app.services.event_log import event_payload
from sessions_app.services.handoffs import session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert
from sessions_app.webhooks.services import webhook_create
from tests.conftest import ApiClient
from tests.servers import worker_process
from tests.webhook_receiver import Receiver, receiver_running

WORKER_ENV = {
    "MOSS_WEBHOOK_ALLOW_PRIVATE": "true",
    "MOSS_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "MOSS_WEBHOOK_POLL_SECONDS": "1",
}
VECTOR = [1.0] + [0.0] * 383  # supplied, so these tests need no model


@pytest.fixture
def committed(transactional_db: None, settings) -> None:
    """Data the worker process can see (committed), and receivers on 127.0.0.1."""
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_running() as running:
        yield running


def bot(project: Project) -> Actor:
    return Actor.for_key(project.api_keys.get(), agent="sms-bot")


def events_of(project: Project) -> list[Event]:
    return list(Event.objects.filter(project=project).order_by("cursor"))


def every_event_once(receiver: Receiver, project: Project) -> Callable[[list], bool]:
    total = Event.objects.filter(project=project).count()
    return lambda _received: len(receiver.unique()) >= total


def open_sessions(project: Project, *names: str) -> None:
    for name in names:
        session, _ = session_open(project=project, name=name, actor=bot(project))
        session_push(session=session, actor=bot(project), to_kind="humans", reason="help")


def test_a_push_through_the_api_reaches_the_receiver_signed(
    live_server_url, committed, make_project, receiver
):
    project, key = make_project()
    # Registered here: the shared server refuses 127.0.0.1 receivers (its SSRF default).
    _, secret = webhook_create(project=project, actor=bot(project), url=receiver.url)

    with worker_process(env=WORKER_ENV):
        with MossClientSync(project.public_id, key, base_url=live_server_url) as client:
            session = client.session("conv-123")
            session.add_docs([DocumentInfo(id="t1", text="Charged twice", embedding=VECTOR)])
            session.push_index(to="humans", reason="refund")
        received = receiver.wait_for(lambda r: len(r) >= 3)

    events = [verify(secret, r.headers, r.body) for r in received]
    assert [e["type"] for e in events] == ["session.created", "turn.added", "session.escalated"]
    assert events == [event_payload(e) for e in events_of(project)]
    assert events[2]["data"]["reason"] == "refund"
    assert [r.headers["webhook-id"] for r in received] == [e["id"] for e in events]


def test_a_failing_receiver_that_recovers_gets_every_event_once_after_dedup_in_order(
    committed, make_project, receiver
):
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    receiver.answer = lambda number: 500 if number <= 4 else 200
    open_sessions(project, "conv-1", "conv-2", "conv-3")

    with worker_process(env=WORKER_ENV):
        receiver.wait_for(every_event_once(receiver, project))

    kept = receiver.unique()
    assert [r.event for r in kept] == [event_payload(e) for e in events_of(project)]
    assert len(receiver.received) > len(kept)  # the failures were retried
    statuses = list(WebhookAttempt.objects.order_by("id").values_list("status_code", flat=True))
    assert statuses[:5] == [500, 500, 500, 500, 200]


def test_events_committed_while_no_worker_runs_are_delivered_when_one_starts(
    committed, make_project, receiver
):
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url)
    open_sessions(project, "conv-1")  # no worker yet
    # Another project's event past the retention period, for the worker's prune.
    old, _ = make_project("Old")
    open_sessions(old, "ancient")
    Event.objects.filter(project=old).update(created_at=timezone.now() - timedelta(days=30))

    with worker_process(env=WORKER_ENV):
        receiver.wait_for(every_event_once(receiver, project))
        deadline = time.monotonic() + 30
        while Event.objects.filter(project=old).exists():
            assert time.monotonic() < deadline, "the worker did not prune the event log"
            time.sleep(0.1)
        open_sessions(project, "conv-2")
        receiver.wait_for(every_event_once(receiver, project))
    # Stopped (cleanly, on SIGTERM): these wait for the next worker.
    open_sessions(project, "conv-3")
    time.sleep(0.5)
    assert len(receiver.received) == 4
    with worker_process(env=WORKER_ENV):
        receiver.wait_for(every_event_once(receiver, project))

    # A clean stop leaves nothing half-done: no event was sent twice.
    assert [r.event for r in receiver.received] == [event_payload(e) for e in events_of(project)]


def test_concurrent_writers_events_arrive_in_each_session_s_order(
    committed, make_project, receiver
):
    project, _ = make_project()
    webhook_create(project=project, actor=bot(project), url=receiver.url, types=["turn.added"])
    names = ("sms-1", "chat-2", "voice-3")
    for name in names:
        session_open(project=project, name=name, actor=bot(project))

    def writer(name: str) -> None:
        try:
            for index in range(8):
                session = session_get(project=project, name=name)
                docs = [DocInput(id=f"t{index}", text=f"turn {index}", embedding=VECTOR)]
                turns_upsert(session=session, docs=docs, actor=bot(project))
        finally:
            connection.close()

    with worker_process(env=WORKER_ENV):
        threads = [threading.Thread(target=writer, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        receiver.wait_for(lambda r: len(r) >= 24)

    events = [r.event for r in receiver.unique()]
    assert [e["cursor"] for e in events] == sorted(e["cursor"] for e in events)
    for name in names:
        seqs = [e["data"]["seq"] for e in events if e["session"]["name"] == name]
        assert seqs == list(range(1, 9)), name


def test_a_project_s_events_never_reach_another_project_s_endpoint(committed, make_project):
    acme, _ = make_project("Acme")
    globex, _ = make_project("Globex")
    with receiver_running() as acme_hook, receiver_running() as globex_hook:
        webhook_create(project=acme, actor=bot(acme), url=acme_hook.url)
        webhook_create(project=globex, actor=bot(globex), url=globex_hook.url)
        with worker_process(env=WORKER_ENV):
            open_sessions(acme, "acme-1", "acme-2")
            open_sessions(globex, "globex-1")
            acme_hook.wait_for(every_event_once(acme_hook, acme))
            globex_hook.wait_for(every_event_once(globex_hook, globex))
        assert {r.event["session"]["name"] for r in acme_hook.received} == {"acme-1", "acme-2"}
        assert {r.event["session"]["name"] for r in globex_hook.received} == {"globex-1"}


def test_two_workers_never_send_one_endpoint_two_events_at_once(committed, make_project):
    project, _ = make_project()
    with (
        receiver_running() as first,
        receiver_running() as second,
        worker_process(env=WORKER_ENV),
        worker_process(env=WORKER_ENV),
    ):
        for hook in (first, second):
            hook.delay_seconds = 0.02
            webhook_create(project=project, actor=bot(project), url=hook.url)
        open_sessions(project, *(f"conv-{i}" for i in range(8)))
        for hook in (first, second):
            hook.wait_for(every_event_once(hook, project))

    for hook in (first, second):
        ids = [r.id for r in hook.received]
        assert len(ids) == len(set(ids)) == 16  # each event once: nothing was delivered twice
        assert hook.most_in_flight == 1
        assert [r.event["cursor"] for r in hook.received] == list(range(1, 17))


def test_an_endpoint_failing_past_the_retry_window_is_disabled(committed, make_project, receiver):
    project, key = make_project()
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    receiver.answer = lambda _n: 500
    open_sessions(project, "conv-1")

    with worker_process(env={**WORKER_ENV, "MOSS_WEBHOOK_RETRY_WINDOW_SECONDS": "1"}):
        deadline = time.monotonic() + 30
        while WebhookEndpoint.objects.get(pk=endpoint.pk).disabled_at is None:
            assert time.monotonic() < deadline, "not disabled in 30 s"
            time.sleep(0.1)
        attempts = len(receiver.received)
        open_sessions(project, "conv-2")
        time.sleep(1.5)  # the worker would have sent these by now; it must not
        assert len(receiver.received) == attempts

    [webhook] = ApiClient(project, key).get("/webhooks").json()["webhooks"]
    assert webhook["enabled"] is False
    assert webhook["disabled_reason"].startswith(f"{attempts} attempts to deliver evt_")
    assert "failed over 1 s; last: HTTP 500" in webhook["disabled_reason"]
    assert webhook["last_attempt"]["status_code"] == 500


def test_idle_threads_sleep_while_another_sends_a_due_retry(
    committed: None, make_project, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry that is due but locked (another thread is sending it) is not claimable:
    the other threads used to poll for it without a pause until that attempt ended."""
    from sessions_app.webhooks import worker

    project, _ = make_project()
    receiver.delay_seconds = 2.0
    receiver.answer = lambda _n: 500
    endpoint, _ = webhook_create(project=project, actor=bot(project), url=receiver.url)
    session_open(project=project, name="conv-1", actor=bot(project))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failures=1,
        failing_since=timezone.now(),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    polls = 0
    next_due = worker.webhooks_next_due

    def counted() -> object:
        nonlocal polls
        polls += 1
        return next_due()

    monkeypatch.setattr(worker, "webhooks_next_due", counted)
    stop, wakeup = threading.Event(), worker.Wakeup()
    threads = [threading.Thread(target=worker._deliver_loop, args=(stop, wakeup)) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)  # the one attempt is still waiting for its answer
    polled = polls
    stop.set()
    wakeup.bump()
    for thread in threads:
        thread.join()
    # Three idle threads, each at most once per MIN_SLEEP_SECONDS: a dozen or so.
    assert polled <= 16, polled
    assert len(receiver.received) == 1
