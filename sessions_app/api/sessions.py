"""API v1 operations. Each parses, scopes to the caller's project, calls one service."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from sessions_app.api.auth import request_actor, request_key
from sessions_app.api.fields import (
    Cursor,
    CustomerId,
    DocId,
    NamePrefix,
    SessionName,
    XAgent,
)
from sessions_app.api.schemas import (
    WITH_BODY,
    AddDocsIn,
    AddDocsOut,
    BriefOut,
    CustomerQueryIn,
    DeleteDocsIn,
    DeleteDocsOut,
    DocsOut,
    HandoffListOut,
    PushIn,
    PushOut,
    QueryIn,
    QueryOut,
    SessionListOut,
    SessionOpenIn,
    SessionOut,
    responses,
)
from sessions_app.models import Session, SessionStatus
from sessions_app.selectors import (
    handoffs_of,
    session_get,
    session_last_handoff_read,
    session_list,
    turns_by_ids,
)
from sessions_app.services import brief, handoffs, search, sessions, turns

router = Router(tags=["sessions"])

MAX_PAGE = 500


def _session(request: HttpRequest, name: str) -> Session:
    return session_get(project=request_key(request).project, name=name)


def _cursor(value: str | None) -> int:
    return int(value) if value else 0


@router.post("/sessions", response=responses({200: SessionOut, 201: SessionOut}, *WITH_BODY, 409))
def open_session(
    request: HttpRequest, payload: SessionOpenIn, agent: XAgent = ""
) -> Status[Session]:
    """Open a session by name: create it, or resume it with everything stored."""
    session, created = sessions.session_open(
        project=request_key(request).project,
        name=payload.name,
        actor=request_actor(request, agent),
        model_id=payload.model_id,
        metadata=payload.metadata,
        channel=payload.channel,
        device=payload.device,
    )
    session.created = created  # type: ignore[attr-defined]
    return Status(201 if created else 200, session_last_handoff_read(session))


@router.get("/sessions", response=responses({200: SessionListOut}))
def list_sessions(
    request: HttpRequest,
    status: SessionStatus | None = None,
    prefix: NamePrefix | None = None,
    customer_id: CustomerId | None = None,
    cursor: Cursor | None = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
) -> dict[str, object]:
    """Sessions of the project, newest first; filter by status, name prefix or customer."""
    rows = session_list(
        project=request_key(request).project,
        status=status,
        name_prefix=prefix,
        metadata={"customer_id": customer_id} if customer_id else None,
    ).select_related("last_handoff__by_user", "last_handoff__claimed_by")
    after = _cursor(cursor)
    if after:
        rows = rows.filter(id__lt=after)
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {"sessions": page, "next_cursor": str(page[-1].pk) if more else None}


@router.get("/sessions/{name}", response=responses({200: SessionOut}, 404))
def get_session(request: HttpRequest, name: SessionName) -> Session:
    return session_last_handoff_read(_session(request, name))


@router.delete("/sessions/{name}", response=responses({204: None}, 404))
def delete_session(request: HttpRequest, name: SessionName, agent: XAgent = "") -> Status[None]:
    sessions.session_delete(
        project=request_key(request).project, name=name, actor=request_actor(request, agent)
    )
    return Status(204, None)


@router.post("/sessions/{name}/docs", response=responses({200: AddDocsOut}, *WITH_BODY, 404, 409))
def add_docs(
    request: HttpRequest, name: SessionName, payload: AddDocsIn, agent: XAgent = ""
) -> turns.UpsertResult:
    """Upsert turns by id, all or nothing. Durable when this returns."""
    docs = [
        turns.DocInput(id=d.id, text=d.text, metadata=d.metadata or {}, embedding=d.embedding)
        for d in payload.docs
    ]
    return turns.turns_upsert(
        session=_session(request, name),
        docs=docs,
        actor=request_actor(request, agent),
        channel=payload.channel,
    )


@router.get("/sessions/{name}/docs", response=responses({200: DocsOut}, 404))
def get_docs(
    request: HttpRequest,
    name: SessionName,
    ids: list[DocId] | None = Query(None, max_length=MAX_PAGE),  # noqa: B008
    cursor: Cursor | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    include_internal: bool = Query(
        False, description="Include the specialists' private notes (internal: true)"
    ),
    agent: XAgent = "",
) -> dict[str, object]:
    """Turns by id (in the order asked), or the thread in sequence order, a page at a time.

    Private notes are left out unless `include_internal=true`."""
    session = _session(request, name)
    if ids:
        return {
            "docs": turns_by_ids(session=session, doc_ids=ids, include_internal=include_internal)
        }
    page, next_seq = turns.thread_read(
        session=session,
        actor=request_actor(request, agent),
        after_seq=_cursor(cursor),
        limit=limit,
        include_internal=include_internal,
    )
    return {"docs": page, "next_cursor": str(next_seq) if next_seq else None}


@router.post(
    "/sessions/{name}/docs/delete", response=responses({200: DeleteDocsOut}, *WITH_BODY, 404)
)
def delete_docs(
    request: HttpRequest, name: SessionName, payload: DeleteDocsIn, agent: XAgent = ""
) -> dict[str, int]:
    session = _session(request, name)
    deleted = turns.turns_delete(
        session=session, doc_ids=payload.ids, actor=request_actor(request, agent)
    )
    return {"deleted": deleted, "doc_count": session.doc_count}


@router.post("/sessions/{name}/query", response=responses({200: QueryOut}, *WITH_BODY, 404))
def query_session(request: HttpRequest, name: SessionName, payload: QueryIn) -> dict[str, object]:
    session, result = search.session_search(
        project=request_key(request).project, name=name, wanted=_search_input(payload)
    )
    return _query_out(result, index_name=session.name)


@router.post("/query", response=responses({200: QueryOut}, *WITH_BODY))
def query_customer(request: HttpRequest, payload: CustomerQueryIn) -> dict[str, object]:
    """Search every session of one customer (sessions whose metadata has its customer_id)."""
    result = search.customer_search(
        project=request_key(request).project,
        customer_id=payload.customer_id,
        wanted=_search_input(payload),
    )
    return _query_out(result, index_name=None)


def _search_input(payload: QueryIn) -> search.SearchInput:
    return search.SearchInput(
        query=payload.query,
        top_k=payload.top_k,
        alpha=payload.alpha,
        metadata_filter=payload.filter,
        embedding=payload.embedding,
        include_internal=payload.include_internal,
    )


def _query_out(result: search.SearchResult, *, index_name: str | None) -> dict[str, object]:
    return {
        "docs": [
            {
                "id": hit.id,
                "text": hit.text,
                "metadata": hit.metadata,
                "score": hit.score,
                "index_name": hit.session_name,
                "internal": hit.internal,
            }
            for hit in result.docs
        ],
        "query": result.query,
        "index_name": index_name,
        "time_taken_ms": result.time_taken_ms,
        "degraded": result.degraded,
    }


@router.get("/sessions/{name}/handoffs", response=responses({200: HandoffListOut}, 404))
def list_handoffs(
    request: HttpRequest,
    name: SessionName,
    cursor: Cursor | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
) -> dict[str, object]:
    """The session's handoffs, oldest first: who handed it to whom, why, and who claimed it."""
    page = handoffs_of(
        session=_session(request, name), after_version=_cursor(cursor), limit=limit + 1
    )
    more = len(page) > limit
    page = page[:limit]
    return {"handoffs": page, "next_cursor": str(page[-1].version) if more else None}


