"""Request (XIn) and response (XOut) shapes of API v1."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from ninja import Field, Schema

from sessions_app.api.fields import (
    AgentName,
    Channel,
    CustomerId,
    Device,
    DocId,
    Embedding,
    Metadata,
    ModelId,
    NoNul,
    Note,
    SessionName,
    Text,
)
from sessions_app.models import Handoff, Session, Turn
from sessions_app.services.search import DEFAULT_ALPHA


class SessionOpenIn(Schema):
    name: SessionName
    model_id: ModelId | None = Field(None, description="all-MiniLM-L6-v2 (alias moss-minilm)")
    metadata: Metadata | None = Field(None, description="e.g. customer_id")
    channel: Channel = ""
    device: Device = ""


class ActorOut(Schema):
    kind: Literal["bot", "user", "system"]
    name: str


class HandoffTargetOut(Schema):
    kind: str
    target: str


class HandoffOut(Schema):
    version: int
    job_id: str
    from_agent: str
    from_channel: str
    to: HandoffTargetOut
    reason: str = Field(..., description="Why; for a hand-back, the specialist's note")
    actor: ActorOut
    doc_count: int
    last_seq: int
    created_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None

    @staticmethod
    def resolve_job_id(obj: Handoff) -> str:
        return str(obj.job_id)

    @staticmethod
    def resolve_to(obj: Handoff) -> dict[str, str]:
        return {"kind": obj.to_kind, "target": obj.to_target}

    @staticmethod
    def resolve_actor(obj: Handoff) -> dict[str, str]:
        if obj.by_user is not None:
            return {"kind": "user", "name": obj.by_user.get_username()}
        if obj.by_key_id is not None:  # the id: the key's row is not needed
            return {"kind": "bot", "name": obj.from_agent}
        return {"kind": "system", "name": obj.from_agent}

    @staticmethod
    def resolve_claimed_by(obj: Handoff) -> str | None:
        return obj.claimed_by.get_username() if obj.claimed_by else None


class HandoffListOut(Schema):
    handoffs: list[HandoffOut]
    next_cursor: str | None = None


class SessionOut(Schema):
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
    last_handoff: HandoffOut | None = Field(None, description="The latest handoff, if any")

    @staticmethod
    def resolve_holder(obj: Session) -> str | None:
        return obj.holder_label or None


class SessionListOut(Schema):
    sessions: list[SessionOut]
    next_cursor: str | None


class DocumentIn(Schema):
    id: DocId
    text: Text
    metadata: Metadata | None = None
    embedding: Embedding | None = None


class AddDocsIn(Schema):
    docs: list[DocumentIn] = Field(
        ...,
        min_length=1,
        # Declared, not validated here: more docs is a 413 (TooLarge, services/turns.py),
        # as more text is, so that a client halves the call on either.
        json_schema_extra={"maxItems": settings.MOSS_MAX_DOCS_PER_CALL},
        description="At most MOSS_MAX_DOCS_PER_CALL docs and MOSS_MAX_CALL_TEXT_CHARS "
        "characters of text in all (413 beyond either; the SDK splits larger calls)",
    )
    channel: Channel = ""


class AddDocsOut(Schema):
    added: int
    updated: int
    unchanged: int
    doc_count: int
    embedding_pending: int = Field(
        0, description="Turns stored while the model was unavailable; embedded later"
    )


class DocumentOut(Schema):
    id: str
    text: str
    metadata: dict[str, str]
    seq: int
    model_id: str
    embedding_pending: bool = Field(
        False, description="Stored while the model was unavailable; found by keyword until embedded"
    )
    internal: bool = Field(
        False, description="A specialists' private note; returned only with include_internal"
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_id(obj: Turn) -> str:
        return obj.doc_id


class DocsOut(Schema):
    docs: list[DocumentOut]
    next_cursor: str | None = None


class DeleteDocsIn(Schema):
    ids: list[DocId] = Field(..., min_length=1, max_length=settings.MOSS_MAX_DOCS_PER_CALL)


class DeleteDocsOut(Schema):
    deleted: int
    doc_count: int


class QueryIn(Schema):
    query: Text
    top_k: int = Field(5, ge=1, le=settings.MOSS_MAX_TOP_K)
    alpha: float = Field(
        DEFAULT_ALPHA, ge=0.0, le=1.0, allow_inf_nan=False, description="1.0 semantic, 0.0 keyword"
    )
    filter: dict[str, Any] | None = Field(
        None,
        description="Metadata filter: {key: value}, {key: {$eq|$ne|$gt|$gte|$lt|$lte: value}}, "
        "{key: {$in|$nin: [values]}}, nestable under $and / $or; at most "
        "MOSS_MAX_FILTER_CLAUSES conditions, MOSS_MAX_FILTER_DEPTH levels deep",
    )
    embedding: Embedding | None = None
    include_internal: bool = Field(
        False, description="Search the specialists' private notes too (internal: true)"
    )


class CustomerQueryIn(QueryIn):
    customer_id: CustomerId = Field(..., description="Searches every session whose metadata has it")


class QueryDocOut(Schema):
    id: str
    text: str
    metadata: dict[str, str]
    score: float
    index_name: str
    internal: bool = Field(False, description="A private note (asked for with include_internal)")


class QueryOut(Schema):
    docs: list[QueryDocOut]
    query: str
    index_name: str | None
    time_taken_ms: float
    degraded: Literal["keyword_only"] | None = Field(
        None, description="keyword_only: the model was unavailable, scores are keyword scores"
    )


class PushIn(Schema):
    to: Literal["bot", "humans", "team", "user"] = "bot"
    target: AgentName = Field("", description="The bot, team or username handed to")
    reason: Note = ""
    from_agent: AgentName = ""
    from_channel: Channel = ""
    force: bool = Field(
        False, description="Take the session over even though a specialist holds it"
    )
    job_id: UUID | None = Field(
        None,
        description=(
            "Your id for this push (a UUID; the SDK sends a new one per push_index). "
            "The same push sent again with it, after a lost answer or a 503, is recorded "
            "once and answers with the first push's handoff"
        ),
    )


class PushOut(Schema):
    job_id: str
    index_name: str
    doc_count: int
    status: str
    version: int


class ErrorOut(Schema):
    """The one error shape of API v1."""

    error: str = Field(..., description="A stable code: invalid_input, not_found, too_large, ...")
    message: str = Field(..., description="What was wrong, for a person to read")


# Every operation can answer these: a missing or wrong key, invalid input, too
# many requests, and (only through a bug) a server error, all in the ErrorOut shape.
ALWAYS = (401, 422, 429, 500)
# Operations with a JSON body: it may not parse (400) or be too large (413).
WITH_BODY = (400, 413)


def responses(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's documented replies: its successes and every error it can return."""
    return {**ok, **dict.fromkeys(sorted({*ALWAYS, *errors}), ErrorOut)}


