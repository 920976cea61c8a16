"""A session's timeline: its audit events and its turns, in order, and what each agent received.

Each `turns.added` event is followed by the turns it added (its `seqs`), so a
reader sees who wrote them (key or user) and then what they wrote; turns that
no event names are placed by their own time. Gaps are measured from the
previous entry.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q

from sessions_app.charts import StripChart, timeline_strip
from sessions_app.errors import NotFound
from sessions_app.models import AuditEvent, Handoff, Session, Turn

# Audit events that name the turns they added (data.seqs): a call's turns, a private note.
ADDING_KINDS = ("turns.added", "note.added")

EXPORT_FIELDS = [
    "at",
    "kind",
    "who",
    "written_by",
    "channel",
    "device",
    "seq",
    "doc_id",
    "role",
    "internal",
    "text",
    "gap_seconds",
    "audit_id",
    "data",
]


@dataclass
class TimelineEntry:
    at: datetime
    kind: str
    who: str
    channel: str = ""
    device: str = ""
    seq: int | None = None
    doc_id: str = ""
    role: str = ""
    text: str = ""
    audit_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    gap_seconds: float | None = None
    author: str = ""
    # A turn's provenance (Turn.written_by): "API key <prefix>" or "user <name>".
    written_by: str = ""
    via_key: str = ""
    # A private note (Turn.internal): humans only.
    internal: bool = False

    @property
    def is_turn(self) -> bool:
        return self.kind == "turn"

    @property
    def lane(self) -> str:
        """Who acted, for the chart: a turn's author, else the actor."""
        return self.author or self.who

    @property
    def anchor(self) -> str:
        return f"turn-{self.seq}" if self.is_turn else f"event-{self.audit_id}"

    def export_row(self) -> dict[str, Any]:
        row = asdict(self)
        del row["author"]  # part of "who" already
        del row["via_key"]  # part of "written_by"
        row["at"] = self.at.isoformat()
        return row


def _who(event: AuditEvent) -> str:
    if event.actor_user is not None:
        return event.actor_user.get_username()
    if event.actor_key is not None:
        label = event.actor_key.label or event.actor_key.prefix
        if event.actor_label and event.actor_label != f"key {event.actor_key.prefix}":
            return f"{event.actor_label} (key {label})"
        return f"key {label}"
    return event.actor_label or "system"


def _event_entry(event: AuditEvent) -> TimelineEntry:
    return TimelineEntry(
        at=event.created_at,
        kind=event.kind,
        who=_who(event),
        channel=event.channel,
        device=event.device,
        audit_id=event.pk,
        data=event.data,
    )


def _turn_entry(turn: Turn, added_by: str, actor_label: str = "") -> TimelineEntry:
    meta = turn.metadata or {}
    author = meta.get("author", "")
    if author in (added_by, actor_label):
        # The bot or user wrote its own turn: one name, one lane.
        author = added_by
    if author and added_by and author != added_by:
        who = f"{author} via {added_by}"
    else:
        who = author or added_by
    return TimelineEntry(
        at=turn.created_at,
        kind="turn",
        who=who,
        channel=meta.get("channel", ""),
        device=meta.get("device", ""),
        seq=turn.seq,
        doc_id=turn.doc_id,
        role=meta.get("role", ""),
        text=turn.text,
        author=author,
        written_by=turn.written_by,
        via_key=turn.written_by_key_prefix,
        internal=turn.internal,
    )


# Audit events per timeline page; each brings the turns it added (10 a call on
# average, MOSS_MAX_DOCS_PER_CALL at most).
PAGE_EVENTS = 20


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    # The last audit event of this page: the next page starts after it (None: last page).
    next_after: int | None


