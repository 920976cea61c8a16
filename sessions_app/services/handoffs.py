"""Handoffs: a bot's push_index, and a specialist's claim, hand-back, transfer, resolve.

Each records a Handoff (the session's version goes up by one) and an audit
event, changes the session's status and holder, and notifies the console
after commit.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.access import session_routed_to_user, user_supervises
from sessions_app.actors import Actor
from sessions_app.errors import Conflict, InvalidInput, PermissionDenied
from sessions_app.models import (
    Handoff,
    HandoffTarget,
    Membership,
    Session,
    SessionStatus,
    Team,
)
from sessions_app.services.audit import audit_record

STATUS_AFTER = {
    HandoffTarget.BOT: SessionStatus.BOT,
    HandoffTarget.HUMANS: SessionStatus.WAITING,
    HandoffTarget.TEAM: SessionStatus.WAITING,
    HandoffTarget.USER: SessionStatus.WAITING,
    HandoffTarget.RESOLVED: SessionStatus.RESOLVED,
}


def _route(session: Session, to_kind: str, to_target: str) -> tuple[Team | None, User | None]:
    """The team or user a waiting escalation is routed to, checked against the project."""
    if to_kind == HandoffTarget.TEAM:
        team = Team.objects.filter(project=session.project, name=to_target).first()
        if team is None:
            raise InvalidInput(f"no team named {to_target!r} in this project")
        return team, None
    if to_kind == HandoffTarget.USER:
        member = (
            Membership.objects.filter(project=session.project, user__username=to_target)
            .select_related("user")
            .first()
        )
        if member is None:
            raise InvalidInput(f"no specialist named {to_target!r} in this project")
        return None, member.user
    return None, None


def handoff_record(
    *,
    session: Session,
    actor: Actor,
    to_kind: str,
    to_target: str = "",
    reason: str = "",
    from_agent: str = "",
    from_channel: str = "",
    audit_kind: str = "handoff",
) -> Handoff:
    """Record a handoff on a locked session and move it to the status it leads to."""
    if to_kind not in HandoffTarget.values:
        raise InvalidInput(
            f"unknown handoff target {to_kind!r}; use one of {', '.join(HandoffTarget.values)}"
        )
    if to_kind in (HandoffTarget.TEAM, HandoffTarget.USER) and not to_target:
        raise InvalidInput(f"a handoff to a {to_kind} needs its name in 'to'")
    team, user = _route(session, to_kind, to_target)
    now = timezone.now()
    session.version += 1
    session.status = STATUS_AFTER[HandoffTarget(to_kind)]
    session.queue_team = team
    session.queue_user = user
    if session.status == SessionStatus.WAITING:
        session.waiting_since = now
        session.holder = None
        session.holder_label = ""
    else:
        session.waiting_since = None
        session.holder = None
        session.holder_label = to_target if to_kind == HandoffTarget.BOT else ""
    session.save()
    handoff = Handoff.objects.create(
        session=session,
        version=session.version,
        doc_count=session.doc_count,
        last_seq=session.last_seq,
        from_agent=from_agent or actor.label,
        from_channel=from_channel,
        to_kind=to_kind,
        to_target=to_target,
        reason=reason,
        by_user=actor.user,
        by_key=actor.api_key,
    )
    audit_record(
        project=session.project,
        session=session,
        kind=audit_kind,
        actor=actor,
        channel=from_channel,
        data={
            "version": session.version,
            "to_kind": to_kind,
            "to": to_target,
            "reason": reason,
            "doc_count": session.doc_count,
            "job_id": str(handoff.job_id),
        },
    )
    events.session_changed(session=session, kind=audit_kind, data={"to_kind": to_kind})
    return handoff


def session_push(
    *,
    session: Session,
    actor: Actor,
    to_kind: str = HandoffTarget.BOT,
    to_target: str = "",
    reason: str = "",
    from_agent: str = "",
    from_channel: str = "",
) -> Handoff:
    """push_index: mark the handoff point and notify whoever is next."""
    escalation = (HandoffTarget.HUMANS, HandoffTarget.TEAM, HandoffTarget.USER)
    kind = "escalated" if to_kind in escalation else "handoff"
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        handoff = handoff_record(
            session=locked,
            actor=actor,
            to_kind=to_kind,
            to_target=to_target,
            reason=reason,
            from_agent=from_agent,
            from_channel=from_channel,
            audit_kind=kind,
        )
    _copy_state(locked, session)
    return handoff


def _routing_label(session: Session) -> str:
    if session.queue_user is not None:
        return session.queue_user.get_username()
    if session.queue_team is not None:
        return f"team {session.queue_team.name}"
    return "anyone"


def _claim_override(session: Session, user: User) -> str:
    """The routing a supervisor or admin overrides by claiming, or an empty string when
    the escalation is routed to this user. An agent outside the routing is refused."""
    if session_routed_to_user(session=session, user=user):
        return ""
    routed = _routing_label(session)
    if not user_supervises(user=user, project=session.project):
        only = "its members" if session.queue_team_id else routed
        raise PermissionDenied(
            f"{session.name} is routed to {routed}: only {only} or a supervisor may claim it"
        )
    return routed


def session_claim(*, session: Session, user: User) -> Session:
    """Take a waiting escalation. Exactly one specialist wins; the others get Conflict.

    Routing is enforced: a team's escalation goes to its members, a named
    specialist's to them. Supervisors and admins may claim it anyway; the claim's
    audit event records the routing they overrode.
    """
    with transaction.atomic():
        locked = (
            Session.objects.select_for_update(of=("self",))
            .select_related("project", "queue_team", "queue_user")
            .get(pk=session.pk)
        )
        if locked.status != SessionStatus.WAITING:
            holder = locked.holder.get_username() if locked.holder else None
            if holder:
                raise Conflict(f"{holder} has already claimed {locked.name}")
            raise Conflict(f"{locked.name} is no longer waiting for a human")
        override = _claim_override(locked, user)
        now = timezone.now()
        waited = (now - locked.waiting_since).total_seconds() if locked.waiting_since else None
        locked.status = SessionStatus.HELD
        locked.holder = user
        locked.holder_label = user.get_username()
        locked.waiting_since = None
        locked.save()
        Handoff.objects.filter(session=locked, version=locked.version, claimed_at=None).update(
            claimed_at=now, claimed_by=user
        )
        audit_record(
            project=locked.project,
            session=locked,
            kind="claimed",
            actor=Actor.for_user(user),
            data={
                "version": locked.version,
                "waited_seconds": waited,
                **({"override": override} if override else {}),
            },
        )
        events.session_changed(session=locked, kind="claimed", data={"holder": user.pk})
    _copy_state(locked, session)
    return session


def _held_by_check(session: Session, user: User) -> None:
    if session.status != SessionStatus.HELD or session.holder_id != user.pk:
        raise Conflict(f"you do not hold {session.name}; claim it first")


def session_hand_back(*, session: Session, user: User, bot: str, note: str) -> Handoff:
    return _specialist_handoff(
        session=session,
        user=user,
        to_kind=HandoffTarget.BOT,
        to_target=bot or "bot",
        reason=note,
        audit_kind="handed_back",
    )


def session_transfer(
    *, session: Session, user: User, to_kind: str, to_target: str, note: str
) -> Handoff:
    if to_kind not in (HandoffTarget.TEAM, HandoffTarget.USER, HandoffTarget.HUMANS):
        raise InvalidInput("a transfer goes to a team, a named specialist or the human queue")
    return _specialist_handoff(
        session=session,
        user=user,
        to_kind=to_kind,
        to_target=to_target,
        reason=note,
        audit_kind="transferred",
    )


def session_resolve(*, session: Session, user: User, note: str) -> Handoff:
    return _specialist_handoff(
        session=session,
        user=user,
        to_kind=HandoffTarget.RESOLVED,
        to_target="",
        reason=note,
        audit_kind="resolved",
    )


def _specialist_handoff(
    *,
    session: Session,
    user: User,
    to_kind: str,
    to_target: str,
    reason: str,
    audit_kind: str,
) -> Handoff:
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        _held_by_check(locked, user)
        handoff = handoff_record(
            session=locked,
            actor=Actor.for_user(user),
            to_kind=to_kind,
            to_target=to_target,
            reason=reason,
            from_agent=user.get_username(),
            from_channel="console",
            audit_kind=audit_kind,
        )
    _copy_state(locked, session)
    return handoff


def _copy_state(source: Session, target: Session) -> None:
    if source is not target:
        for field in (
            "status",
            "holder_id",
            "holder_label",
            "version",
            "waiting_since",
            "queue_team_id",
            "queue_user_id",
            "doc_count",
            "last_seq",
        ):
            setattr(target, field, getattr(source, field))
