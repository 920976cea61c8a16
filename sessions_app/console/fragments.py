"""The console's HTML fragments, shared by its views and its websocket consumer.

The consumer renders these for its own user after re-reading the database, so
a fragment never carries anything that user may not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Any

from django.contrib.auth.models import User
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone

from sessions_app.access import (
    SUPERVISING_ROLES,
    session_get_for_console,
    session_routed_to_user,
    user_projects,
    user_supervises,
)
from sessions_app.console.forms import (
    HandBackForm,
    InboxFilterForm,
    NoteForm,
    ReassignForm,
    ReplyForm,
    ResolveForm,
    SupervisorNoteForm,
    TransferForm,
    form_errors,
)
from sessions_app.console.selectors import (
    AGES,
    PAGE_SIZE,
    SORTS,
    TABS,
    InboxQuery,
    attention_of,
    inbox_channels,
    inbox_counts,
    inbox_page,
    inbox_teams,
    team_presence,
)
from sessions_app.models import HandoffTarget, Session, SessionStatus
from sessions_app.selectors import last_escalation
from sessions_app.services.brief import session_brief
from sessions_app.services.canned import canned_for_session
from sessions_app.services.console import (
    REPLY_CHANNELS,
    THREAD_PAGE,
    console_relevant,
    console_thread,
    console_thread_latest,
    console_turns_at,
    last_customer_turn,
)


@dataclass(frozen=True)
class InboxRow:
    session: Session
    customer: str
    channel: str
    reason: str
    from_agent: str
    held: bool
    # Since when it waits, or since when it is handled (the claim).
    since: datetime | None
    routed_to: str
    last_customer_text: str
    unread: bool
    # The project's service levels for this row's timer, in seconds (0: off), and where
    # the row stands now; the page's timer moves it on (static/js/inbox.js).
    warn_after: int
    breach_after: int
    sla: str


def _sla(since: datetime | None, warn: int, breach: int, now: datetime) -> str:
    if since is None:
        return ""
    elapsed = (now - since).total_seconds()
    if breach and elapsed >= breach:
        return "breach"
    if warn and elapsed >= warn:
        return "warn"
    return ""


def _routed_to(session: Session, user: User) -> str:
    if session.status == SessionStatus.HELD:
        holder = session.holder.get_username() if session.holder else session.holder_label
        return "you" if session.holder_id == user.pk else holder
    if session.queue_user_id == user.pk:
        return "you"
    if session.queue_user is not None:
        return session.queue_user.get_username()
    if session.queue_team is not None:
        return f"team {session.queue_team.name}"
    return "anyone"


def _inbox_row(session: Session, user: User, now: datetime) -> InboxRow:
    project = session.project
    handoff = session.last_handoff
    held = session.status == SessionStatus.HELD
    since: datetime | None = session.since  # type: ignore[attr-defined]
    if held:
        warn, breach = project.sla_handling_warn_seconds, project.sla_handling_breach_seconds
    else:
        warn, breach = project.sla_waiting_warn_seconds, project.sla_waiting_breach_seconds
    return InboxRow(
        session=session,
        customer=session.metadata.get("customer_name")
        or session.customer_author  # type: ignore[attr-defined]
        or session.name,
        channel=handoff.from_channel if handoff else "",
        reason=handoff.reason if handoff else "",
        from_agent=handoff.from_agent if handoff else "",
        held=held,
        since=since,
        routed_to=_routed_to(session, user),
        last_customer_text=session.customer_text or "",  # type: ignore[attr-defined]
        unread=bool(session.unread),  # type: ignore[attr-defined]
        warn_after=warn,
        breach_after=breach,
        sla=_sla(since, warn, breach, now),
    )


def inbox_query_parse(
    params: Mapping[str, Any], *, user: User | None = None
) -> tuple[InboxQuery, str]:
    """The inbox query from a query string (or a websocket hello); with an error, the default.
    With the `user`, a team filter must name one of their projects' teams (an unknown one
    emptied the list without a word)."""
    form = InboxFilterForm(params)
    if not form.is_valid():
        return InboxQuery(), form_errors(form)
    query = form.query()
    if (
        user is not None
        and query.team
        and not inbox_teams(user=user).filter(pk=query.team).exists()
    ):
        return InboxQuery(), "Team: no such team in your projects"
    return query, ""


def queue_context(*, user: User, query: InboxQuery | None = None) -> dict[str, Any]:
    """The inbox: its tabs with their counts, the filters, and one page of the current tab."""
    query = query or InboxQuery()
    now = timezone.now()
    counts = inbox_counts(user=user, query=query, now=now)
    pages = max(1, ceil(counts[query.tab] / PAGE_SIZE))
    page = min(query.page, pages)
    sessions = inbox_page(
        user=user, query=query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, now=now
    )
    rows = [_inbox_row(s, user, now) for s in sessions]
    tabs = [
        {
            "key": key,
            "label": label,
            "count": counts[key],
            "url": query.params(tab=key),
            "current": key == query.tab,
        }
        for key, label in TABS.items()
    ]
    return {
        "rows": rows,
        "query": query,
        "tabs": tabs,
        "page": page,
        "pages": pages,
        "prev_url": query.params(page=page - 1) if page > 1 else "",
        "next_url": query.params(page=page + 1) if page < pages else "",
        "show_project": user_projects(user=user).count() > 1,
        "teams": inbox_teams(user=user),
        "channels": inbox_channels(user=user, current=query.channel),
        "ages": [(k, v[0]) for k, v in AGES.items()],
        "sorts": list(SORTS.items()),
        "server_now": now,
        "attention": attention_of(user=user),
        "supervises": user_projects(user=user, roles=SUPERVISING_ROLES).exists(),
    }


def queue_html(*, user: User, query: InboxQuery | None = None) -> tuple[str, set[int]]:
    """The queue fragment (with its tabs and the attention list, out of band), and the ids
    of the sessions it lists."""
    context = queue_context(user=user, query=query)
    html = render_to_string("console/_queue.html", {**context, "oob": True})
    return html, {row.session.pk for row in context["rows"]}


def attention_html(*, user: User) -> tuple[str, str]:
    """The attention list (out of band) and its digest."""
    attention = attention_of(user=user)
    html = render_to_string("console/_attention.html", {"attention": attention, "oob": True})
    return html, attention.digest


def presence_html(*, user: User) -> str:
    return render_to_string("console/_presence.html", {"members": team_presence(user=user)})


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
    edited: Sequence[int] = (),
    deleted: Sequence[int] = (),
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
    chunk = console_thread(session=session, after_seq=after_seq, after_version=after_version)
    replace = chunk is None  # too far behind (a socket down a long while): the latest page
    if chunk is None:
        chunk = console_thread_latest(session=session)
    # Turns the page shows that a bot edited or deleted meanwhile (the live event names
    # them): replaced or removed in place.
    shown = [seq for seq in edited if seq <= after_seq] if not replace else []
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
        "replace": replace,
        "edited": console_turns_at(session=session, seqs=shown) if shown else [],
        "deleted": [] if replace else [seq for seq in deleted[:THREAD_PAGE] if seq <= after_seq],
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
