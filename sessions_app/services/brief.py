"""The handoff brief: one card instead of the thread, extractive, with no language model.

It gives the escalation reason and the customer's problem in their own words
(the customer turn whose stored embedding is closest to the reason), what was
already promised or done (commitment turns), the key facts of the thread
(services/brief_extract.py) and the path so far (channels and devices, handoffs
with reasons, time waiting). Every item cites its turn: the id the client gave
it and its sequence number.

Cost: one read of the thread's text and a few metadata keys (no embeddings),
one nearest-turn query over the stored embeddings, and the reason encoded once
(its vector is cached by its text). The built brief is cached by the session's
state (updated_at changes with every turn and handoff), so watching a session
re-reads it only when it changed. Every list is capped, so the answer's size
does not grow with the session.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db.models.fields.json import KT
from django.utils import timezone
from pgvector.django import CosineDistance

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.models import Handoff, Session, SessionStatus, Turn
from sessions_app.selectors import ESCALATIONS
from sessions_app.services.audit import audit_record
from sessions_app.services.brief_extract import FACT_KINDS, commitment_extract, facts_extract

logger = logging.getLogger(__name__)

CUSTOMER_ROLES = ("customer", "user", "caller")
MAX_FACTS_PER_KIND = 15
MAX_TURNS_PER_FACT = 10
MAX_PROMISES = 15
MAX_HANDOFFS = 20
MAX_SEGMENTS = 20
MAX_TEXT_CHARS = 600  # of a quoted turn; the thread has the rest
CACHE_SECONDS = 3600
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Problem:
    turn: str
    seq: int
    text: str
    author: str
    channel: str
    # How the turn was chosen: "semantic" (closest to the reason), "keyword" (the model was
    # unavailable), "first_customer_turn" (no reason to match, or nothing matched).
    method: str
    score: float | None = None


@dataclass(frozen=True)
class Escalation:
    reason: str
    version: int
    to_kind: str
    to_target: str
    from_agent: str
    from_channel: str
    at: datetime
    turn: str | None  # the last turn before it
    seq: int | None


@dataclass(frozen=True)
class Promise:
    turn: str
    seq: int
    text: str
    topics: tuple[str, ...]
    role: str
    author: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class BriefFact:
    kind: str
    value: str
    key: str
    turn: str  # the first mention
    seq: int
    turns: list[str] = field(default_factory=list)  # every mention, first ones first
    mentions: int = 1


@dataclass(frozen=True)
class Segment:
    """A run of consecutive turns on one channel, with the devices they came from."""

    channel: str
    devices: list[str]
    turn: str
    seq: int
    last_turn: str
    last_seq: int
    turns: int
    started_at: datetime


@dataclass(frozen=True)
class BriefHandoff:
    version: int
    to_kind: str
    to_target: str
    reason: str
    from_agent: str
    from_channel: str
    at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    turn: str | None
    seq: int | None

    @property
    def waited_seconds(self) -> float | None:
        """How long an escalation waited for a specialist (so far, if nobody claimed it)."""
        if self.to_kind not in ESCALATIONS:
            return None
        end = self.claimed_at or timezone.now()
        return max(0.0, (end - self.at).total_seconds())


@dataclass(frozen=True)
class Path:
    """The way the conversation came: channel runs, handoffs, and the current wait."""

    segments: list[Segment]
    segments_total: int
    handoffs: list[BriefHandoff]
    handoffs_total: int
    waiting_since: datetime | None  # set while the session waits for a specialist

    @property
    def channels(self) -> list[str]:
        """Channels in the order the conversation first reached them."""
        return list(dict.fromkeys(s.channel for s in self.segments if s.channel))

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(d for s in self.segments for d in s.devices))

    @property
    def waiting_seconds(self) -> float | None:
        if self.waiting_since is None:
            return None
        return max(0.0, (timezone.now() - self.waiting_since).total_seconds())


@dataclass(frozen=True)
class Brief:
    session: str
    status: str
    holder: str | None
    version: int
    doc_count: int
    escalation: Escalation | None
    problem: Problem | None
    promises: list[Promise]  # the latest MAX_PROMISES, oldest first
    promises_total: int
    facts: list[BriefFact]
    path: Path
    built_in_ms: float

    def facts_of(self, kind: str) -> list[BriefFact]:
        return [fact for fact in self.facts if fact.kind == kind]


@dataclass(frozen=True)
class _Row:
    doc_id: str
    seq: int
    text: str
    role: str
    channel: str
    device: str
    author: str
    created_at: datetime


def brief_read(*, session: Session, actor: Actor) -> Brief:
    """The brief for an API caller; audited like reading the thread, since it quotes it."""
    brief = session_brief(session=session)
    audit_record(project=session.project, session=session, kind="session.brief_read", actor=actor)
    return brief


def session_brief(*, session: Session) -> Brief:
    """The session's brief, from the cache while the session has not changed."""
    key = _cache_key(session)
    cached = _cache_get(key)
    if isinstance(cached, Brief):
        return cached
    brief = brief_build(session=session)
    # A problem turn found without the model is not kept: the stored embeddings
    # may arrive (backfill) without the session changing.
    if brief.problem is None or brief.problem.method != "keyword":
        _cache_set(key, brief)
    return brief


