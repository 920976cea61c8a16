"""Handoffs: a bot's push_index, and a specialist's claim, hand-back, transfer, resolve.

Each records a Handoff (the session's version goes up by one) and an audit
event, changes the session's status and holder, and notifies the console
after commit.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
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
from sessions_app.selectors import ESCALATIONS, last_escalation, session_locked
from sessions_app.services.audit import audit_record
from sessions_app.services.channels import handoff_channel_before
from sessions_app.services.event_log import event_record

# The event each kind of handoff writes to the log bots read.
EVENT_TYPE = {
    "escalated": "session.escalated",
    "handoff": "session.pushed",
    "handed_back": "session.handed_back",
    "transferred": "session.transferred",
    "resolved": "session.resolved",
    "reopened": "session.reopened",
    "taken_over": "session.taken_over",
    "reassigned": "session.reassigned",
    "released": "session.released",
}

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
    extra: dict[str, object] | None = None,
    claimed_by: User | None = None,
    job_id: uuid.UUID | None = None,
) -> Handoff:
    """Record a handoff on a locked session and move it to the status it leads to.

    With `claimed_by` (a supervisor taking a session over) the handoff to that
    user is claimed in the same step: the session is held by them at once."""
    if to_kind not in HandoffTarget.values:
        raise InvalidInput(
            f"unknown handoff target {to_kind!r}; use one of {', '.join(HandoffTarget.values)}"
        )
    if to_kind in (HandoffTarget.TEAM, HandoffTarget.USER) and not to_target:
        raise InvalidInput(f"a handoff to a {to_kind} needs the {to_kind}'s name in 'target'")
    team, user = _route(session, to_kind, to_target)
    now = timezone.now()
    # The human episode goes on after an escalation; it starts with an escalation after
    # anything else (or none), and a resolution closes the one going on, if any.
    previous = session.last_handoff
    ongoing = previous.episode_started_at if previous and previous.to_kind in ESCALATIONS else None
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
    handoff = Handoff.objects.create(
        session=session,
        project_id=session.project_id,
        version=session.version,
        doc_count=session.doc_count,
        last_seq=session.last_seq,
        channel_before=handoff_channel_before(session=session),
        from_agent=from_agent or actor.label,
        from_channel=from_channel,
        to_kind=to_kind,
        to_target=to_target,
        reason=reason,
        by_user=actor.user,
        by_key=actor.api_key,
        episode_started_at=ongoing if to_kind in (*ESCALATIONS, HandoffTarget.RESOLVED) else None,
        **({"job_id": job_id} if job_id is not None else {}),
    )
    if to_kind in ESCALATIONS and ongoing is None:
        # Its own time (created_at is set on insert).
        handoff.episode_started_at = handoff.created_at
        handoff.save(update_fields=["episode_started_at"])
    session.last_handoff = handoff
    if claimed_by is not None:
        session.status = SessionStatus.HELD
        session.holder = claimed_by
        session.holder_label = claimed_by.get_username()
        session.waiting_since = None
        handoff.claimed_at, handoff.claimed_by = now, claimed_by
        handoff.save(update_fields=["claimed_at", "claimed_by"])
    session.save()
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
            **(extra or {}),
        },
    )
    event_record(
        session=session,
        actor=actor,
        type=EVENT_TYPE[audit_kind],
        data={**handoff_data(handoff), **(extra or {})},
    )
    events.session_changed(session=session, kind=audit_kind, data={"to_kind": to_kind})
    return handoff


def handoff_data(handoff: Handoff) -> dict[str, object]:
    """A handoff as events and the API describe it."""
    return {
        "version": handoff.version,
        "job_id": str(handoff.job_id),
        "from_agent": handoff.from_agent,
        "from_channel": handoff.from_channel,
        "to": {"kind": handoff.to_kind, "target": handoff.to_target},
        "reason": handoff.reason,
        "doc_count": handoff.doc_count,
        "last_seq": handoff.last_seq,
    }


def session_push(
    *,
    session: Session,
    actor: Actor,
    to_kind: str = HandoffTarget.BOT,
    to_target: str = "",
    reason: str = "",
    from_agent: str = "",
    from_channel: str = "",
    force: bool = False,
    job_id: uuid.UUID | None = None,
) -> Handoff:
    """push_index: mark the handoff point and notify whoever is next.

    A push that names a `job_id` an earlier push of the same session used, with the
    same target, reason and channel, records nothing and returns that handoff.

    A session a specialist holds is theirs until they hand it on: a bot takes
    it over only with `force`, and the take-over is recorded with whom it was
    taken from.
    """
    kind = "escalated" if to_kind in ESCALATIONS else "handoff"
    try:
        with transaction.atomic():
            locked = session_locked(session=session)
            locked.project = session.project  # the caller's, already read
            if job_id is not None:
                earlier = _push_earlier(
                    session=locked,
                    job_id=job_id,
                    to_kind=to_kind,
                    to_target=to_target,
                    reason=reason,
                    from_channel=from_channel,
                )
                if earlier is not None:
                    session_state_copy(locked, session)
                    return earlier
            extra: dict[str, object] = {}
            if locked.status == SessionStatus.HELD:
                if not force:
                    raise Conflict(
                        f"{locked.holder_label} holds {locked.name}; "
                        "send force=true to take it over"
                    )
                extra = {"forced": True, "taken_over_from": locked.holder_label}
            handoff = handoff_record(
                session=locked,
                actor=actor,
                to_kind=to_kind,
                to_target=to_target,
                reason=reason,
                from_agent=from_agent,
                from_channel=from_channel,
                audit_kind=kind,
                extra=extra,
                job_id=job_id,
            )
    except IntegrityError:
        # Another session's push took this job_id while this one was being recorded.
        if job_id is not None and Handoff.objects.filter(job_id=job_id).exists():
            raise _job_id_taken(job_id) from None
        raise
    session_state_copy(locked, session)
    return handoff


def _job_id_taken(job_id: uuid.UUID) -> Conflict:
    # Nothing about the other push: it may be another project's.
    return Conflict(f"job_id {job_id} was already used for another push; send a new one")


def _push_earlier(
    *,
    session: Session,
    job_id: uuid.UUID,
    to_kind: str,
    to_target: str,
    reason: str,
    from_channel: str,
) -> Handoff | None:
    """The handoff an earlier push with this job_id recorded on the (locked) session, so
    that a push sent again after a lost answer or a 503 is recorded once; None if no push
    used it. Conflict when it named another handoff, or is another session's."""
    earlier = Handoff.objects.filter(job_id=job_id).first()
    if earlier is None:
        return None
    same = (earlier.to_kind, earlier.to_target, earlier.reason, earlier.from_channel) == (
        to_kind,
        to_target,
        reason,
        from_channel,
    )
    if earlier.session_id != session.pk or not same:
        raise _job_id_taken(job_id)
    return earlier


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
        event_record(
            session=locked,
            actor=Actor.for_user(user),
            type="session.claimed",
            data={
                "version": locked.version,
                "holder": user.get_username(),
                "waited_seconds": waited,
                **({"override": override} if override else {}),
            },
        )
        events.session_changed(session=locked, kind="claimed", data={"holder": user.pk})
    session_state_copy(locked, session)
    return session