def _named_seqs(session: Session, seqs: list[int]) -> set[int]:
    """Which of these seqs an event of the session that adds turns names."""
    if not seqs:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT named.seq::bigint
            FROM sessions_app_auditevent e,
                 jsonb_array_elements_text(e.data -> 'seqs') AS named(seq)
            WHERE e.session_id = %s AND e.kind = ANY(%s)
              AND named.seq::bigint = ANY(%s)
            """,
            [session.pk, list(ADDING_KINDS), seqs],
        )
        return {row[0] for row in cursor.fetchall()}


def timeline_page(
    *, session: Session, after: int | None = None, limit: int | None = None
) -> TimelinePage:
    """Up to `limit` audit events after the event `after`, each followed by its turns.

    Turns no event names are placed by their own time among the events of the
    page whose time span holds them. Costs what the page shows: the events by
    the (session, created_at) index, their turns by (session, seq).
    """
    limit = limit or PAGE_EVENTS
    events_qs = AuditEvent.objects.filter(session=session).select_related("actor_user", "actor_key")
    previous: AuditEvent | None = None
    if after is not None:
        previous = AuditEvent.objects.filter(session=session, pk=after).first()
        if previous is None:
            raise NotFound(f"{session.name} has no audit event {after}")
        events_qs = events_qs.filter(
            Q(created_at__gt=previous.created_at)
            | Q(created_at=previous.created_at, pk__gt=previous.pk)
        )
    events = list(events_qs.order_by("created_at", "id")[: limit + 1])
    following = events[limit] if len(events) > limit else None
    events = events[:limit]
    named = [seq for e in events if e.kind in ADDING_KINDS for seq in e.data.get("seqs", [])]
    # Turns in this page's span that no event of the page names: orphans, unless
    # an event elsewhere names them (a call's turns are stored just before its event).
    span = Turn.objects.filter(session=session)
    if previous is not None:
        span = span.filter(created_at__gt=previous.created_at)
    if following is not None:
        # Later ones belong to the next page, before its first event.
        span = span.filter(created_at__lte=events[-1].created_at)
    loose = [seq for seq in span.values_list("seq", flat=True) if seq not in set(named)]
    orphan_seqs = set(loose) - _named_seqs(session, loose)
    turns = {
        t.seq: t
        for t in Turn.objects.filter(session=session, seq__in=set(named) | orphan_seqs)
        .select_related("written_by_user")
        .defer("embedding")
    }
    entries = _entries_merge(events, turns, orphan_seqs)
    _gaps_measure(entries, start=previous.created_at if previous else None)
    return TimelinePage(entries=entries, next_after=events[-1].pk if following else None)


def _entries_merge(
    events: list[AuditEvent], turns: dict[int, Turn], orphan_seqs: set[int]
) -> list[TimelineEntry]:
    placed: set[int] = set()
    entries: list[TimelineEntry] = []
    for event in events:
        entry = _event_entry(event)
        entries.append(entry)
        if event.kind not in ADDING_KINDS:
            continue
        for seq in event.data.get("seqs", []):
            turn = turns.get(seq)
            if turn is not None and seq not in placed:
                placed.add(seq)
                entries.append(_turn_entry(turn, entry.who, event.actor_label))
    for seq in sorted(orphan_seqs):
        turn = turns.get(seq)
        if turn is None or seq in placed:
            continue
        position = next((i for i, e in enumerate(entries) if e.at > turn.created_at), len(entries))
        entries.insert(position, _turn_entry(turn, ""))
    return entries


def _gaps_measure(entries: list[TimelineEntry], *, start: datetime | None) -> None:
    previous = start
    for entry in entries:
        if previous is not None:
            entry.gap_seconds = max(0.0, (entry.at - previous).total_seconds())
        previous = max(previous, entry.at) if previous else entry.at


def timeline_cursor_for_seq(*, session: Session, seq: int) -> int | None:
    """The `after` cursor of the page that holds turn `seq` (a search hit's link): the
    page starting at the event that added it, else (no event names it) just after the
    last event before it."""
    added = (
        AuditEvent.objects.filter(session=session, kind="turns.added", data__seqs__contains=[seq])
        .order_by("created_at", "id")
        .first()
    )
    if added is None:
        # An orphan: the page starting after the last event before it holds it.
        turn = Turn.objects.filter(session=session, seq=seq).only("created_at").first()
        if turn is None:
            return None
        last = (
            AuditEvent.objects.filter(session=session, created_at__lt=turn.created_at)
            .order_by("-created_at", "-id")
            .first()
        )
        return last.pk if last else None
    before = (
        AuditEvent.objects.filter(session=session)
        .filter(
            Q(created_at__lt=added.created_at) | Q(created_at=added.created_at, pk__lt=added.pk)
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return before.pk if before else None


def timeline_iter(*, session: Session) -> Iterator[TimelineEntry]:
    """The whole timeline, a page at a time: memory holds one page (exports)."""
    after: int | None = None
    while True:
        page = timeline_page(session=session, after=after)
        yield from page.entries
        if page.next_after is None:
            return
        after = page.next_after


def timeline_build(*, session: Session) -> list[TimelineEntry]:
    return list(timeline_iter(session=session))


def timeline_chart(entries: list[TimelineEntry]) -> StripChart:
    start = entries[0].at if entries else None
    return timeline_strip(
        points=[
            (
                (entry.at - start).total_seconds() if start else 0.0,
                entry.lane,
                entry.channel,
                entry.kind,
                f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.kind} · {entry.who}"
                + (f" · {entry.channel}" if entry.channel else ""),
                entry.anchor,
            )
            for entry in entries
        ]
    )


# Turns per as-received page, on each side of the handoff point; handoff links per page.
RECEIVED_PAGE = 100
HANDOFF_LINKS = 12


@dataclass(frozen=True)
class AsReceived:
    """One page of the thread as the agent receiving `handoff` saw it: the turns up to the
    handoff point (the latest RECEIVED_PAGE of them, or those before `before`), then, on
    the first page, the first RECEIVED_PAGE turns added after it, marked."""

    handoff: Handoff
    turns: list[Turn]
    received_count: int  # turns up to the handoff point, in all
    after_count: int  # turns added after it, in all
    earlier_before: int | None  # the cursor (?before=) of the page before, if any

    @property
    def after(self) -> set[int]:
        """The seqs of this page's turns added after the handoff."""
        return {t.seq for t in self.turns if t.seq > self.handoff.last_seq}

    @property
    def divider_before(self) -> int | None:
        return min(self.after, default=None)

    @property
    def after_hidden(self) -> int:
        """Turns added after the handoff that this page does not show (the timeline does)."""
        return self.after_count - len(self.after)


def as_received_build(*, session: Session, version: int, before: int | None = None) -> AsReceived:
    """The page of the thread as the agent receiving handoff `version` saw it."""
    handoff = (
        Handoff.objects.filter(session=session, version=version)
        .select_related("by_key", "claimed_by")
        .first()
    )
    if handoff is None:
        raise NotFound(f"{session.name} has no handoff version {version}")
    turns = Turn.objects.filter(session=session).defer("embedding", "context_embedding")
    received = turns.filter(seq__lte=handoff.last_seq)
    shown = received.filter(seq__lt=before) if before is not None else received
    newest = list(shown.order_by("-seq")[: RECEIVED_PAGE + 1])
    earlier = len(newest) > RECEIVED_PAGE
    page = newest[:RECEIVED_PAGE][::-1]
    later = turns.filter(seq__gt=handoff.last_seq)
    if before is None:
        page += list(later.order_by("seq")[:RECEIVED_PAGE])
    return AsReceived(
        handoff=handoff,
        turns=page,
        received_count=received.count(),
        after_count=later.count(),
        earlier_before=page[0].seq if earlier else None,
    )


@dataclass(frozen=True)
class HandoffLinks:
    """The as-received links a session page shows: HANDOFF_LINKS handoffs at most."""

    handoffs: list[Handoff]
    earlier: int | None  # the version to link as "earlier", when there are more before
    later: int | None


def handoff_links(*, session: Session, around: int | None = None) -> HandoffLinks:
    """The handoffs around version `around` (the latest without one). Versions run 1..
    session.version without gaps, so what lies beyond the shown ones needs no query."""
    handoffs = Handoff.objects.filter(session=session).order_by("version")
    if around is None:
        shown = list(handoffs.reverse()[:HANDOFF_LINKS])[::-1]
    else:
        before = list(handoffs.filter(version__lte=around).reverse()[: HANDOFF_LINKS // 2])
        after = handoffs.filter(version__gt=around)[: HANDOFF_LINKS - len(before)]
        shown = before[::-1] + list(after)
    return HandoffLinks(
        handoffs=shown,
        earlier=shown[0].version - 1 if shown and shown[0].version > 1 else None,
        later=shown[-1].version + 1 if shown and shown[-1].version < session.version else None,
    )


def timeline_jsonl(entries: Iterable[TimelineEntry]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(entry.export_row(), ensure_ascii=False) + "\n"


# Spreadsheets evaluate a cell that starts with one of these as a formula, so a customer's
# "=HYPERLINK(...)" would run on the supervisor's machine (CSV injection). A leading
# apostrophe makes such a cell plain text, as OWASP advises.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def timeline_csv(entries: Iterable[TimelineEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for entry in entries:
        row = entry.export_row()
        row["data"] = json.dumps(row["data"], ensure_ascii=False) if row["data"] else ""
        writer.writerow({key: _spreadsheet_safe(value) for key, value in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
    if buffer.getvalue():
        yield buffer.getvalue()
