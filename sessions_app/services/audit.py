from __future__ import annotations

from typing import Any

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
    return AuditEvent.objects.create(
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
