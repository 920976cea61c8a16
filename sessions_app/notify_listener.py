"""One LISTEN connection per server process, waking the long-polls of each project.

Every transaction that writes events runs `pg_notify(NOTIFY_CHANNEL, '<project id>:<cursor>')`
(see services/event_log.py); PostgreSQL delivers it when the transaction commits.
A waiting long-poll registers here *before* it reads the log, so a commit that
lands between its read and its wait still wakes it.

The listener starts with the first waiter, on the server's event loop, and
reconnects with backoff when its connection drops. While it is not listening,
waiters fall back to re-reading the log every `FALLBACK_POLL_SECONDS`; when it
(re)connects it wakes every waiter, so nothing committed in the gap is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg
from django.db import connections

from sessions_app.services.event_log import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

APPLICATION_NAME = "moss-events-listener"
FALLBACK_POLL_SECONDS = 1.0
# A connection that went quiet is checked this often, so a dead one is noticed.
HEALTH_CHECK_SECONDS = 15.0
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 5.0


def _connection_params() -> dict[str, Any]:
    """Django's own connection settings, for a psycopg connection of our own."""
    params = connections["default"].get_connection_params()
    # Django's sync cursor class and adapters do not fit an AsyncConnection.
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["application_name"] = APPLICATION_NAME
    return params


class NotifyListener:
    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    @contextlib.contextmanager
    def subscribe(self, project_id: int) -> Iterator[asyncio.Event]:
        """An event set whenever `project_id`'s log may have grown (or the listener
        reconnected). Clear it before each read of the log."""
        wakeup = asyncio.Event()
        self._waiters[project_id].add(wakeup)
        self._ensure_running()
        try:
            yield wakeup
        finally:
            waiters = self._waiters.get(project_id)
            if waiters is not None:
                waiters.discard(wakeup)
                if not waiters:
                    del self._waiters[project_id]

    def poll_interval(self, remaining: float) -> float:
        """How long a waiter may sleep before re-reading the log on its own."""
        return remaining if self.listening else min(remaining, FALLBACK_POLL_SECONDS)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="moss-events-listener"
            )

    def _wake(self, project_id: int) -> None:
        for wakeup in self._waiters.get(project_id, ()):
            wakeup.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wakeup in waiters:
                wakeup.set()

    def _dispatch(self, payload: str) -> None:
        project, _, _cursor = payload.partition(":")
        try:
            project_id = int(project)
        except ValueError:
            logger.warning("ignoring a %s notification with payload %r", NOTIFY_CHANNEL, payload)
            return
        self._wake(project_id)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    failures = 0  # it was up: start over with a short delay
                delay = min(RECONNECT_FIRST_DELAY * 2**failures, RECONNECT_MAX_DELAY)
                failures += 1
                logger.warning("events listener: %s; reconnecting in %.1fs", exc, delay)
            finally:
                self.listening = False
                # Waiters switch to polling until the listener is back.
                self._wake_all()
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            **_connection_params(), autocommit=True
        ) as conn:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.listening = True
            logger.info("events listener connected")
            # Whatever committed before LISTEN took effect: let every waiter re-read.
            self._wake_all()
            while True:
                async for notify in conn.notifies(timeout=HEALTH_CHECK_SECONDS):
                    self._dispatch(notify.payload)
                await conn.execute("SELECT 1")


_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, NotifyListener] = (
    weakref.WeakKeyDictionary()
)


def listener_get() -> NotifyListener:
    """The listener of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None:
        listener = _listeners[loop] = NotifyListener()
    return listener
