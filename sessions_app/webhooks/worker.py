"""The delivery worker (`manage.py deliver_webhooks`).

The main thread LISTENs on the event log's NOTIFY channel and wakes the
delivery threads the moment a change commits; they also wake on their own when
a retry falls due, or every MOSS_WEBHOOK_POLL_SECONDS in case a notification was
missed (the worker was reconnecting, say). Each delivery thread calls
`webhook_deliver_due` until nothing is due. The row lock that call takes lets
threads and several worker processes share the work without sending one
endpoint two events at once. A thread of its own does the housekeeping a deployment
needs a process for: it prunes the event log about hourly, and each minute stores the
past days that dashboards lack, so that a supervisor's view reads stored days
(services/dashboard_days.py). `stop` ends it cleanly: a delivery in flight finishes and
is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from sessions_app.services.dashboard import dashboard_days_refresh
from sessions_app.services.event_log import NOTIFY_CHANNEL, events_prune
from sessions_app.webhooks.http import Clients
from sessions_app.webhooks.services import (
    webhook_attempts_prune,
    webhook_deliver_due,
    webhooks_next_due,
)

logger = logging.getLogger(__name__)

LISTEN_TICK_SECONDS = 0.5  # how often the main thread looks at `stop`
RECONNECT_SECONDS = (0.5, 10.0)  # backoff after a lost database connection: first, most


class Wakeup:
    """A counter the delivery threads wait on: a bump wakes them all, and a bump that
    comes while a thread is busy is not lost (it compares with what it saw)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.generation = 0

    def bump(self) -> None:
        with self._condition:
            self.generation += 1
            self._condition.notify_all()

    def wait(self, *, seen: int, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self.generation != seen, timeout=timeout)


# The least a thread sleeps when nothing could be claimed. A retry that is due but not
# claimable is being sent by another thread (its row is locked): without a floor, every
# idle thread would poll for it without a pause until that attempt ends.
MIN_SLEEP_SECONDS = 0.5


def _sleep_seconds() -> float:
    """Until the next retry falls due, or the fallback poll, whichever is sooner."""
    poll = settings.MOSS_WEBHOOK_POLL_SECONDS
    due = webhooks_next_due()
    if due is None:
        return poll
    return max(MIN_SLEEP_SECONDS, min(poll, (due - timezone.now()).total_seconds()))


def _deliver_loop(stop: threading.Event, wakeup: Wakeup) -> None:
    clients = Clients()
    failures = 0
    try:
        while not stop.is_set():
            seen = wakeup.generation
            try:
                while not stop.is_set():
                    delivery = webhook_deliver_due(clients=clients)
                    if delivery is None:
                        break
                    if delivery.disabled:
                        logger.warning("webhook endpoint %s disabled", delivery.endpoint_id)
                timeout = _sleep_seconds()
                failures = 0
            except Exception:
                # The database went away, most likely: start afresh after a pause.
                logger.exception("webhook delivery failed; retrying")
                connection.close()
                failures += 1
                timeout = min(RECONNECT_SECONDS[0] * 2**failures, RECONNECT_SECONDS[1])
            wakeup.wait(seen=seen, timeout=timeout)
    finally:
        clients.close()
        connections.close_all()


def _listen_params() -> dict[str, object]:
    params = connection.get_connection_params()
    params["autocommit"] = True
    return params


class _Chore:
    """Housekeeping run every `seconds` (a setting's name, read each time); a failure is
    logged and tried again next time."""

    def __init__(self, what: str, seconds: str, run: Callable[[], str | None]) -> None:
        self.what, self.seconds, self.run = what, seconds, run
        self.next_at = 0.0

    def maybe_run(self) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + getattr(settings, self.seconds)
        try:
            done = self.run()
        except Exception:
            logger.exception("%s failed", self.what)
            connection.close()
            return
        if done:
            logger.info("%s", done)


def _prune() -> str | None:
    events, attempts = events_prune(), webhook_attempts_prune()
    if events or attempts:
        return f"pruned {events} events and {attempts} webhook attempts"
    return None


def _dashboard_days_store(stop: threading.Event) -> str | None:
    done = dashboard_days_refresh(should_stop=stop.is_set)
    if done.stored or done.deleted:
        return (
            f"dashboards: stored {done.stored} days (projects: {done.projects}),"
            f" deleted {done.deleted} past the longest window"
        )
    return None


def _housekeeping_loop(stop: threading.Event) -> None:
    """Its own thread, so that a long pass (every project's new day after midnight UTC)
    never holds up the listener's wake-ups."""
    chores = [
        _Chore("pruning the event log", "MOSS_WEBHOOK_PRUNE_SECONDS", _prune),
        _Chore(
            "storing dashboard days",
            "MOSS_DASHBOARD_REFRESH_SECONDS",
            lambda: _dashboard_days_store(stop),
        ),
    ]
    try:
        while not stop.is_set():
            for chore in chores:
                chore.maybe_run()
            stop.wait(LISTEN_TICK_SECONDS)
    finally:
        connections.close_all()


def _listen_loop(stop: threading.Event, wakeup: Wakeup, on_ready: Callable[[], None]) -> None:
    failures = 0
    while not stop.is_set():
        try:
            with psycopg.connect(**_listen_params()) as listener:  # type: ignore[arg-type]
                listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                failures = 0
                # Whatever committed while nobody listened is due now.
                wakeup.bump()
                on_ready()
                while not stop.is_set():
                    for _ in listener.notifies(timeout=LISTEN_TICK_SECONDS):
                        wakeup.bump()
        except psycopg.Error:
            failures += 1
            pause = min(RECONNECT_SECONDS[0] * 2**failures, RECONNECT_SECONDS[1])
            logger.warning("lost the LISTEN connection; reconnecting in %.1f s", pause)
            stop.wait(pause)


def worker_run(
    *,
    stop: threading.Event,
    threads: int | None = None,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Deliver webhooks until `stop` is set. `on_ready` is called once listening."""
    wakeup = Wakeup()
    count = threads or settings.MOSS_WEBHOOK_WORKER_THREADS
    workers = [
        threading.Thread(
            target=_deliver_loop, args=(stop, wakeup), name=f"webhooks-{i}", daemon=True
        )
        for i in range(count)
    ]
    workers.append(
        threading.Thread(target=_housekeeping_loop, args=(stop,), name="housekeeping", daemon=True)
    )
    for worker in workers:
        worker.start()
    ready = threading.Event()

    def ready_once() -> None:
        if not ready.is_set():
            ready.set()
            on_ready()

    try:
        _listen_loop(stop, wakeup, ready_once)
    finally:
        stop.set()
        wakeup.bump()
        for worker in workers:
            worker.join()
        connections.close_all()
