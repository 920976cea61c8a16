"""The console's HTML fragments, shared by its views and its websocket consumer.

The consumer renders these for its own user after re-reading the database, so
a fragment never carries anything that user may not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.http import Http404
from django.template.loader import render_to_string

from sessions_app.access import (
    session_get_for_console,
    session_routed_to_user,
    user_projects,
    user_supervises,
)
from sessions_app.console.forms import (
    HandBackForm,
    NoteForm,
    ReassignForm,
    ReplyForm,
    ResolveForm,
    SupervisorNoteForm,
    TransferForm,
)
from sessions_app.models import HandoffTarget, Session, SessionStatus
from sessions_app.selectors import last_escalation
from sessions_app.services.brief import session_brief
from sessions_app.services.canned import canned_for_session
from sessions_app.services.console import (
    REPLY_CHANNELS,
    ThreadChunk,
    console_queue,
    console_relevant,
    console_thread,
    last_customer_turn,
)


def queue_context(*, user: User) -> dict[str, Any]:
    return {
        "rows": console_queue(user=user),
        "show_project": user_projects(user=user).count() > 1,
    }


def queue_html(*, user: User) -> tuple[str, set[int]]:
    """The queue fragment, and the ids of the sessions it lists."""
    context = queue_context(user=user)
    html = render_to_string("console/_queue.html", context)
    return html, {row.session.pk for row in context["rows"]}


def notice_html(*, notice_id: str, message: str, level: str = "info") -> str:
    return render_to_string(
        "console/_notice.html", {"notice_id": notice_id, "message": message, "level": level}
    )


def claimed_notice_html(
    *, user: User, session_id: int, notice_id: str = "queue-notice", suffix: str = ""
) -> str:
    """Who claimed a session of this user's projects, unless it was this user."""
    session = (
        Session.objects.filter(pk=session_id, project__in=user_projects(user=user))
        .select_related("holder")
        .first()
    )
    if session is None or session.holder is None or session.holder_id == user.pk:
        return ""
    message = f"{session.holder.get_username()} claimed {session.name}.{suffix}"
    return notice_html(notice_id=notice_id, message=message)


def user_project_ids(*, user: User) -> set[int]:
    return set(user_projects(user=user).values_list("pk", flat=True))


def session_forms(
    *, session: Session, user: User, bound: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The session view's forms, unbound with sensible defaults unless one is given bound."""
    customer = last_customer_turn(session=session)
    channel = customer.metadata.get("channel", "") if customer else ""
    escalation = last_escalation(session=session)
    forms = {
        "reply_form": ReplyForm(
            initial={"channel": channel if channel in REPLY_CHANNELS else REPLY_CHANNELS[0]}
        ),
        "note_form": NoteForm(),
        "hand_back_form": HandBackForm(
            initial={"bot": escalation.from_agent if escalation and escalation.from_agent else ""}
        ),
        "transfer_form": TransferForm(session=session, user=user),
        "resolve_form": ResolveForm(),
    }
    forms.update(bound or {})
    return forms


def side_context(*, session: Session, user: User, **forms: Any) -> dict[str, Any]:
    supervises = user_supervises(user=user, project=session.project)
    holds = session.status == SessionStatus.HELD and session.holder_id == user.pk
    # A supervisor on a session someone else holds: take over, reassign, release.
    can_supervise = supervises and session.status == SessionStatus.HELD and not holds
    return {
        "session": session,
        "project": session.project,
        "holds": holds,
        "can_claim": session.status == SessionStatus.WAITING
        and (session_routed_to_user(session=session, user=user) or supervises),
        "can_supervise": can_supervise,
        **session_forms(session=session, user=user, bound=forms),
        **(supervisor_forms(session=session, bound=forms) if can_supervise else {}),
    }


def supervisor_forms(*, session: Session, bound: dict[str, Any] | None = None) -> dict[str, Any]:
    forms: dict[str, Any] = {
        "take_over_form": SupervisorNoteForm(),
        "reassign_form": ReassignForm(session=session),
        "release_form": SupervisorNoteForm(),
    }
    forms.update({k: v for k, v in (bound or {}).items() if k in forms})
    return forms


@dataclass(frozen=True)
class WatchedSession:
    pk: int
    project_public_id: str
    name: str


def session_watch(*, user: User, project_public_id: str, name: str) -> WatchedSession | None:
    """The session the websocket follows, if this user may open it (access.py)."""
    try:
        _, session = session_get_for_console(user=user, project_id=project_public_id, name=name)
    except Http404:
        return None
    return WatchedSession(pk=session.pk, project_public_id=project_public_id, name=session.name)


@dataclass(frozen=True)
class SessionUpdate:
    html: str
    last_seq: int
    version: int
    holds: bool
    supervising: bool


def _lost_notice(session: Session, user: User) -> str:
    """Why a session this user held is no longer theirs, when someone else moved it."""
    handoff = session.last_handoff
    if handoff is None or handoff.by_user_id == user.pk:
        return ""
    who = handoff.from_agent or "someone"
    if handoff.by_user_id is not None and handoff.to_kind == HandoffTarget.USER:
        done = (
            "took this session over"
            if handoff.to_target == who
            else f"reassigned this session to {handoff.to_target}"
        )
    elif handoff.by_user_id is not None and handoff.to_kind == HandoffTarget.TEAM:
        done = f"reassigned this session to team {handoff.to_target}"
    elif handoff.by_user_id is not None and handoff.to_kind == HandoffTarget.HUMANS:
        done = "released this session to the queue"
    else:
        done = f"took this session over ({session.get_status_display().lower()})"
    reason = f" ({handoff.reason})" if handoff.reason else ""
    return f"{who} {done}{reason}; replies and hand-offs are closed to you."


def session_update_html(
    *,
    user: User,
    watched: WatchedSession,
    after_seq: int,
    after_version: int,
    held_before: bool | None = None,
    supervising_before: bool | None = None,
) -> SessionUpdate | None:
    """What changed in a watched session since the cursor: the thread's new items and the
    status panel, and the reply and hand-off forms when this user's hold on it changed.
    None when the user may no longer open the session (someone else claimed an
    escalation they could only see while it waited)."""
    try:
        _, session = session_get_for_console(
            user=user, project_id=watched.project_public_id, name=watched.name
        )
    except Http404:
        return None
    chunk: ThreadChunk = console_thread(
        session=session, after_seq=after_seq, after_version=after_version
    )
    side = side_context(session=session, user=user)
    holds_changed = held_before is not None and held_before != side["holds"]
    supervising_changed = (
        supervising_before is not None and supervising_before != side["can_supervise"]
    )
    customer_wrote = any(
        item.turn is not None and item.turn.metadata.get("role") == "customer"
        for item in chunk.items
    )
    context = {
        **side,
        "chunk": chunk,
        # Cached under the session's state: rebuilt only when the session changed.
        "brief": session_brief(session=session),
        "tail": True,
        "holds_changed": holds_changed,
        "supervising_changed": supervising_changed,
        "lost_notice": _lost_notice(session, user) if holds_changed and held_before else "",
        # A new customer turn changes what is relevant: the panel is re-rendered with it.
        "relevant": console_relevant(session=session) if customer_wrote else None,
        "canned": canned_for_session(session=session) if holds_changed else [],
    }
    html = render_to_string("console/_session_update.html", context)
    return SessionUpdate(
        html=html,
        last_seq=chunk.last_seq,
        version=chunk.version,
        holds=side["holds"],
        supervising=side["can_supervise"],
    )
