"""The one implementation behind both clients, free of I/O.

Each operation is a generator: it yields the HTTP requests it needs, receives
each decoded JSON reply (or has the reply's error raised at its `yield`), and
returns the typed result. The async and the sync client only differ in how
they send a request (see `advance`), so request building, pagination,
splitting, response parsing and error mapping live here once.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from moss_client.errors import (
    MossConnectionError,
    MossError,
    ServerError,
    ValidationError,
    error_for_status,
)
from moss_client.types import (
    Actor,
    AddDocsResult,
    Brief,
    BriefEscalation,
    BriefFact,
    BriefHandoff,
    BriefPath,
    BriefProblem,
    BriefPromise,
    BriefSegment,
    CallLimits,
    DeleteDocsResult,
    DocumentInfo,
    Event,
    EventPage,
    EventSession,
    Handoff,
    HandoffTarget,
    HandoffTo,
    PushIndexResult,
    QueryOptions,
    QueryResultDoc,
    RetryPolicy,
    SearchResult,
    SessionInfo,
    StoredDocument,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 60.0
PAGE_SIZE = 500  # the server's largest page
IDS_PER_REQUEST = 50  # keeps ?ids=…&ids=… well under URL length limits
EVENTS_WAIT = 25.0  # seconds a stream request waits on the server (its limit is 30)
EVENTS_REQUEST_MARGIN = 10.0  # a long-poll's HTTP timeout is its wait plus this
RETRY_FIRST_DELAY = 0.5
RETRY_MAX_DELAY = 15.0
# The longest server's wait (Retry-After) the event stream honours: a throttle's window is
# a minute at most, while a proxy's "3600" would leave a bot deaf for an hour.
STREAM_RETRY_AFTER_MAX = 60.0


@dataclass(frozen=True)
class Request:
    method: Literal["GET", "POST", "DELETE"]
    path: str
    params: tuple[tuple[str, str], ...] | None = None
    json: Any = None
    timeout: float | None = None  # None: the client's own timeout
    # A DELETE: a 404 after a refused (429/503) attempt means it is done (retried_answer).
    gone_is_done: bool = False


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


# Yields requests, is sent each reply's decoded JSON (None for 204), returns T.
Operation = Generator[Request, Any, T]


def advance(operation: Operation[T], reply: Any) -> Request | Done[T]:
    """Send the previous reply in (None to start); get the next request, or the result."""
    return _resume(operation.send, reply)


def advance_response(operation: Operation[T], response: httpx.Response) -> Request | Done[T]:
    """Decode a reply and send it in. An error reply is raised inside the operation, at its
    `yield`: one that can recover does (add_docs splits a batch the server found too large),
    the others let it propagate to the caller."""
    try:
        reply = response_decode(response)
    except MossError as error:
        return advance_error(operation, error)
    return _resume(operation.send, reply)


def advance_error(operation: Operation[T], error: MossError) -> Request | Done[T]:
    """Raise an error inside the operation, at its `yield`: an error reply, or no answer
    at all (MossConnectionError). One that can recover does; the others propagate."""
    return _resume(operation.throw, error)


def _resume(step: Callable[[Any], Request], value: Any) -> Request | Done[Any]:
    try:
        return step(value)
    except StopIteration as stop:
        return Done(stop.value)


# --- transport -------------------------------------------------------------


def api_base_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get("MOSS_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def headers(*, project_id: str, project_key: str, agent: str | None) -> dict[str, str]:
    result = {
        "X-Project-Id": project_id,
        "X-Project-Key": project_key,
        "User-Agent": "moss-client/0.1",
    }
    if agent:
        result["X-Agent"] = agent
    return result


@contextmanager
def transport_errors() -> Iterator[None]:
    """Network failures surface as MossConnectionError, like every other SDK error."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise MossConnectionError(f"request timed out: {exc}", code="timeout") from exc
    except httpx.TransportError as exc:
        raise MossConnectionError(f"cannot reach the server: {exc}", code="connection") from exc


def response_decode(response: httpx.Response) -> Any:
    """The reply's JSON, or the typed error carrying the server's code and message."""
    if response.status_code == 204:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if body is None:
            raise MossError(
                f"expected JSON from {response.request.url}, got {response.text[:200]!r}",
                status=response.status_code,
                code="bad_response",
            )
        return body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code, message = str(body.get("error") or "error"), body["message"]
    else:
        code, message = "http_error", _plain_message(response)
    raise error_for_status(
        response.status_code, code=code, message=message, retry_after=retry_after_of(response)
    )


