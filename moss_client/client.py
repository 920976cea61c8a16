"""The async client: `client = MossClient(id, key)`, `session = await client.session(...)`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar

import httpx

from moss_client import _core
from moss_client.errors import MossError
from moss_client.types import (
    AddDocsResult,
    Brief,
    CallLimits,
    DeleteDocsResult,
    DocumentInfo,
    Event,
    Handoff,
    HandoffTo,
    PushIndexResult,
    QueryOptions,
    RetryPolicy,
    SearchResult,
    SessionInfo,
    StoredDocument,
)

T = TypeVar("T")

logger = logging.getLogger("moss_client")


class MossClient:
    """Async client for one project. `agent` names this caller in the audit trail."""

    def __init__(
        self,
        project_id: str,
        project_key: str,
        *,
        base_url: str | None = None,
        agent: str | None = None,
        timeout: float = _core.DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        call_limits: CallLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = _core.api_base_url(base_url)
        # Larger add_docs / delete_docs calls are split into requests within these.
        self.call_limits = call_limits or CallLimits()
        # A 429 or 503 with Retry-After is sent again after that wait, within this policy.
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_core.headers(project_id=project_id, project_key=project_key, agent=agent),
            timeout=timeout,
            transport=transport,
        )

    async def _run(self, operation: _core.Operation[T]) -> T:
        step = _core.advance(operation, None)
        while isinstance(step, _core.Request):
            try:
                response = await self._send(step)
            except MossError as error:  # no answer: the operation may still recover
                step = _core.advance_error(operation, error)
            else:
                step = _core.advance_response(operation, response)
        return step.value

    async def _send(self, step: _core.Request) -> httpx.Response:
        """The request's answer, after the waits a refusal asks for (RetryPolicy)."""
        retries = 0
        while True:
            with _core.transport_errors():
                response = await self._http.request(
                    step.method,
                    step.path,
                    params=step.params,
                    json=step.json,
                    timeout=httpx.USE_CLIENT_DEFAULT if step.timeout is None else step.timeout,
                )
            wait = _core.retry_wait(response, retries=retries, policy=self.retry)
            if wait is None:
                return _core.retried_answer(step, response, retries=retries)
            retries += 1
            await asyncio.sleep(wait)

    async def session(
        self,
        index_name: str,
        *,
        model_id: str | None = None,
        metadata: dict[str, str] | None = None,
        channel: str = "",
        device: str = "",
    ) -> Session:
        """Open the session named `index_name`: create it, or resume it with all prior turns."""
        info = await self._run(
            _core.session_open(
                name=index_name,
                model_id=model_id,
                metadata=metadata,
                channel=channel,
                device=device,
            )
        )
        return Session(self, info)

    async def get_session(self, index_name: str) -> Session:
        """An existing session, without creating it (NotFoundError if there is none)."""
        return Session(self, await self._run(_core.session_get(name=index_name)))

    async def list_sessions(
        self,
        *,
        status: str | None = None,
        prefix: str | None = None,
        customer_id: str | None = None,
    ) -> list[SessionInfo]:
        return await self._run(
            _core.sessions_list(status=status, prefix=prefix, customer_id=customer_id)
        )

    async def delete_session(self, index_name: str) -> None:
        await self._run(_core.session_delete(name=index_name))

    async def query_customer(
        self, customer_id: str, query: str, options: QueryOptions | None = None
    ) -> SearchResult:
        """Search every session whose metadata carries this customer_id."""
        return await self._run(
            _core.customer_query(customer_id=customer_id, query=query, options=options)
        )

    def events(
        self,
        *,
        after: _core.After = None,
        types: Sequence[str] | None = None,
        session: str | None = None,
        wait: float = _core.EVENTS_WAIT,
    ) -> EventStream:
        """Follow the project's event log: `async for event in client.events(...)`.

        Long-polls (`wait` seconds per request, at most 30), never ends by itself,
        and on a lost connection or a 5xx retries with backoff from the last event
        it handed out (`stream.cursor`, worth saving to resume after a restart).
        `after`: a cursor; None for the oldest event kept; "now" for new ones only.
        """
        follower = _core.EventFollower(after=after, types=types, session=session, wait=wait)
        return EventStream(self, follower)

    async def latest_event_cursor(self) -> int:
        """The cursor of the project's latest event: pass it as `after` to follow only
        what happens from now on."""
        page = await self._run(_core.events_page(after="now", types=None, session=None, wait=0))
        return page.next_cursor

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MossClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class Session(_core.SessionBase):
    """A named thread. Properties (name, doc_count, status, holder, version, model_id)
    reflect the server's last reply; `refresh()` re-reads them."""

    def __init__(self, client: MossClient, info: SessionInfo) -> None:
        super().__init__(info)
        self._client = client

    async def add_docs(self, docs: Sequence[DocumentInfo], *, channel: str = "") -> AddDocsResult:
        """Upsert turns by id; they are durable when this returns. A call over the client's
        `call_limits` is sent as several requests, each all or nothing."""
        return await self._client._run(
            _core.docs_add(self, docs=docs, channel=channel, limits=self._client.call_limits)
        )

    async def get_docs(
        self, ids: Sequence[str] | None = None, *, include_internal: bool = False
    ) -> list[StoredDocument]:
        """Private notes are left out unless `include_internal`."""
        return await self._client._run(
            _core.docs_get(self, ids=ids, include_internal=include_internal)
        )

    async def delete_docs(self, ids: Sequence[str]) -> DeleteDocsResult:
        return await self._client._run(
            _core.docs_delete(self, ids=ids, limits=self._client.call_limits)
        )

    async def query(self, query: str, options: QueryOptions | None = None) -> SearchResult:
        return await self._client._run(_core.session_query(self, query=query, options=options))

    async def push_index(
        self,
        *,
        to: HandoffTo = "bot",
        target: str = "",
        reason: str = "",
        from_agent: str = "",
        from_channel: str = "",
        force: bool = False,
        job_id: str | None = None,
    ) -> PushIndexResult:
        """Record a handoff. `to="humans"` (or a team / user) puts it in the escalation queue.

        A session a specialist holds raises ConflictError naming them, unless `force`
        is set: then the bot takes it over and the specialist's page says so.

        Each push carries a `job_id` (a new UUID unless you pass one), and the server
        records a push once per job_id: a push whose answer was lost is sent again once
        by itself. To be able to retry one yourself, pass a `job_id` of your own and
        send the push again with the same one."""
        return await self._client._run(
            _core.session_push(
                self,
                to=to,
                target=target,
                reason=reason,
                from_agent=from_agent,
                from_channel=from_channel,
                force=force,
                job_id=job_id,
            )
        )

    async def handoffs(self) -> list[Handoff]:
        """The session's handoff history, oldest first."""
        return await self._client._run(_core.session_handoffs(self))

    async def brief(self) -> Brief:
        """The handoff brief: the escalation reason, the customer's problem in their words,
        what was promised or done, key facts and the path so far; every item cites a turn."""
        return await self._client._run(_core.session_brief(self))

    async def refresh(self) -> SessionInfo:
        return await self._client._run(_core.session_refresh(self))


class EventStream:
    """`async for event in client.events(...)`; `cursor` is where it would resume."""

    def __init__(self, client: MossClient, follower: _core.EventFollower) -> None:
        self._client = client
        self._follower = follower

    @property
    def cursor(self) -> _core.After:
        return self._follower.cursor

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while (event := self._follower.take()) is None:
            try:
                page = await self._client._run(self._follower.page())
            except MossError as exc:
                delay = self._follower.retry_delay(exc)
                logger.warning("event stream: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._follower.received(page)
        return event


__all__ = ["EventStream", "MossClient", "Session"]
