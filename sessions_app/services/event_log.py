"""The event log (outbox) that bots read: every change to a session, in commit order.

Services call `events_record` inside the transaction that makes the change, so
an event exists exactly when its change does. Cursors come from a counter on
the project row, taken under its row lock, which is held until commit: a
transaction that took cursor N commits before any transaction can take N+1.
A `pg_notify` in the same transaction wakes long-polls and the webhook worker
once it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from sessions_app.actors import Actor
from sessions_app.errors import InvalidInput
from sessions_app.models import Event, Project, Session, Turn

NOTIFY_CHANNEL = "moss_events"

EVENT_TYPES = (
    "session.created",
    "session.deleted",
    "session.escalated",
    "session.pushed",
    "session.claimed",
    "session.handed_back",
    "session.transferred",
    "session.resolved",
    "session.reopened",
    "session.taken_over",
    "session.reassigned",
    "session.released",
    "turn.added",
    "turn.updated",
    "turn.deleted",
)


@dataclass(frozen=True)
class EventInput:
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def actor_describe(actor: Actor) -> tuple[str, str]:
    """(kind, name) of who acted: a bot through a key, a user, or the system."""
    if actor.api_key is not None:
        return "bot", actor.label
    if actor.user is not None:
        return "user", actor.user.get_username()
    return "system", actor.label


def session_state(session: Session) -> dict[str, Any]:
    return {
        "name": session.name,
        "status": session.status,
        "holder": session.holder_label or None,
        "version": session.version,
    }


def turn_data(turn: Turn) -> dict[str, Any]:
    metadata = turn.metadata or {}
    return {
        "id": turn.doc_id,
        "seq": turn.seq,
        "role": metadata.get("role", ""),
        "author": metadata.get("author", ""),
        "channel": metadata.get("channel", ""),
        "text": turn.text,
        "metadata": metadata,
    }


def _cursors_take(*, project_id: int, count: int) -> int:
    """Reserve `count` cursors for this project; returns the last one."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Project._meta.db_table} SET event_cursor = event_cursor + %s "
            "WHERE id = %s RETURNING event_cursor",
            [count, project_id],
        )
        row = cursor.fetchone()
    assert row is not None, "events_record on a project that does not exist"
    return int(row[0])


def events_record(*, session: Session, actor: Actor, events: Iterable[EventInput]) -> list[Event]:
    """Append events about `session` to its project's log, in the caller's transaction."""
    inputs = list(events)
    if not inputs:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("events_record must run inside the change's transaction")
    unknown = {e.type for e in inputs} - set(EVENT_TYPES)
    assert not unknown, f"unknown event types {unknown}"
    last = _cursors_take(project_id=session.project_id, count=len(inputs))
    actor_kind, actor_name = actor_describe(actor)
    state = session_state(session)
    rows = [
        Event(
            project_id=session.project_id,
            cursor=last - len(inputs) + 1 + index,
            type=item.type,
            session=session,
            session_name=session.name,
            session_state=state,
            actor_kind=actor_kind,
            actor_name=actor_name,
            data=item.data,
        )
        for index, item in enumerate(inputs)
    ]
    Event.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        # Delivered by PostgreSQL when (and only if) the transaction commits.
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, f"{session.project_id}:{last}"])
    return rows


def event_record(
    *, session: Session, actor: Actor, type: str, data: dict[str, Any] | None = None
) -> Event:
    return events_record(session=session, actor=actor, events=[EventInput(type, data or {})])[0]


def event_payload(event: Event) -> dict[str, Any]:
    """The public shape of an event, the same in the stream and in webhooks."""
    return {
        "id": f"evt_{event.uid.hex}",
        "cursor": event.cursor,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "session": event.session_state,
        "actor": {"kind": event.actor_kind, "name": event.actor_name},
        "data": event.data,
    }


def events_prune(*, older_than_days: int | None = None) -> int:
    """Delete events past the retention period; returns how many."""
    days = settings.MOSS_EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 0:
        raise InvalidInput("retention must be zero or more days")
    cutoff = timezone.now() - timedelta(days=days)
    with transaction.atomic():
        _, per_model = Event.objects.filter(created_at__lt=cutoff).delete()
    return per_model.get(Event._meta.label, 0)