def retry_after_of(response: httpx.Response) -> float | None:
    """The reply's Retry-After in seconds (the server sends seconds, never a date)."""
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None  # not "inf"


def retry_wait(response: httpx.Response, *, retries: int, policy: RetryPolicy) -> float | None:
    """Seconds to wait before sending a refused request again, or None to stop: only a 429
    or 503 that says when (the request wrote nothing), within the policy's limits."""
    if response.status_code not in (429, 503) or retries >= policy.attempts:
        return None
    seconds = retry_after_of(response)
    if seconds is None or seconds > policy.max_wait:
        return None
    return seconds


def retried_answer(step: Request, response: httpx.Response, *, retries: int) -> httpx.Response:
    """A DELETE sent again after a 429 or 503 that finds the thing gone: the refused
    attempt did commit (its answer was lost, README "Outages"), or another caller
    deleted it meanwhile. Either way what was asked is done: answered as a 204."""
    if retries and step.gone_is_done and response.status_code == 404:
        return httpx.Response(204, request=response.request)
    return response


def _plain_message(response: httpx.Response) -> str:
    """A non-JSON error body (a proxy's, or the framework's HTML page) in one short line."""
    text = " ".join(response.text.split())
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE)
    return (title.group(1) if title else text[:300]) or response.reason_phrase


# --- session state shared by both session classes --------------------------


class SessionBase:
    """What a session object knows: the server's last word on it, refreshed by each call."""

    def __init__(self, info: SessionInfo) -> None:
        self._info = info

    def _update(self, **changes: Any) -> None:
        self._info = dataclasses.replace(self._info, **changes)

    def _replace(self, info: SessionInfo) -> None:
        self._info = info

    @property
    def info(self) -> SessionInfo:
        return self._info

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def doc_count(self) -> int:
        return self._info.doc_count

    @property
    def status(self) -> str:
        return self._info.status

    @property
    def holder(self) -> str | None:
        return self._info.holder

    @property
    def version(self) -> int:
        return self._info.version

    @property
    def model_id(self) -> str:
        return self._info.model_id

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._info.metadata)

    @property
    def created(self) -> bool:
        """True when the call that opened this object created the session."""
        return self._info.created

    @property
    def last_handoff(self) -> Handoff | None:
        """The session's latest handoff (a hand-back's note is its `reason`), if any."""
        return self._info.last_handoff

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} doc_count={self.doc_count} "
            f"status={self.status!r} version={self.version}>"
        )


# --- parsing ---------------------------------------------------------------


