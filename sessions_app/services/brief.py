"""The handoff brief: one card instead of the thread, extractive, with no language model.

It gives the escalation reason and the customer's problem in their own words
(the customer turn whose stored embedding is closest to the reason), what was
already promised or done (commitment turns), the key facts of the thread
(services/brief_extract.py) and the path so far (channels and devices, handoffs
with reasons, time waiting). Every item cites its turn: the id the client gave
it and its sequence number.

Cost: facts and commitments are extracted once, when a turn is stored
(Turn.extracted), so building reads only the turns that have one; the channel
runs are computed in SQL; the problem is one nearest-turn query over the stored
embeddings, with the reason encoded once (its vector cached by its text). No
text is re-read for extraction and nothing is re-embedded. The built brief is
cached under the session's state (updated_at changes with every turn, edit,
delete and handoff). Every list is capped, so the answer's size does not grow
with the session. Private notes (Turn.internal) are left out: bots read the brief.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from pgvector.django import CosineDistance

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.models import Handoff, Session, SessionStatus, Turn
from sessions_app.selectors import ESCALATIONS
from sessions_app.services.audit import audit_record
from sessions_app.services.brief_extract import FACT_KINDS, turn_extract

logger = logging.getLogger(__name__)

CUSTOMER_ROLES = ("customer", "user", "caller")
MAX_FACTS_PER_KIND = 15
MAX_TURNS_PER_FACT = 10
MAX_PROMISES = 15
MAX_HANDOFFS = 20
MAX_SEGMENTS = 20
MAX_TEXT_CHARS = 600  # of a quoted turn; the thread has the rest
OPENING_TURNS = 10  # without a reason, the problem is the first of these with four words
# In a longer session the brief reads the first and the latest turns only (_window).
WINDOW_FIRST = 200
WINDOW_LATEST = 2000
CACHE_SECONDS = 3600
_CACHE_VERSION = 2


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
    # True when the session is longer than the turns a brief reads (_window): the facts,
    # promises, channel runs and problem come from the first and the latest turns only.
    partial: bool = False

    def facts_of(self, kind: str) -> list[BriefFact]:
        return [fact for fact in self.facts if fact.kind == kind]

    @property
    def fact_groups(self) -> list[tuple[str, list[BriefFact]]]:
        """(kind, facts) for each kind found, in FACT_KINDS order."""
        return [(kind, facts) for kind in FACT_KINDS if (facts := self.facts_of(kind))]


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
    cited = _turns_before(
        session,
        [h.last_seq for h in handoffs] + [escalation_handoff.last_seq if escalation_handoff else 0],
    )
    escalation = _escalation(escalation_handoff, cited) if escalation_handoff else None
    promises, promises_total = _promises(session)
    segments, segments_total = _segments(session)
    return Brief(
        session=session.name,
        status=session.status,
        holder=session.holder_label or None,
        version=session.version,
        doc_count=session.doc_count,
        escalation=escalation,
        problem=_problem(session, escalation.reason if escalation else ""),
        promises=promises,
        promises_total=promises_total,
        facts=_facts(session),
        path=Path(
            segments=segments,
            segments_total=segments_total,
            handoffs=[_handoff(h, cited) for h in handoffs],
            handoffs_total=session.version,
            waiting_since=(
                session.waiting_since if session.status == SessionStatus.WAITING else None
            ),
        ),
        built_in_ms=(time.perf_counter() - started) * 1000,
        partial=session.last_seq > WINDOW_FIRST + WINDOW_LATEST,
    )


Cited = dict[int, tuple[str | None, int | None]]


def _turns_before(session: Session, last_seqs: list[int]) -> Cited:
    """For each handoff's last_seq, the last turn still there at or before it."""
    sql = """
        SELECT l.last_seq, t.doc_id, t.seq
        FROM unnest(%s::bigint[]) AS l(last_seq)
        LEFT JOIN LATERAL (
            SELECT doc_id, seq FROM sessions_app_turn
            WHERE session_id = %s AND NOT internal AND seq <= l.last_seq
            ORDER BY seq DESC LIMIT 1
        ) t ON true
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(set(last_seqs)), session.pk])
        return {last_seq: (doc_id, seq) for last_seq, doc_id, seq in cursor.fetchall()}


def _escalation(handoff: Handoff, cited: Cited) -> Escalation:
    turn, seq = cited.get(handoff.last_seq, (None, None))
    return Escalation(
        reason=handoff.reason,
        version=handoff.version,
        to_kind=handoff.to_kind,
        to_target=handoff.to_target,
        from_agent=handoff.from_agent,
        from_channel=handoff.from_channel,
        at=handoff.created_at,
        turn=turn,
        seq=seq,
    )


def _handoff(handoff: Handoff, cited: Cited) -> BriefHandoff:
    turn, seq = cited.get(handoff.last_seq, (None, None))
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


# --- the customer's problem -----------------------------------------------------------------


def _window(session: Session) -> dict[str, int]:
    """The turns a brief reads: the first WINDOW_FIRST and the latest WINDOW_LATEST sequence
    numbers, so that its cost stops growing with the session (README, "The handoff brief")."""
    return {
        "session": session.pk,
        "first": WINDOW_FIRST,
        "latest_after": max(WINDOW_FIRST, session.last_seq - WINDOW_LATEST),
    }


def _customer_turns(session: Session) -> QuerySet[Turn]:
    window = _window(session)
    return Turn.objects.filter(
        Q(seq__lte=window["first"]) | Q(seq__gt=window["latest_after"]),
        session=session,
        internal=False,
        metadata__role__in=list(CUSTOMER_ROLES),
    )


def _problem(session: Session, reason: str) -> Problem | None:
    if reason.strip():
        try:
            vector = _reason_vector(reason)
        except embeddings.ModelUnavailable:
            vector = None
        if vector is not None:
            nearest = (
                _customer_turns(session)
                .filter(embedding__isnull=False)
                .only("doc_id", "seq", "text", "metadata")
                .annotate(distance=CosineDistance("embedding", vector))
                .order_by("distance", "seq")
                .first()
            )
            if nearest is not None:
                score = 1.0 - float(nearest.distance)  # type: ignore[attr-defined]
                return _problem_of(nearest, "semantic", score)
        else:
            best = _keyword_best(session, reason)
            if best is not None:
                return _problem_of(best, "keyword", None)
    opening = list(
        _customer_turns(session)
        .only("doc_id", "seq", "text", "metadata")
        .order_by("seq")[:OPENING_TURNS]
    )
    chosen = next((turn for turn in opening if len(turn.text.split()) >= 4), None)
    if chosen is None and opening:
        chosen = opening[0]
    return _problem_of(chosen, "first_customer_turn", None) if chosen else None


def _problem_of(turn: Turn, method: str, score: float | None) -> Problem:
    return Problem(
        turn=turn.doc_id,
        seq=turn.seq,
        text=_clip(turn.text),
        author=turn.metadata.get("author", ""),
        channel=turn.metadata.get("channel", ""),
        method=method,
        score=score,
    )


def _keyword_best(session: Session, reason: str) -> Turn | None:
    """While the model is unavailable: the customer turn that ranks best for the reason's
    words (any of them, English stemming), as keyword search ranks turns."""
    query = SearchQuery(" OR ".join(_WORD.findall(reason.lower())), search_type="websearch")
    return (
        _customer_turns(session)
        .filter(search_vector=query)
        .only("doc_id", "seq", "text", "metadata")
        .annotate(rank=SearchRank(F("search_vector"), query, cover_density=True))
        .order_by("-rank", "seq")
        .first()
    )


_WORD = re.compile(r"[a-z0-9]{2,}")


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


# --- promises and facts: from what was extracted when each turn was stored -----------------

_PROMISES_SQL = """
    SELECT doc_id, seq, COALESCE(metadata->>'role', ''), COALESCE(metadata->>'author', ''),
           COALESCE(metadata->>'channel', ''), created_at, extracted->'commitment',
           count(*) OVER ()
    FROM sessions_app_turn
    WHERE session_id = %(session)s AND (seq <= %(first)s OR seq > %(latest_after)s)
      AND NOT internal AND extracted ? 'commitment'
      AND COALESCE(metadata->>'role', '') <> ALL(%(customer)s)
    ORDER BY seq DESC
    LIMIT %(limit)s
