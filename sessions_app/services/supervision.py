"""A supervisor on a session someone else holds: take it over, reassign it, release it.

Each is a handoff like a specialist's (a version, an audit event with the
supervisor's name and whom it was taken from, an event bots read) and reaches
the holder's open page live: the console re-renders their side panel and
tells them who moved it (fragments_console._lost_notice).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from sessions_app.access import user_supervises
from sessions_app.actors import Actor
from sessions_app.errors import Conflict, InvalidInput, PermissionDenied
from sessions_app.models import Handoff, HandoffTarget, Session, SessionStatus
from sessions_app.services.handoffs import handoff_record, session_state_copy

REASSIGN_TARGETS = (HandoffTarget.TEAM, HandoffTarget.USER)


def _supervised(
    *,
    session: Session,
    supervisor: User,
    audit_kind: str,
    to_kind: str,
    to_target: str,
    note: str,
    take: bool = False,
) -> Handoff:
    with transaction.atomic():
        locked = (
            Session.objects.select_for_update(of=("self",))
            .select_related("project")
            .get(pk=session.pk)
        )
        if not user_supervises(user=supervisor, project=locked.project):
            raise PermissionDenied("only a supervisor or an admin of this project may do this")
        if locked.status != SessionStatus.HELD:
            raise Conflict(f"{locked.name} is not held by anyone now")
        if locked.holder_id == supervisor.pk:
            raise Conflict(f"you hold {locked.name} already")
        handoff = handoff_record(
            session=locked,
            actor=Actor.for_user(supervisor),
            to_kind=to_kind,
            to_target=to_target,
            reason=note,
            from_agent=supervisor.get_username(),
            from_channel="console",
            audit_kind=audit_kind,
            extra={"taken_from": locked.holder_label, "supervisor": supervisor.get_username()},
            claimed_by=supervisor if take else None,
        )
    session_state_copy(locked, session)
    return handoff


def session_take_over(*, session: Session, supervisor: User, note: str = "") -> Handoff:
    """The supervisor holds the session from now on; its holder can no longer reply."""
    return _supervised(
        session=session,
        supervisor=supervisor,
        audit_kind="taken_over",
        to_kind=HandoffTarget.USER,
        to_target=supervisor.get_username(),
        note=note,
        take=True,
    )


def session_reassign(
    *, session: Session, supervisor: User, to_kind: str, to_target: str, note: str = ""
) -> Handoff:
    """Back to the queue, routed to a team or a named specialist, who claims it."""
    if to_kind not in REASSIGN_TARGETS or not to_target:
        raise InvalidInput("reassign to a team or a named specialist")
    return _supervised(
        session=session,
        supervisor=supervisor,
        audit_kind="reassigned",
        to_kind=to_kind,
        to_target=to_target,
        note=note,
    )


def session_release(*, session: Session, supervisor: User, note: str = "") -> Handoff:
    """Back to the queue, for anyone to claim."""
    return _supervised(
        session=session,
        supervisor=supervisor,
        audit_kind="released",
        to_kind=HandoffTarget.HUMANS,
        to_target="",
        note=note,
    )