def session_info_parse(body: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        name=body["name"],
        doc_count=body["doc_count"],
        status=body["status"],
        holder=body.get("holder"),
        version=body["version"],
        model_id=body["model_id"],
        metadata=dict(body.get("metadata") or {}),
        last_seq=body["last_seq"],
        created_at=datetime.fromisoformat(body["created_at"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        created=bool(body.get("created", False)),
        last_handoff=handoff_parse(body["last_handoff"]) if body.get("last_handoff") else None,
    )


def _optional_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def handoff_parse(body: dict[str, Any]) -> Handoff:
    return Handoff(
        version=body["version"],
        job_id=body["job_id"],
        from_agent=body["from_agent"],
        from_channel=body["from_channel"],
        to=HandoffTarget(kind=body["to"]["kind"], target=body["to"]["target"]),
        reason=body["reason"],
        actor=Actor(kind=body["actor"]["kind"], name=body["actor"]["name"]),
        doc_count=body["doc_count"],
        last_seq=body["last_seq"],
        created_at=datetime.fromisoformat(body["created_at"]),
        claimed_by=body.get("claimed_by"),
        claimed_at=_optional_datetime(body.get("claimed_at")),
    )


def event_parse(body: dict[str, Any]) -> Event:
    session = body["session"]
    return Event(
        id=body["id"],
        cursor=body["cursor"],
        type=body["type"],
        created_at=datetime.fromisoformat(body["created_at"]),
        session=EventSession(
            name=session["name"],
            status=session["status"],
            holder=session.get("holder"),
            version=session["version"],
        ),
        actor=Actor(kind=body["actor"]["kind"], name=body["actor"]["name"]),
        data=dict(body.get("data") or {}),
    )


def stored_document_parse(body: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        id=body["id"],
        text=body["text"],
        metadata=dict(body.get("metadata") or {}),
        seq=body["seq"],
        model_id=body["model_id"],
        created_at=datetime.fromisoformat(body["created_at"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        embedding_pending=bool(body.get("embedding_pending", False)),
        internal=bool(body.get("internal", False)),
    )


def search_result_parse(body: dict[str, Any]) -> SearchResult:
    return SearchResult(
        docs=[
            QueryResultDoc(
                id=doc["id"],
                text=doc["text"],
                metadata=dict(doc.get("metadata") or {}),
                score=float(doc["score"]),
                index_name=doc["index_name"],
                internal=bool(doc.get("internal", False)),
            )
            for doc in body["docs"]
        ],
        query=body["query"],
        index_name=body.get("index_name"),
        time_taken_ms=float(body["time_taken_ms"]),
        degraded=body.get("degraded"),
    )


def _document_json(doc: DocumentInfo) -> dict[str, Any]:
    body: dict[str, Any] = {"id": doc.id, "text": doc.text}
    if doc.metadata is not None:
        body["metadata"] = doc.metadata
    if doc.embedding is not None:
        body["embedding"] = _vector_json(doc.embedding, f"docs[{doc.id!r}].embedding")
    return body


def _vector_json(vector: Sequence[float], where: str) -> list[float]:
    """JSON has no NaN or infinity: said here, as the server would, before anything is sent."""
    values = [float(x) for x in vector]
    if not all(math.isfinite(x) for x in values):
        raise ValidationError(f"{where}: must hold finite numbers only", code="invalid_input")
    return values


def _query_json(query: str, options: QueryOptions | None) -> dict[str, Any]:
    options = options or QueryOptions()
    body: dict[str, Any] = {"query": query, "top_k": options.top_k, "alpha": options.alpha}
    if options.filter is not None:
        body["filter"] = options.filter
    if options.embedding is not None:
        body["embedding"] = _vector_json(options.embedding, "embedding")
    if options.include_internal:
        body["include_internal"] = True
    return body


# The server's rule for session names (sessions_app/validation.py), checked here as well:
# a name is part of the URL, and the server decodes %2F, so "x/brief" or "x/docs" would
# reach another endpoint of session "x".
SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")


def _session_path(name: str, suffix: str = "") -> str:
    if not isinstance(name, str) or SESSION_NAME_RE.fullmatch(name) is None:
        raise ValidationError(
            "invalid session name: use 1-128 letters, digits and . _ : @ + -, "
            "starting with a letter or digit",
            code="invalid_input",
        )
    return f"/sessions/{quote(name, safe='')}{suffix}"


# --- operations ------------------------------------------------------------


def session_open(
    *,
    name: str,
    model_id: str | None,
    metadata: dict[str, str] | None,
    channel: str,
    device: str,
) -> Operation[SessionInfo]:
    body: dict[str, Any] = {"name": name, "channel": channel, "device": device}
    if model_id is not None:
        body["model_id"] = model_id
    if metadata is not None:
        body["metadata"] = metadata
    reply = yield Request("POST", "/sessions", json=body)
    return session_info_parse(reply)


def session_get(*, name: str) -> Operation[SessionInfo]:
    reply = yield Request("GET", _session_path(name))
    return session_info_parse(reply)


def session_refresh(session: SessionBase) -> Operation[SessionInfo]:
    info = yield from session_get(name=session.name)
    session._replace(dataclasses.replace(info, created=session.created))
    return session.info


def session_delete(*, name: str) -> Operation[None]:
    yield Request("DELETE", _session_path(name), gone_is_done=True)
    return None


def sessions_list(
    *, status: str | None, prefix: str | None, customer_id: str | None
) -> Operation[list[SessionInfo]]:
    """Every matching session, newest first, following the server's pages."""
    filters = [("status", status), ("prefix", prefix), ("customer_id", customer_id)]
    params = [(key, value) for key, value in filters if value]
    found: list[SessionInfo] = []
    cursor: str | None = None
    while True:
        page_params = [*params, ("limit", str(PAGE_SIZE))]
        if cursor:
            page_params.append(("cursor", cursor))
        reply = yield Request("GET", "/sessions", params=tuple(page_params))
        found.extend(session_info_parse(item) for item in reply["sessions"])
        cursor = reply.get("next_cursor")
        if not cursor:
            return found


def docs_batches(docs: Sequence[DocumentInfo], *, limits: CallLimits) -> list[list[DocumentInfo]]:
    """Consecutive batches, in order, each within the limits. A doc whose text alone is over
    max_text_chars goes alone: the server's per-text limit decides about it."""
    batches: list[list[DocumentInfo]] = [[]]
    chars = 0
    for doc in docs:
        batch = batches[-1]
        if batch and (
            len(batch) >= limits.max_docs or chars + len(doc.text) > limits.max_text_chars
        ):
            batch = []
            batches.append(batch)
            chars = 0
        batch.append(doc)
        chars += len(doc.text)
    return batches


def docs_add(
    session: SessionBase, *, docs: Sequence[DocumentInfo], channel: str, limits: CallLimits
) -> Operation[AddDocsResult]:
    """One request per batch within the limits (all or nothing each); a batch the server
    answers 413 to is halved and sent again. If a request fails, the batches before it stay
    stored: adding them again is harmless (an upsert by id)."""
    path = _session_path(session.name, "/docs")
    # A stack, first batch on top, so halves go back in order.
    pending = list(reversed(docs_batches(docs, limits=limits)))
    added = updated = unchanged = embedding_pending = 0
    while pending:
        batch = pending.pop()
        body: dict[str, Any] = {"docs": [_document_json(doc) for doc in batch]}
        if channel:
            body["channel"] = channel
        try:
            reply = yield Request("POST", path, json=body)
        except MossError as error:
            if error.status != 413 or len(batch) < 2:
                raise
            half = len(batch) // 2
            pending += [batch[half:], batch[:half]]
            continue
        added += reply["added"]
        updated += reply["updated"]
        unchanged += reply["unchanged"]
        embedding_pending += reply.get("embedding_pending", 0)
        session._update(doc_count=reply["doc_count"])
    return AddDocsResult(
        added=added,
        updated=updated,
        unchanged=unchanged,
        doc_count=session.doc_count,
        embedding_pending=embedding_pending,
    )


def docs_get(
    session: SessionBase, *, ids: Sequence[str] | None, include_internal: bool = False
) -> Operation[list[StoredDocument]]:
    """Turns by id in the order asked (missing ids are left out), or, with ids=None,
    the whole thread in sequence order. Private notes only with include_internal."""
    path = _session_path(session.name, "/docs")
    found: list[StoredDocument] = []
    internal = (("include_internal", "true"),) if include_internal else ()
    if ids is not None:
        ids = list(ids)
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            by_id = (*internal, *(("ids", doc_id) for doc_id in chunk))
            reply = yield Request("GET", path, params=by_id)
            found.extend(stored_document_parse(item) for item in reply["docs"])
        return found
    cursor: str | None = None
    while True:
        params = [*internal, ("limit", str(PAGE_SIZE))]
        if cursor:
            params.append(("cursor", cursor))
        reply = yield Request("GET", path, params=tuple(params))
        found.extend(stored_document_parse(item) for item in reply["docs"])
        cursor = reply.get("next_cursor")
        if not cursor:
            return found


def docs_delete(
    session: SessionBase, *, ids: Sequence[str], limits: CallLimits
) -> Operation[DeleteDocsResult]:
    path = _session_path(session.name, "/docs/delete")
    ids = list(ids)
    deleted = 0
    # An empty list still makes one request: the server says what is wrong with it.
    for start in range(0, max(len(ids), 1), limits.max_docs):
        reply = yield Request("POST", path, json={"ids": ids[start : start + limits.max_docs]})
        deleted += reply["deleted"]
        session._update(doc_count=reply["doc_count"])
    return DeleteDocsResult(deleted=deleted, doc_count=session.doc_count)


def session_query(
    session: SessionBase, *, query: str, options: QueryOptions | None
) -> Operation[SearchResult]:
    reply = yield Request(
        "POST", _session_path(session.name, "/query"), json=_query_json(query, options)
    )
    return search_result_parse(reply)


def customer_query(
    *, customer_id: str, query: str, options: QueryOptions | None
) -> Operation[SearchResult]:
    body = {**_query_json(query, options), "customer_id": customer_id}
    reply = yield Request("POST", "/query", json=body)
    return search_result_parse(reply)


def session_push(
    session: SessionBase,
    *,
    to: HandoffTo,
    target: str,
    reason: str,
    from_agent: str,
    from_channel: str,
    force: bool = False,
    job_id: str | None = None,
) -> Operation[PushIndexResult]:
    body: dict[str, Any] = {
        "to": to,
        "target": target,
        "reason": reason,
        "from_agent": from_agent,
        "from_channel": from_channel,
        # The server records a push once per job_id, so sending it again is safe.
        "job_id": job_id or str(uuid.uuid4()),
    }
    if force:
        body["force"] = True
    request = Request("POST", _session_path(session.name, "/push"), json=body)
    try:
        reply = yield request
    except MossConnectionError:
        # No answer: the push may have been saved or not. Sent again with its job_id,
        # it is recorded once either way.
        reply = yield request
    result = PushIndexResult(
        job_id=reply["job_id"],
        index_name=reply["index_name"],
        doc_count=reply["doc_count"],
        status=reply["status"],
        version=reply["version"],
    )
    # A handoff also changes the holder and queue: re-read the session so its
    # properties tell the truth (a cheap read; handoffs are rare).
    try:
        yield from session_refresh(session)
    except MossError:
        # The handoff is saved: failing here would have the caller push it again (a
        # second handoff). The session keeps what the push's reply says.
        info = session.info
        session._replace(dataclasses.replace(info, status=result.status, version=result.version))
    return result


def session_handoffs(session: SessionBase) -> Operation[list[Handoff]]:
    """The session's whole handoff history, oldest first, following the server's pages."""
    found: list[Handoff] = []
    cursor: str | None = None
    while True:
        params = [("limit", str(PAGE_SIZE))]
        if cursor:
            params.append(("cursor", cursor))
        reply = yield Request("GET", _session_path(session.name, "/handoffs"), params=tuple(params))
        found.extend(handoff_parse(item) for item in reply["handoffs"])
        cursor = reply.get("next_cursor")
        if not cursor:
            return found


def session_brief(session: SessionBase) -> Operation[Brief]:
    reply = yield Request("GET", _session_path(session.name, "/brief"))
    return brief_parse(reply)


def _target(body: dict[str, Any]) -> HandoffTarget:
    return HandoffTarget(kind=body["kind"], target=body["target"])


def brief_parse(body: dict[str, Any]) -> Brief:
    escalation, problem, path = body.get("escalation"), body.get("problem"), body["path"]
    return Brief(
        session=body["session"],
        status=body["status"],
        holder=body.get("holder"),
        version=body["version"],
        doc_count=body["doc_count"],
        escalation=BriefEscalation(
            reason=escalation["reason"],
            version=escalation["version"],
            to=_target(escalation["to"]),
            from_agent=escalation["from_agent"],
            from_channel=escalation["from_channel"],
            at=datetime.fromisoformat(escalation["at"]),
            turn=escalation.get("turn"),
            seq=escalation.get("seq"),
        )
        if escalation
        else None,
        problem=BriefProblem(
            turn=problem["turn"],
            seq=problem["seq"],
            text=problem["text"],
            author=problem["author"],
            channel=problem["channel"],
            method=problem["method"],
            score=problem.get("score"),
        )
        if problem
        else None,
        promises=[
            BriefPromise(
                turn=item["turn"],
                seq=item["seq"],
                text=item["text"],
                topics=list(item["topics"]),
                role=item["role"],
                author=item["author"],
                channel=item["channel"],
                at=datetime.fromisoformat(item["at"]),
            )
            for item in body["promises"]
        ],
        promises_total=body["promises_total"],
        facts=[
            BriefFact(
                kind=item["kind"],
                value=item["value"],
                key=item["key"],
                turn=item["turn"],
                seq=item["seq"],
                turns=list(item["turns"]),
                mentions=item["mentions"],
            )
            for item in body["facts"]
        ],
        path=BriefPath(
            channels=list(path["channels"]),
            devices=list(path["devices"]),
            segments=[
                BriefSegment(
                    channel=item["channel"],
                    devices=list(item["devices"]),
                    turn=item["turn"],
                    seq=item["seq"],
                    last_turn=item["last_turn"],
                    last_seq=item["last_seq"],
                    turns=item["turns"],
                    started_at=datetime.fromisoformat(item["started_at"]),
                )
                for item in path["segments"]
            ],
            segments_total=path["segments_total"],
            handoffs=[
                BriefHandoff(
                    version=item["version"],
                    to=_target(item["to"]),
                    reason=item["reason"],
                    from_agent=item["from_agent"],
                    from_channel=item["from_channel"],
                    at=datetime.fromisoformat(item["at"]),
                    claimed_by=item.get("claimed_by"),
                    claimed_at=_optional_datetime(item.get("claimed_at")),
                    waited_seconds=item.get("waited_seconds"),
                    turn=item.get("turn"),
                    seq=item.get("seq"),
                )
                for item in path["handoffs"]
            ],
            handoffs_total=path["handoffs_total"],
            waiting_since=_optional_datetime(path.get("waiting_since")),
            waiting_seconds=path.get("waiting_seconds"),
        ),
        built_in_ms=float(body["built_in_ms"]),
        partial=bool(body.get("partial", False)),
    )


# `after`: a cursor, None for the oldest event the server keeps, "now" for new events only.
After = int | Literal["now"] | None


def events_page(
    *,
    after: After,
    types: Sequence[str] | None,
    session: str | None,
    wait: float,
    limit: int | None = None,
) -> Operation[EventPage]:
    """One long-poll: events after `after`, waiting up to `wait` seconds for the first."""
    params: list[tuple[str, str]] = [("wait", f"{wait:g}")]
    if after is not None:
        params.append(("after", str(after)))
    if types:
        params.append(("types", ",".join(types)))
    if session:
        params.append(("session", session))
    if limit is not None:
        params.append(("limit", str(limit)))
    reply = yield Request(
        "GET", "/events", params=tuple(params), timeout=wait + EVENTS_REQUEST_MARGIN
    )
    return EventPage(
        events=[event_parse(item) for item in reply["events"]], next_cursor=reply["next_cursor"]
    )


def is_transient(error: MossError) -> bool:
    """Worth retrying: no reply, a timeout, or the server (or its proxy) failing."""
    return isinstance(error, MossConnectionError | ServerError) or error.status == 429


class EventFollower:
    """The state of `client.events(...)`, free of I/O: which page to ask for next,
    the events received but not yet handed out, and how long to back off after a
    failure. `cursor` is where the stream would resume: the last event handed out
    (or the server's next_cursor once a page is used up), so a reconnect neither
    repeats nor skips anything."""

    def __init__(
        self,
        *,
        after: After,
        types: Sequence[str] | None,
        session: str | None,
        wait: float,
    ) -> None:
        if not wait > 0:
            raise ValueError("the stream long-polls: wait must be more than 0 seconds")
        self.cursor: After = after
        self._types = list(types) if types else None
        self._session = session
        self._wait = wait
        self._buffer: deque[Event] = deque()
        self._page_end: int | None = None
        self._failures = 0

    def page(self) -> Operation[EventPage]:
        return events_page(
            after=self.cursor, types=self._types, session=self._session, wait=self._wait
        )

    def received(self, page: EventPage) -> None:
        self._failures = 0
        self._buffer.extend(page.events)
        self._page_end = page.next_cursor
        if not self._buffer:
            self.cursor = page.next_cursor

    def take(self) -> Event | None:
        """The next event received, or None when another page is needed."""
        if not self._buffer:
            return None
        event = self._buffer.popleft()
        self.cursor = event.cursor
        if not self._buffer and self._page_end is not None:
            self.cursor = max(event.cursor, self._page_end)
        return event

    def retry_delay(self, error: MossError) -> float:
        """Seconds to wait before asking again; re-raises errors not worth retrying."""
        if not is_transient(error):
            raise error
        delay = min(RETRY_FIRST_DELAY * 2**self._failures, RETRY_MAX_DELAY)
        self._failures += 1
        asked = min(error.retry_after or 0.0, STREAM_RETRY_AFTER_MAX)
        return max(delay * random.uniform(0.5, 1.0), asked)