"""


def _promises(session: Session) -> tuple[list[Promise], int]:
    """The latest commitments of bots and agents, oldest first, and how many there are."""
    rows = _fetch(
        _PROMISES_SQL,
        {**_window(session), "customer": list(CUSTOMER_ROLES), "limit": MAX_PROMISES},
    )
    promises = [
        Promise(
            turn=doc_id,
            seq=seq,
            text=commitment["text"],
            topics=tuple(commitment["topics"]),
            role=role,
            author=author,
            channel=channel,
            at=created_at,
        )
        for doc_id, seq, role, author, channel, created_at, commitment, _ in reversed(rows)
    ]
    return promises, rows[0][-1] if rows else 0


# Each distinct fact (kind, key) once: its value where first written, the turns that mention
# it (first ones first), and at most MAX_FACTS_PER_KIND of a kind, the first mentioned.
_FACTS_SQL = """
    WITH mentions AS (
        SELECT f->>0 AS kind, f->>2 AS key, t.seq, t.doc_id, min(f->>1) AS value
        FROM sessions_app_turn t CROSS JOIN LATERAL jsonb_array_elements(t.extracted->'facts') f
        WHERE t.session_id = %(session)s AND (t.seq <= %(first)s OR t.seq > %(latest_after)s)
          AND NOT t.internal AND t.extracted ? 'facts'
        GROUP BY 1, 2, 3, 4
    ), facts AS (
        SELECT kind, key, (array_agg(value ORDER BY seq))[1] AS value,
               (array_agg(doc_id ORDER BY seq))[1:%(turns)s] AS turns,
               min(seq) AS first_seq, count(*) AS mentions,
               row_number() OVER (PARTITION BY kind ORDER BY min(seq)) AS position
        FROM mentions GROUP BY kind, key
    )
    SELECT kind, key, value, turns, first_seq, mentions FROM facts
    WHERE position <= %(per_kind)s ORDER BY first_seq, kind
