"""What the specialist console reads and does, on top of the shared session services.

Reads are shaped for the console's pages; writes go through the same
services the API uses (turns_upsert, the handoff services, audit_record).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Max

from sessions_app.access import sessions_console_visible
from sessions_app.actors import Actor
from sessions_app.errors import InvalidInput
from sessions_app.models import Handoff, HandoffTarget, Membership, Session, Turn
from sessions_app.selectors import customer_sessions, last_escalation
from sessions_app.services.audit import audit_record
from sessions_app.services.handoffs import held_by_check
from sessions_app.services.search import turns_search
from sessions_app.services.search_display import MarkedHit, hits_mark, hits_near_best
from sessions_app.services.turns import DocInput, turns_upsert

REPLY_CHANNELS = ("chat", "email", "sms", "voice")
RELEVANT_TOP_K = 5
RELEVANT_QUERY_CHARS = 2000
# The customer panel lists this many of the customer's other sessions and
# searches across this many of their latest: its cost is bounded, however
# long the customer's history.
CUSTOMER_SESSIONS_SHOWN = 10
CUSTOMER_SEARCH_SESSIONS = 50


@dataclass(frozen=True)
class ThreadItem:
    """A turn, or a handoff point placed after the turn it followed (Handoff.last_seq)."""

    turn: Turn | None = None
    handoff: Handoff | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        if self.turn is not None:
            return (self.turn.seq, 0, 0)
        assert self.handoff is not None
        return (self.handoff.last_seq, 1, self.handoff.version)


@dataclass(frozen=True)
class ThreadChunk:
    items: list[ThreadItem]
    last_seq: int
    version: int
    # Earlier turns exist: "load earlier" asks for those before this seq.
    earlier_before: int | None = None


# Turns the console session page opens with, and loads per "load earlier".
THREAD_PAGE = 100


def console_thread_latest(
    *, session: Session, before_seq: int | None = None, limit: int | None = None
) -> ThreadChunk:
    """The newest `limit` turns (before `before_seq`, for "load earlier"), with the handoff
    points among them: the page costs what it shows, whatever the session's length.

    A handoff belongs to the page holding the turn it follows (Handoff.last_seq); the
    first page also holds those before any turn. last_seq and version are the cursor
    the live updates continue from, as console_thread's.
    """
    limit = limit or THREAD_PAGE
    turns_qs = Turn.objects.filter(session=session).defer("embedding")
    if before_seq is not None:
        turns_qs = turns_qs.filter(seq__lt=before_seq)
    newest = list(turns_qs.order_by("-seq")[: limit + 1])
    earlier = len(newest) > limit
    turns = newest[:limit][::-1]
    low = turns[0].seq if turns and earlier else 0
    handoffs_qs = Handoff.objects.filter(session=session, last_seq__gte=low)
    if before_seq is not None:
        handoffs_qs = handoffs_qs.filter(last_seq__lt=before_seq)
    handoffs = list(
        handoffs_qs.select_related("by_user", "by_key", "claimed_by").order_by("version")
    )
    items = [ThreadItem(turn=t) for t in turns] + [ThreadItem(handoff=h) for h in handoffs]
    items.sort(key=lambda item: item.key)
    latest = Handoff.objects.filter(session=session).aggregate(version=Max("version"))
    return ThreadChunk(
        items=items,
        # Past deleted last turns too, as console_thread's cursor.
        last_seq=max(turns[-1].seq, session.last_seq) if turns and before_seq is None else 0,
        version=latest["version"] or 0,
        earlier_before=turns[0].seq if earlier else None,
    )


def console_thread(
    *, session: Session, after_seq: int = 0, after_version: int = 0
) -> ThreadChunk | None:
    """The thread after a cursor (seq, version), or None when more than THREAD_PAGE turns
    came after it: a page that far behind shows the latest page instead.

    Handoffs placed after turns not read yet wait for the next chunk, so a chunk
    can always be appended after the previous one without reordering.
    """
    # A cursor past the session's end (a hand-edited URL) goes back to it: it is
    # stored as the reader's seen mark.
    after_seq = min(after_seq, session.last_seq)
    after_version = min(after_version, session.version)
    turns = list(
        Turn.objects.filter(session=session, seq__gt=after_seq)
        .defer("embedding", "context_embedding")
        .order_by("seq")[: THREAD_PAGE + 1]
    )
    if len(turns) > THREAD_PAGE:
        return None
    # Every turn up to session.last_seq is read (its seq was issued and committed before the
    # session was read): the cursor passes deleted last turns, so a handoff made after them
    # is not held back for a turn that will never come.
    last_seq = max(session.last_seq, turns[-1].seq if turns else after_seq)
    handoffs = list(
        Handoff.objects.filter(session=session, version__gt=after_version, last_seq__lte=last_seq)
        .select_related("by_user", "by_key", "claimed_by")
        .order_by("version")
    )
    version = handoffs[-1].version if handoffs else after_version
    items = [ThreadItem(turn=t) for t in turns] + [ThreadItem(handoff=h) for h in handoffs]
    items.sort(key=lambda item: item.key)
    return ThreadChunk(items=items, last_seq=last_seq, version=version)


def console_turns_at(*, session: Session, seqs: Sequence[int]) -> list[ThreadItem]:
    """The thread items of these turns (THREAD_PAGE at most), as they are now."""
    turns = (
        Turn.objects.filter(session=session, seq__in=list(seqs)[:THREAD_PAGE])
        .defer("embedding", "context_embedding")
        .order_by("seq")
    )
    return [ThreadItem(turn=turn) for turn in turns]


def last_customer_turn(*, session: Session) -> Turn | None:
    customer_turns = Turn.objects.filter(session=session, metadata__role="customer")
    return customer_turns.order_by("-seq").first()


@dataclass(frozen=True)
class RelevantContext:
    query: str
    hits: list[MarkedHit]


def escalation_query(*, session: Session) -> str:
    """What the escalation is about: its reason and the latest customer turn."""
    escalation = last_escalation(session=session)
    customer = last_customer_turn(session=session)
    parts = [escalation.reason if escalation else "", customer.text if customer else ""]
    return " ".join(p.strip() for p in parts if p.strip())[:RELEVANT_QUERY_CHARS]


def console_search(*, session_ids: list[int], query: str, top_k: int) -> list[MarkedHit]:
    """The console's search: private notes included, hits far below the best hidden,
    each with the words it matched marked (services/search_display.py)."""
    result = turns_search(session_ids=session_ids, query=query, top_k=top_k, include_internal=True)
    return hits_mark(hits=hits_near_best(result.docs), query=query)


def console_relevant(*, session: Session, top_k: int = RELEVANT_TOP_K) -> RelevantContext:
    """The turns most relevant to the escalation reason and the latest customer turn."""
    query = escalation_query(session=session)
    if not query or session.last_seq == 0:
        return RelevantContext(query=query, hits=[])
    return RelevantContext(
        query=query, hits=console_search(session_ids=[session.pk], query=query, top_k=top_k)
    )


@dataclass(frozen=True)
class CustomerPanel:
    customer_id: str
    sessions: list[Session]
    more: bool
    hits: list[MarkedHit]


def console_customer(*, session: Session, membership: Membership) -> CustomerPanel | None:
    """The customer's other sessions (newest first, CUSTOMER_SESSIONS_SHOWN of them) and the
    turns across their CUSTOMER_SEARCH_SESSIONS latest sessions closest to this escalation,
    of those this member may open in the console (access.py). None when the session names
    no customer_id."""
    customer_id = session.metadata.get("customer_id") if isinstance(session.metadata, dict) else ""
    if not customer_id or not isinstance(customer_id, str):
        return None
    theirs = customer_sessions(project=session.project, customer_id=customer_id).filter(
        pk__in=sessions_console_visible(membership=membership).values("pk")
    )
    others = list(
        theirs.exclude(pk=session.pk).order_by("-updated_at")[: CUSTOMER_SESSIONS_SHOWN + 1]
    )
    searched = list(
        theirs.exclude(pk=session.pk)
        .order_by("-updated_at")
        .values_list("pk", flat=True)[:CUSTOMER_SEARCH_SESSIONS]
    )
    query = escalation_query(session=session)
    hits = (
        console_search(session_ids=searched, query=query, top_k=RELEVANT_TOP_K)
        if query and others
        else []
    )
    return CustomerPanel(
        customer_id=customer_id,
        sessions=others[:CUSTOMER_SESSIONS_SHOWN],
        more=len(others) > CUSTOMER_SESSIONS_SHOWN,
        hits=hits,
    )


def console_session_viewed(*, session: Session, user: User) -> None:
    """Audited so supervisors see who read what; it grants nothing (see access.py)."""
    audit_record(
        project=session.project,
        session=session,
        kind="session.viewed",
        actor=Actor.for_user(user),
        channel="console",
        device="browser",
    )


def console_reply(*, session: Session, user: User, text: str, channel: str) -> str:
    """The specialist's message becomes a turn of the session: role agent, author the user."""
    if channel not in REPLY_CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(REPLY_CHANNELS)}, got {channel!r}")
    held_by_check(session, user)  # early, before the model's work; again under the lock
    doc_id = f"console-{uuid.uuid4().hex}"
    metadata = {
        "channel": channel,
        "role": "agent",
        "author": user.get_username(),
        "device": "console",
    }
    turns_upsert(
        session=session,
        docs=[DocInput(id=doc_id, text=text, metadata=metadata)],
        actor=Actor.for_user(user),
        channel=channel,
        holder=user,
    )
    return doc_id


def console_note(*, session: Session, user: User, text: str) -> str:
    """A private note: a turn the specialists and supervisors read, bots never do
    unless they ask (Turn.internal). Anyone who may open the session may write one."""
    doc_id = f"note-{uuid.uuid4().hex}"
    metadata = {
        "channel": "console",
        "role": "note",
        "author": user.get_username(),
        "device": "console",
    }
    turns_upsert(
        session=session,
        docs=[DocInput(id=doc_id, text=text, metadata=metadata)],
        actor=Actor.for_user(user),
        channel="console",
        internal=True,
    )
    return doc_id


def transfer_target_parse(value: str) -> tuple[str, str]:
    """'humans', 'team:<name>' or 'user:<username>' into (to_kind, to_target)."""
    if value == HandoffTarget.HUMANS:
        return HandoffTarget.HUMANS, ""
    kind, _, target = value.partition(":")
    if kind in (HandoffTarget.TEAM, HandoffTarget.USER) and target:
        return kind, target
    raise InvalidInput("transfer to 'humans', 'team:<name>' or 'user:<username>'")
