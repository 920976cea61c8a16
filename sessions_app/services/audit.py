from __future__ import annotations

from typing import Any

from django.db import connection

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
) -> AuditEvent:
    event = audit_event(
        project=project,
        kind=kind,
        actor=actor,
        session=session,
        channel=channel,
        device=device,
        data=data,
    )
    event.save(force_insert=True)
    return event


def audit_event(
    *,
    project: Project,
    kind: str,
    actor: Actor,
    session: Session | None = None,
    channel: str = "",
    device: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event, not yet stored."""
    return AuditEvent(
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


def audit_insert_select(
    event: AuditEvent, *, session_id: str, source: str
) -> tuple[str, list[Any]]:
    """`INSERT ... SELECT` of the event once per row of `source` (a query's name in a
    WITH clause), its session id the SQL expression `session_id`; and its parameters."""
    fields = [field for field in AuditEvent._meta.local_concrete_fields if not field.primary_key]
    values, params = [], []
    for field in fields:
        if field.attname == "session_id":
            values.append(session_id)
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(event, True), connection))
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) SELECT {', '.join(values)} FROM {source}"
    return sql, params