"""


def _facts(session: Session) -> list[BriefFact]:
    rows = _fetch(
        _FACTS_SQL,
        {**_window(session), "turns": MAX_TURNS_PER_FACT, "per_kind": MAX_FACTS_PER_KIND},
    )
    facts = [
        BriefFact(
            kind=kind,
            value=value,
            key=key,
            turn=turns[0],
            seq=first_seq,
            turns=list(turns),
            mentions=mentions,
        )
        for kind, key, value, turns, first_seq, mentions in rows
    ]
    order = {kind: index for index, kind in enumerate(FACT_KINDS)}
    return sorted(facts, key=lambda fact: (order.get(fact.kind, len(order)), fact.seq))


def turns_extract_pending(
    *, session: Session | None = None, again: bool = False, batch: int = 1000
) -> int:
    """Extract the turns stored without it (by a server older than Turn.extracted, or written
    straight into the table), or with again=True every turn (after the rules changed): the
    brief reads only what was extracted. manage.py extract_pending runs it."""
    turns = Turn.objects.all() if again else Turn.objects.filter(extracted__isnull=True)
    if session is not None:
        turns = turns.filter(session=session)
    done, after = 0, 0
    while pending := list(turns.filter(id__gt=after).only("id", "text").order_by("id")[:batch]):
        for turn in pending:
            turn.extracted = turn_extract(turn.text)
        Turn.objects.bulk_update(pending, ["extracted"])
        done, after = done + len(pending), pending[-1].pk
    return done


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Django's psycopg setup hands JSONB back as text outside the ORM.
    return [tuple(json.loads(v) if _is_json(v) else v for v in row) for row in rows]


def _is_json(value: object) -> bool:
    return isinstance(value, str) and value[:1] in ("{", "[")


# --- the path: runs of turns on one channel ---------------------------------------------------

# Consecutive turns on one channel share row_number() - row_number() per channel (gaps and
# islands); only the first run and the latest ones come back.
_SEGMENTS_SQL = """
    WITH t AS (
        SELECT seq, doc_id, created_at,
               COALESCE(metadata->>'channel', '') AS channel,
               COALESCE(metadata->>'device', '') AS device
        FROM sessions_app_turn
        WHERE session_id = %(session)s AND NOT internal
          AND (seq <= %(first)s OR seq > %(latest_after)s)
    ), runs AS (
        SELECT *, row_number() OVER (ORDER BY seq)
                  - row_number() OVER (PARTITION BY channel ORDER BY seq) AS run
        FROM t
    ), segments AS (
        SELECT channel,
               array_remove(array_agg(DISTINCT device), '') AS devices,
               (array_agg(doc_id ORDER BY seq))[1] AS first_turn, min(seq) AS first_seq,
               (array_agg(doc_id ORDER BY seq DESC))[1] AS last_turn, max(seq) AS last_seq,
               count(*) AS turns, min(created_at) AS started_at,
               row_number() OVER (ORDER BY min(seq)) AS position,
               count(*) OVER () AS total
        FROM runs GROUP BY channel, run
    )
    SELECT channel, devices, first_turn, first_seq, last_turn, last_seq, turns, started_at, total
    FROM segments
    WHERE position = 1 OR position > total - %(latest)s
    ORDER BY first_seq
"""


def _segments(session: Session) -> tuple[list[Segment], int]:
    with connection.cursor() as cursor:
        cursor.execute(_SEGMENTS_SQL, {**_window(session), "latest": MAX_SEGMENTS - 1})
        rows = cursor.fetchall()
    segments = [
        Segment(
            channel=channel,
            devices=list(devices),
            turn=first_turn,
            seq=first_seq,
            last_turn=last_turn,
            last_seq=last_seq,
            turns=turns,
            started_at=started_at,
        )
        for channel, devices, first_turn, first_seq, last_turn, last_seq, turns, started_at, _ in (
            rows
        )
    ]
    return segments, rows[0][-1] if rows else 0


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1].rstrip() + "\u2026"


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
