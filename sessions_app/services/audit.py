from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models.sql import InsertQuery

from sessions_app.actors import Actor
from sessions_app.models import AuditEvent, Project, Session


def audit_record(
    *,
    project: Project,
    kind: str,
    actor: Actor,
    session: Session | None = None,
    channel: str = "",
    device: str = "",
    data: dict[str, Any] | None = None,
    wait_for_disk: bool = True,
) -> AuditEvent:
    """The event, stored. With `wait_for_disk=False` and no transaction open, its commit
    does not wait for the disk (the larger part of a lone insert's time on a busy disk):
    a database crash within a fraction of a second may lose the row, whole; the event
    returned then has no pk. Inside a caller's transaction, that transaction's commit
    decides."""
    event = AuditEvent(
        project=project,
        session=session,
        session_name=session.name if session else "",
        kind=kind,
        actor_user=actor.user,
        actor_key=actor.api_key,
        actor_label=actor.label,
        channel=channel,
        device=device,
        data=data or {},
    )
    if wait_for_disk or connection.in_atomic_block:
        event.save(force_insert=True)
    else:
        _insert_without_waiting(event)
    return event


def _insert_without_waiting(event: AuditEvent) -> None:
    # One round trip: the statements of one query string run as one implicit transaction,
    # so SET LOCAL ends with it (no BEGIN and COMMIT of their own).
    fields = [field for field in AuditEvent._meta.local_concrete_fields if not field.primary_key]
    query = InsertQuery(AuditEvent)
    query.insert_values(fields, [event])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off; " + sql, params)