@router.get("/sessions/{name}/brief", response=responses({200: BriefOut}, 404))
def get_brief(request: HttpRequest, name: SessionName, agent: XAgent = "") -> brief.Brief:
    """The handoff brief: the escalation reason and the customer's problem in their words,
    what was promised or done, key facts, and the path so far. Every item cites its turn."""
    return brief.brief_read(session=_session(request, name), actor=request_actor(request, agent))


@router.post("/sessions/{name}/push", response=responses({200: PushOut}, *WITH_BODY, 404, 409))
def push_index(
    request: HttpRequest, name: SessionName, payload: PushIn, agent: XAgent = ""
) -> dict[str, object]:
    """Mark a handoff point. To "humans", a "team" or a "user", it waits in the escalation queue.

    A session a specialist holds answers 409 naming them, unless `force` is set."""
    session = _session(request, name)
    handoff = handoffs.session_push(
        session=session,
        actor=request_actor(request, agent),
        to_kind=payload.to,
        to_target=payload.target,
        reason=payload.reason,
        from_agent=payload.from_agent,
        from_channel=payload.from_channel,
        force=payload.force,
        job_id=payload.job_id,
    )
    return {
        "job_id": str(handoff.job_id),
        "index_name": session.name,
        "doc_count": handoff.doc_count,
        "status": session.status,
        "version": handoff.version,
    }
