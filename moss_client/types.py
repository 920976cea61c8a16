"""The shapes the SDK sends and returns, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

HandoffTo = Literal["bot", "humans", "team", "user"]
SessionStatus = Literal["bot", "waiting", "held", "resolved"]


@dataclass(frozen=True)
class RetryPolicy:
    """Requests the server refused for now, with a `Retry-After` (429: over the key's rate;
    503: the database or Redis is down), wrote nothing: the SDK sends them again after the
    wait the server asked for, up to `attempts` more times and only while the wait is at
    most `max_wait` seconds. Then it raises (RateLimitedError, ServerError) with
    `retry_after` set. `RetryPolicy(attempts=0)` turns this off."""

    attempts: int = 3
    max_wait: float = 30.0


@dataclass(frozen=True)
class CallLimits:
    """How much one add_docs or delete_docs request may carry; the SDK splits larger calls.

    The defaults are the server's (MOSS_MAX_DOCS_PER_CALL, MOSS_MAX_CALL_TEXT_CHARS).
    Against a server configured lower, the SDK still succeeds: it halves a batch the
    server answers 413 to and sends the halves.
    """

    max_docs: int = 500
    max_text_chars: int = 200_000


@dataclass
class DocumentInfo:
    """A turn to add. `id` is chosen by the client; adding an existing id updates it."""

    id: str
    text: str
    metadata: dict[str, str] | None = None
    embedding: list[float] | None = None


@dataclass
class QueryOptions:
    """`alpha` blends semantic (1.0) and keyword (0.0) scoring. `filter` matches metadata
    with $eq $ne $gt $gte $lt $lte $in $nin, nestable under $and / $or."""

    top_k: int = 5
    # The server's default (chosen on its eval set; README, "Search quality").
    alpha: float = 0.9
    filter: dict[str, Any] | None = None
    embedding: list[float] | None = None
    # Search the specialists' private notes too (results carry internal=True).
    include_internal: bool = False


@dataclass(frozen=True)
class SessionInfo:
    """A session as the server last described it."""

    name: str
    doc_count: int
    status: str
    holder: str | None
    version: int
    model_id: str
    metadata: dict[str, str]
    last_seq: int
    created_at: datetime
    updated_at: datetime
    created: bool = False
    last_handoff: Handoff | None = None


@dataclass(frozen=True)
class AddDocsResult:
    added: int
    updated: int
    unchanged: int
    doc_count: int
    # Turns stored while the model was unavailable: keyword search finds them now,
    # semantic search once the server's backfill has embedded them (README "Outages").
    embedding_pending: int = 0


@dataclass(frozen=True)
class DeleteDocsResult:
    deleted: int
    doc_count: int


@dataclass(frozen=True)
class StoredDocument:
    """A turn as stored; `seq` is its server-assigned place in the thread."""

    id: str
    text: str
    metadata: dict[str, str]
    seq: int
    model_id: str
    created_at: datetime
    updated_at: datetime
    # Stored while the server's model was unavailable: found by keyword until embedded.
    embedding_pending: bool = False
    # A specialists' private note: returned only when asked for (include_internal).
    internal: bool = False


@dataclass(frozen=True)
class QueryResultDoc:
    id: str
    text: str
    metadata: dict[str, str]
    score: float
    index_name: str
    internal: bool = False


@dataclass(frozen=True)
class SearchResult:
    docs: list[QueryResultDoc]
    query: str
    index_name: str | None
    time_taken_ms: float
    # "keyword_only" when the server's model was unavailable and scores are keyword scores.
    degraded: str | None = None


@dataclass(frozen=True)
class PushIndexResult:
    job_id: str
    index_name: str
    doc_count: int
    status: str
    version: int


@dataclass(frozen=True)
class HandoffTarget:
    """Whom a handoff went to: `kind` bot / humans / team / user / resolved, and its name."""

    kind: str
    target: str


@dataclass(frozen=True)
class Actor:
    """Who acted: `kind` is "bot" (a project key), "user" (a specialist) or "system"."""

    kind: str
    name: str


@dataclass(frozen=True)
class Handoff:
    """One handoff of a session; `reason` is a hand-back's or resolution's note too."""

    version: int
    job_id: str
    from_agent: str
    from_channel: str
    to: HandoffTarget
    reason: str
    actor: Actor
    doc_count: int
    last_seq: int
    created_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None


@dataclass(frozen=True)
class EventSession:
    """The session as the change left it."""

    name: str
    status: str
    holder: str | None
    version: int


@dataclass(frozen=True)
class Event:
    """One entry of the project's event log. `id` is unique (deduplicate by it);
    `cursor` grows by one per project in commit order. `data` depends on `type`:
    for turn.* it has id, seq, role, author, channel, text and metadata."""

    id: str
    cursor: int
    type: str
    created_at: datetime
    session: EventSession
    actor: Actor
    data: dict[str, Any]


@dataclass(frozen=True)
class EventPage:
    """One reply of the stream: events, and the cursor to pass as `after` next."""

    events: list[Event]
    next_cursor: int


# --- the handoff brief (session.brief()): every item cites a turn by id and seq ----------


@dataclass(frozen=True)
class BriefEscalation:
    """The latest escalation; `turn` is the last turn before it."""

    reason: str
    version: int
    to: HandoffTarget
    from_agent: str
    from_channel: str
    at: datetime
    turn: str | None
    seq: int | None


@dataclass(frozen=True)
class BriefProblem:
    """The customer's problem in their own words. `method`: "semantic" (the customer turn
    closest to the reason), "keyword" (the model was unavailable) or "first_customer_turn"."""

    turn: str
    seq: int
    text: str
    author: str
    channel: str
    method: str
    score: float | None


@dataclass(frozen=True)
class BriefPromise:
    """What a bot or agent promised or did: the committing sentences of one turn."""

    turn: str
    seq: int
    text: str
    topics: list[str]
    role: str
    author: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class BriefFact:
    """An amount, order/case/ticket/invoice number, date, email or phone number. `value` as
    written, `key` normalised ("USD 49.99", "+14155550134"); `turn` is its first mention."""

    kind: str
    value: str
    key: str
    turn: str
    seq: int
    turns: list[str]
    mentions: int


@dataclass(frozen=True)
class BriefSegment:
    """A run of consecutive turns on one channel, from `turn` to `last_turn`."""

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
    to: HandoffTarget
    reason: str
    from_agent: str
    from_channel: str
    at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    waited_seconds: float | None
    turn: str | None
    seq: int | None


@dataclass(frozen=True)
class BriefPath:
    channels: list[str]
    devices: list[str]
    segments: list[BriefSegment]
    segments_total: int
    handoffs: list[BriefHandoff]
    handoffs_total: int
    waiting_since: datetime | None
    waiting_seconds: float | None


@dataclass(frozen=True)
class Brief:
    """The handoff brief of a session, as the server built it."""

    session: str
    status: str
    holder: str | None
    version: int
    doc_count: int
    escalation: BriefEscalation | None
    problem: BriefProblem | None
    promises: list[BriefPromise]
    promises_total: int
    facts: list[BriefFact]
    path: BriefPath
    built_in_ms: float
    # The session is longer than a brief reads (its first 200 and latest 2,000 turns).
    partial: bool = False

    def facts_of(self, kind: str) -> list[BriefFact]:
        return [fact for fact in self.facts if fact.kind == kind]