class EventSessionOut(Schema):
    name: str
    status: str
    holder: str | None
    version: int


class EventOut(Schema):
    id: str = Field(..., description="evt_<hex>: unique; receivers deduplicate by it")
    cursor: int = Field(..., description="Grows by one per project, in commit order")
    type: str
    created_at: str
    session: EventSessionOut = Field(..., description="The session as the change left it")
    actor: ActorOut
    data: dict[str, Any]


class EventPageOut(Schema):
    events: list[EventOut]
    next_cursor: int = Field(..., description="Pass it as `after` to continue")


class WebhookCreateIn(Schema):
    url: NoNul = Field(
        ..., max_length=2000, description="An http(s) URL that receives POSTs of events"
    )
    types: list[NoNul] = Field(
        default_factory=list, description="Event types to send; empty sends every type"
    )


class WebhookAttemptOut(Schema):
    at: datetime
    event_id: str
    event_type: str
    event_cursor: int
    attempt: int
    ok: bool
    status_code: int | None
    latency_ms: float | None
    error: str


class WebhookOut(Schema):
    id: str
    url: str
    types: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str
    created_at: datetime
    cursor: int = Field(..., description="The last event cursor this endpoint is done with")
    failures: int = Field(..., description="Failed attempts at the event after `cursor`")
    next_attempt_at: datetime | None
    last_attempt: WebhookAttemptOut | None


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(..., description="whsec_… — shown this once; it verifies deliveries")


class WebhookListOut(Schema):
    webhooks: list[WebhookOut]