def brief_build(*, session: Session) -> Brief:
    """Build the brief from the database, uncached."""
    started = time.perf_counter()
    rows = _thread_rows(session)
    seqs = [row.seq for row in rows]
    handoffs = list(
        Handoff.objects.filter(session=session)
        .select_related("claimed_by")
        .order_by("-version")[:MAX_HANDOFFS]
    )
    handoffs.reverse()
    escalation_handoff = next((h for h in reversed(handoffs) if h.to_kind in ESCALATIONS), None)
    if escalation_handoff is None and session.version > len(handoffs):
        escalation_handoff = (
            Handoff.objects.filter(session=session, to_kind__in=ESCALATIONS)
            .order_by("-version")
            .first()
        )

    def cited(last_seq: int) -> tuple[str | None, int | None]:
        index = bisect.bisect_right(seqs, last_seq) - 1
        return (rows[index].doc_id, rows[index].seq) if index >= 0 else (None, None)

    escalation = None
    if escalation_handoff is not None:
        turn, seq = cited(escalation_handoff.last_seq)
        escalation = Escalation(
            reason=escalation_handoff.reason,
            version=escalation_handoff.version,
            to_kind=escalation_handoff.to_kind,
            to_target=escalation_handoff.to_target,
            from_agent=escalation_handoff.from_agent,
            from_channel=escalation_handoff.from_channel,
            at=escalation_handoff.created_at,
            turn=turn,
            seq=seq,
        )
    promises = _promises(rows)
    segments = _segments(rows)
    waiting = session.status == SessionStatus.WAITING
    return Brief(
        session=session.name,
        status=session.status,
        holder=session.holder_label or None,
        version=session.version,
        doc_count=session.doc_count,
        escalation=escalation,
        problem=_problem(session, rows, escalation.reason if escalation else ""),
        promises=promises[-MAX_PROMISES:],
        promises_total=len(promises),
        facts=_facts(rows),
        path=Path(
            segments=_segments_capped(segments),
            segments_total=len(segments),
            handoffs=[_handoff(h, cited) for h in handoffs],
            handoffs_total=session.version,
            waiting_since=session.waiting_since if waiting else None,
        ),
        built_in_ms=(time.perf_counter() - started) * 1000,
    )


def _thread_rows(session: Session) -> list[_Row]:
    values = (
        Turn.objects.filter(session=session)
        .order_by("seq")
        .values_list(
            "doc_id",
            "seq",
            "text",
            KT("metadata__role"),
            KT("metadata__channel"),
            KT("metadata__device"),
            KT("metadata__author"),
            "created_at",
        )
    )
    return [
        _Row(doc_id, seq, text, role or "", channel or "", device or "", author or "", created)
        for doc_id, seq, text, role, channel, device, author, created in values
    ]


def _is_customer(row: _Row) -> bool:
    return row.role in CUSTOMER_ROLES


def _problem(session: Session, rows: list[_Row], reason: str) -> Problem | None:
    customer = [row for row in rows if _is_customer(row)]
    if not customer:
        return None
    if reason.strip():
        try:
            vector = _reason_vector(reason)
        except embeddings.ModelUnavailable:
            vector = None
        if vector is not None:
            nearest = (
                Turn.objects.filter(session=session, embedding__isnull=False)
                .filter(**{"metadata__role__in": list(CUSTOMER_ROLES)})
                .annotate(distance=CosineDistance("embedding", vector))
                .order_by("distance", "seq")
                .values_list("seq", "distance")
                .first()
            )
            row = next((r for r in customer if nearest and r.seq == nearest[0]), None)
            if row is not None and nearest is not None:
                return _problem_of(row, "semantic", 1.0 - float(nearest[1]))
        else:
            best = _keyword_best(customer, reason)
            if best is not None:
                return _problem_of(best, "keyword", None)
    opening = next((row for row in customer if len(row.text.split()) >= 4), customer[0])
    return _problem_of(opening, "first_customer_turn", None)


def _problem_of(row: _Row, method: str, score: float | None) -> Problem:
    return Problem(
        turn=row.doc_id,
        seq=row.seq,
        text=_clip(row.text),
        author=row.author,
        channel=row.channel,
        method=method,
        score=score,
    )


