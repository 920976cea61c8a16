"""The long-poll stream: a project's events after a cursor, waiting for the next ones if asked.

A read takes the log's head (the project's event counter) first and then the
events up to it: every event at or below the head has committed by then (see
event_log.py), so when the page is not full the reader has seen everything up
to the head, and `next_cursor` moves there even if a filter left nothing to
return. A waiting reader holds no database connection and no thread: it awaits
the process's LISTEN connection (notify_listener.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.db import connection

from sessions_app.errors import InvalidInput
from sessions_app.models import Project
from sessions_app.notify_listener import listener_get
from sessions_app.selectors import events_after
from sessions_app.services.event_log import EVENT_TYPES, event_payload
from sessions_app.validation import session_name_check

MAX_WAIT_SECONDS = 30
MAX_LIMIT = 500

# `after` is a cursor, None for the oldest event kept, or "now" for the log's head.
After = int | Literal["now"] | None


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    next_cursor: int


def events_stream_check(
    *, after: After, types: list[str] | None, session_name: str | None, wait: float, limit: int
) -> None:
    if isinstance(after, int) and after < 0:
        raise InvalidInput("after must be a cursor (0 or more), or 'now'")
    unknown = [t for t in types or [] if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(EVENT_TYPES)}"
        )
    if session_name is not None:
        session_name_check(session_name)
    if not (math.isfinite(wait) and 0 <= wait <= MAX_WAIT_SECONDS):
        raise InvalidInput(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")


def events_page_read(
    *, project: Project, after: After, types: list[str] | None, session_name: str | None, limit: int
) -> EventPage:
    """One read of the log: the head, then up to `limit` matching events after `after`."""
    try:
        head = Project.objects.filter(pk=project.pk).values_list("event_cursor", flat=True).get()
        if after == "now":
            start = head
        elif after is None:
            start = 0
        elif after > head:
            raise InvalidInput(
                f"after={after} is past the latest event ({head}); "
                "pass a cursor this stream returned"
            )
        else:
            start = after
        events = events_after(
            project=project,
            after=start,
            up_to=head,
            types=types,
            session_name=session_name,
            limit=limit,
        )
        next_cursor = events[-1].cursor if len(events) == limit else head
        return EventPage(events=[event_payload(e) for e in events], next_cursor=next_cursor)
    finally:
        # A waiting long-poll must not keep a pooled connection for its whole wait.
        if not connection.in_atomic_block:
            connection.close()


async def events_wait(
    *,
    project: Project,
    after: After = None,
    types: list[str] | None = None,
    session_name: str | None = None,
    wait: float = 0,
    limit: int = 100,
) -> EventPage:
    """Events after `after` at once if there are any; otherwise the first ones to commit
    within `wait` seconds; otherwise an empty page when the time is up."""
    events_stream_check(after=after, types=types, session_name=session_name, wait=wait, limit=limit)
    read = sync_to_async(events_page_read)
    if wait == 0:
        return await read(
            project=project, after=after, types=types, session_name=session_name, limit=limit
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    listener = listener_get()
    # Subscribed before the first read: a commit after the read still wakes this waiter.
    with listener.subscribe(project.pk) as wakeup:
        while True:
            wakeup.clear()
            page = await read(
                project=project, after=after, types=types, session_name=session_name, limit=limit
            )
            after = page.next_cursor
            remaining = deadline - loop.time()
            if page.events or remaining <= 0:
                return page
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), listener.poll_interval(remaining))