def held_by_check(session: Session, user: User) -> None:
    """Conflict unless `user` holds the session (check it on the locked row)."""
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
        extra={"bot": bot or "bot", "note": note},
    )


def session_reopen(*, session: Session, actor: Actor) -> Handoff:
    """A resolved session the customer wrote to again goes back to the human queue,
    to the team of its last escalation if it had one. Runs on a locked session."""
    last = last_escalation(session=session)
    to_kind, to_target = HandoffTarget.HUMANS, ""
    team_still_there = (
        last is not None
        and last.to_kind == HandoffTarget.TEAM
        and Team.objects.filter(project_id=session.project_id, name=last.to_target).exists()
    )
    if last is not None and team_still_there:
        to_kind, to_target = HandoffTarget.TEAM, last.to_target
    return handoff_record(
        session=session,
        actor=actor,
        to_kind=to_kind,
        to_target=to_target,
        reason="the customer wrote after the session was resolved",
        from_agent=actor.label,
        audit_kind="reopened",
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
    extra: dict[str, object] | None = None,
) -> Handoff:
    with transaction.atomic():
        locked = session_locked(session=session)
        held_by_check(locked, user)
        handoff = handoff_record(
            session=locked,
            actor=Actor.for_user(user),
            to_kind=to_kind,
            to_target=to_target,
            reason=reason,
            from_agent=user.get_username(),
            from_channel="console",
            audit_kind=audit_kind,
            extra=extra,
        )
    session_state_copy(locked, session)
    return handoff


def session_state_copy(source: Session, target: Session) -> None:
    if source is not target:
        for field in (
            "status",
            "holder_id",
            "holder_label",
            "version",
            "waiting_since",
            "queue_team_id",
            "queue_user_id",
            "last_handoff_id",
            "doc_count",
            "last_seq",
        ):
            setattr(target, field, getattr(source, field))
