from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from sessions_app import events
from sessions_app.actors import Actor
from sessions_app.errors import Conflict, InvalidInput
from sessions_app.models import Project, Session
from sessions_app.selectors import (
    session_by_name_sql,
    session_column,
    session_from_row,
    session_get,
)
from sessions_app.services.audit import audit_event, audit_insert_select, audit_record
from sessions_app.services.event_log import event_record
from sessions_app.validation import metadata_check, session_name_check

SUPPORTED_MODELS = {settings.EMBEDDING_MODEL_ID, "moss-minilm"}


def model_id_resolve(model_id: str | None) -> str:
    if model_id is None or model_id == "":
        return settings.EMBEDDING_MODEL_ID
    if model_id not in SUPPORTED_MODELS:
        raise InvalidInput(
            f"unknown model_id {model_id!r}; supported: {', '.join(sorted(SUPPORTED_MODELS))}"
        )
    # "moss-minilm" is the hosted product's name for the same model.
    return settings.EMBEDDING_MODEL_ID


def session_open(
    *,
    project: Project,
    name: str,
    actor: Actor,
    model_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    channel: str = "",
    device: str = "",
) -> tuple[Session, bool]:
    """Create the session or resume it. Resuming reads stored state only: nothing is re-embedded."""
    session_name_check(name)
    resolved_model = model_id_resolve(model_id)
    if metadata:
        metadata_check(metadata, where="session")
    resumed = _session_resume(
        project=project,
        name=name,
        actor=actor,
        model_id=resolved_model if model_id else None,
        metadata=metadata,
        channel=channel,
        device=device,
    )
    if resumed is not None:
        return resumed, False
    # A new session, new metadata, or another model (a conflict): the full way.
    created = False
    with transaction.atomic():
        # Locked: two opens adding different metadata keys at once must both keep theirs.
        session = Session.objects.filter(project=project, name=name).select_for_update().first()
        if session is None:
            try:
                with transaction.atomic():
                    session = Session.objects.create(
                        project=project,
                        name=name,
                        model_id=resolved_model,
                        metadata=metadata or {},
                        holder_label=actor.label if actor.api_key else "",
                    )
                created = True
            except IntegrityError:
                # Another agent opened the same name at the same moment.
                session = session_get(project=project, name=name, for_update=True)
        if not created and model_id and session.model_id != resolved_model:
            raise Conflict(
                f"session {name!r} was created with model {session.model_id!r}, not {model_id!r}"
            )
        if not created and metadata and not metadata.items() <= session.metadata.items():
            session.metadata = {**session.metadata, **metadata}
            session.save(update_fields=["metadata", "updated_at"])
        audit_record(
            project=project,
            session=session,
            kind="session.created" if created else "session.opened",
            actor=actor,
            channel=channel,
            device=device,
        )
        if created:
            event_record(
                session=session,
                actor=actor,
                type="session.created",
                data={"metadata": session.metadata, "channel": channel, "device": device},
            )
            events.session_changed(session=session, kind="session.created")
    return session, created


def _session_resume(
    *,
    project: Project,
    name: str,
    actor: Actor,
    model_id: str | None,
    metadata: dict[str, Any] | None,
    channel: str,
    device: str,
) -> Session | None:
    """The session, if it exists and this open changes nothing (its model, if named, and
    metadata, if given, are the session's already); then its audit row is the only write.

    One round trip: the read and the insert are one statement, and the row's commit does
    not wait for the disk (often most of the call's time on a busy disk): a database
    crash within a fraction of a second may lose the row, whole. Inside a caller's
    transaction, that transaction's commit decides."""
    select = session_by_name_sql()
    params: list[Any] = [project.pk, name]
    if model_id:
        select += f" AND {session_column('model_id')} = %s"
        params.append(model_id)
    if metadata:
        select += f" AND {session_column('metadata')} @> %s::jsonb"
        params.append(json.dumps(metadata))
    event = audit_event(
        project=project,
        kind="session.opened",
        actor=actor,
        channel=channel,
        device=device,
    )
    event.session_name = name
    insert, insert_params = audit_insert_select(event, session_id="resumed.id", source="resumed")
    sql = f"WITH resumed AS ({select}), opened AS ({insert}) SELECT * FROM resumed"
    if not connection.in_atomic_block:
        # Its own implicit transaction: the statements of one query string are one.
        sql = f"SET LOCAL synchronous_commit = off; {sql}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params + insert_params)
        if not connection.in_atomic_block:
            cursor.nextset()
        row = cursor.fetchone()
    return None if row is None else session_from_row(project=project, row=row)


def session_delete(*, project: Project, name: str, actor: Actor) -> None:
    with transaction.atomic():
        session = session_get(project=project, name=name, for_update=True)
        audit_record(
            project=project,
            session=session,
            kind="session.deleted",
            actor=actor,
            data={"doc_count": session.doc_count},
        )
        event_record(
            session=session,
            actor=actor,
            type="session.deleted",
            data={"doc_count": session.doc_count},
        )
        events.session_changed(session=session, kind="session.deleted")
        session.delete()
