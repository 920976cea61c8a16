from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from sessions_app import events
from sessions_app.actors import Actor
from sessions_app.errors import Conflict, InvalidInput
from sessions_app.models import Project, Session
from sessions_app.selectors import session_find, session_get
from sessions_app.services.audit import audit_record
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
    session = session_find(project=project, name=name)
    if session is not None and not _metadata_adds(session, metadata):
        if model_id and session.model_id != resolved_model:
            raise Conflict(
                f"session {name!r} was created with model {session.model_id!r}, not {model_id!r}"
            )
        _resume_record(session=session, actor=actor, channel=channel, device=device)
        return session, False
    created = False
    with transaction.atomic():
        session = Session.objects.filter(project=project, name=name).first()
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
                session = session_get(project=project, name=name)
        if not created and model_id and session.model_id != resolved_model:
            raise Conflict(
                f"session {name!r} was created with model {session.model_id!r}, not {model_id!r}"
            )
        if not created and metadata and _metadata_adds(session, metadata):
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


def _metadata_adds(session: Session, metadata: dict[str, Any] | None) -> bool:
    return metadata is not None and not metadata.items() <= session.metadata.items()


def _resume_record(*, session: Session, actor: Actor, channel: str, device: str) -> None:
    """A resume that changes nothing: its audit row is its only write, and need not wait
    for the disk (often most of the call's time)."""
    audit_record(
        project=session.project,
        session=session,
        kind="session.opened",
        actor=actor,
        channel=channel,
        device=device,
        wait_for_disk=False,
    )


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