FactKind = Literal["amount", "order", "case", "ticket", "invoice", "date", "email", "phone"]
CITES = "The id of the turn it cites"
CITES_SEQ = "That turn's sequence number (the console anchors it as #turn-<seq>)"


class BriefEscalationOut(Schema):
    reason: str
    version: int = Field(..., description="The handoff's version")
    to: HandoffTargetOut
    from_agent: str
    from_channel: str
    at: datetime
    turn: str | None = Field(..., description="The last turn before the escalation")
    seq: int | None

    @staticmethod
    def resolve_to(obj: Any) -> dict[str, str]:
        return {"kind": obj.to_kind, "target": obj.to_target}


class BriefProblemOut(Schema):
    turn: str = Field(..., description=CITES)
    seq: int = Field(..., description=CITES_SEQ)
    text: str = Field(..., description="The customer's words (at most 600 characters)")
    author: str
    channel: str
    method: Literal["semantic", "keyword", "first_customer_turn"] = Field(
        ...,
        description="semantic: the customer turn closest to the escalation reason; keyword: "
        "the same by shared words, while the model is unavailable; first_customer_turn: "
        "no reason to match",
    )
    score: float | None = Field(None, description="Cosine similarity to the reason")


class BriefPromiseOut(Schema):
    turn: str = Field(..., description=CITES)
    seq: int = Field(..., description=CITES_SEQ)
    text: str = Field(..., description="The sentences that commit, as written")
    topics: list[str] = Field(
        ..., description="refund, credit, callback, replacement, cancellation, fee waiver, …"
    )
    role: str
    author: str
    channel: str
    at: datetime


class BriefFactOut(Schema):
    kind: FactKind
    value: str = Field(..., description="As written in the turn")
    key: str = Field(
        ..., description="Normalised: 'USD 49.99', '+14155550134', '2026-11-25' or '11-25'"
    )
    turn: str = Field(..., description="The first turn that mentions it")
    seq: int = Field(..., description=CITES_SEQ)
    turns: list[str] = Field(..., description="The turns that mention it (the first ten)")
    mentions: int


class BriefSegmentOut(Schema):
    channel: str
    devices: list[str]
    turn: str = Field(..., description="The first turn of the run")
    seq: int
    last_turn: str
    last_seq: int
    turns: int = Field(..., description="How many turns the run has")
    started_at: datetime


class BriefHandoffOut(Schema):
    version: int
    to: HandoffTargetOut
    reason: str
    from_agent: str
    from_channel: str
    at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    waited_seconds: float | None = Field(
        ..., description="An escalation's wait for a specialist (so far, if unclaimed)"
    )
    turn: str | None = Field(..., description="The last turn before the handoff")
    seq: int | None

    @staticmethod
    def resolve_to(obj: Any) -> dict[str, str]:
        return {"kind": obj.to_kind, "target": obj.to_target}


class BriefPathOut(Schema):
    channels: list[str] = Field(..., description="In the order the conversation reached them")
    devices: list[str]
    segments: list[BriefSegmentOut] = Field(
        ..., description="Runs of turns on one channel: the first and the latest 19"
    )
    segments_total: int
    handoffs: list[BriefHandoffOut] = Field(..., description="The latest 20, oldest first")
    handoffs_total: int
    waiting_since: datetime | None
    waiting_seconds: float | None = Field(..., description="While it waits for a specialist")


class BriefOut(Schema):
    """An extractive brief of the session; every item cites its turn."""

    session: str
    status: str
    holder: str | None
    version: int
    doc_count: int
    escalation: BriefEscalationOut | None = Field(..., description="The latest escalation")
    problem: BriefProblemOut | None = Field(
        ..., description="The customer's problem in their own words"
    )
    promises: list[BriefPromiseOut] = Field(
        ..., description="What the bots and agents promised or did: the latest 15, oldest first"
    )
    promises_total: int
    facts: list[BriefFactOut] = Field(
        ...,
        description="Amounts, order/case/ticket/invoice numbers, dates, emails, phones "
        "(at most 15 of each kind), each once",
    )
    path: BriefPathOut
    built_in_ms: float = Field(..., description="How long building it took (a cached brief's)")
    partial: bool = Field(
        False,
        description="The session is longer than a brief reads: facts, promises, channel runs "
        "and the problem come from its first 200 and latest 2,000 turns",
    )