_WORD = re.compile(r"[a-z0-9]{3,}")


def _keyword_best(rows: list[_Row], reason: str) -> _Row | None:
    """While the model is unavailable: the customer turn sharing most words with the reason."""
    words = set(_WORD.findall(reason.lower()))
    scored = [(len(words & set(_WORD.findall(row.text.lower()))), row) for row in rows]
    best = max(scored, key=lambda pair: pair[0], default=(0, None))
    return best[1] if best[0] > 0 else None


def _reason_vector(reason: str) -> list[float]:
    """The reason's embedding, encoded once per text and kept in the cache."""
    digest = hashlib.sha256(f"{embeddings.model_id()}\n{reason}".encode()).hexdigest()
    key = f"brief:reason:{digest}"
    cached = _cache_get(key)
    if isinstance(cached, list):
        return cached
    vector: list[float] = embeddings.query_embed(reason).tolist()
    _cache_set(key, vector)
    return vector


def _promises(rows: list[_Row]) -> list[Promise]:
    found = []
    for row in rows:
        if _is_customer(row):
            continue
        commitment = commitment_extract(row.text)
        if commitment is not None:
            found.append(
                Promise(
                    turn=row.doc_id,
                    seq=row.seq,
                    text=_clip(commitment.text),
                    topics=commitment.topics,
                    role=row.role,
                    author=row.author,
                    channel=row.channel,
                    at=row.created_at,
                )
            )
    return found


def _facts(rows: list[_Row]) -> list[BriefFact]:
    """Each distinct fact once, citing its first mention and listing the others."""
    seen: dict[tuple[str, str], tuple[str, str, list[_Row]]] = {}
    for row in rows:
        for fact in facts_extract(row.text):
            entry = seen.setdefault((fact.kind, fact.key), (fact.value, fact.key, []))
            if not entry[2] or entry[2][-1] is not row:
                entry[2].append(row)
    by_kind: dict[str, list[BriefFact]] = {kind: [] for kind in FACT_KINDS}
    for (kind, _), (value, key, mentions) in seen.items():
        if len(by_kind[kind]) < MAX_FACTS_PER_KIND:
            by_kind[kind].append(
                BriefFact(
                    kind=kind,
                    value=value,
                    key=key,
                    turn=mentions[0].doc_id,
                    seq=mentions[0].seq,
                    turns=[row.doc_id for row in mentions[:MAX_TURNS_PER_FACT]],
                    mentions=len(mentions),
                )
            )
    return [fact for kind in FACT_KINDS for fact in by_kind[kind]]


def _segments(rows: list[_Row]) -> list[Segment]:
    segments: list[Segment] = []
    start = 0
    for index in range(1, len(rows) + 1):
        if index < len(rows) and rows[index].channel == rows[start].channel:
            continue
        run = rows[start:index]
        devices = list(dict.fromkeys(row.device for row in run if row.device))
        segments.append(
            Segment(
                channel=run[0].channel,
                devices=devices,
                turn=run[0].doc_id,
                seq=run[0].seq,
                last_turn=run[-1].doc_id,
                last_seq=run[-1].seq,
                turns=len(run),
                started_at=run[0].created_at,
            )
        )
        start = index
    return segments


def _segments_capped(segments: list[Segment]) -> list[Segment]:
    """Where it started and the latest runs, when there are more than the card can show."""
    if len(segments) <= MAX_SEGMENTS:
        return segments
    return [segments[0], *segments[-(MAX_SEGMENTS - 1) :]]


def _handoff(
    handoff: Handoff, cited: Callable[[int], tuple[str | None, int | None]]
) -> BriefHandoff:
    turn, seq = cited(handoff.last_seq)
    return BriefHandoff(
        version=handoff.version,
        to_kind=handoff.to_kind,
        to_target=handoff.to_target,
        reason=handoff.reason,
        from_agent=handoff.from_agent,
        from_channel=handoff.from_channel,
        at=handoff.created_at,
        claimed_by=handoff.claimed_by.get_username() if handoff.claimed_by else None,
        claimed_at=handoff.claimed_at,
        turn=turn,
        seq=seq,
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1].rstrip() + "…"


# --- the cache: an optimisation, never a failure ------------------------------------------


def _cache_key(session: Session) -> str:
    return (
        f"brief:{_CACHE_VERSION}:{session.pk}:{session.updated_at.timestamp()}:"
        f"{session.version}:{session.last_seq}:{session.doc_count}:{session.status}"
    )


def _cache_get(key: str) -> object:
    try:
        return cache.get(key)
    except Exception:  # Redis down: build it instead
        logger.debug("brief cache unavailable", exc_info=True)
        return None


def _cache_set(key: str, value: object) -> None:
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception:
        logger.debug("brief cache unavailable", exc_info=True)
