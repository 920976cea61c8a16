"""The async client: `client = MossClient(id, key)`, `session = await client.session(...)`."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar

import httpx

from moss_client import _core
from moss_client.types import (
    AddDocsResult,
    CallLimits,
    DeleteDocsResult,
    DocumentInfo,
    HandoffTo,
    PushIndexResult,
    QueryOptions,
    SearchResult,
    SessionInfo,
    StoredDocument,
)

T = TypeVar("T")


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
    ) -> None:
        self.base_url = _core.api_base_url(base_url)
        # Larger add_docs / delete_docs calls are split into requests within these.
        self.call_limits = call_limits or CallLimits()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_core.headers(project_id=project_id, project_key=project_key, agent=agent),
            timeout=timeout,
            transport=transport,
        )

    async def _run(self, operation: _core.Operation[T]) -> T:
        step = _core.advance(operation, None)
        while isinstance(step, _core.Request):
            with _core.transport_errors():
                response = await self._http.request(
                    step.method, step.path, params=step.params, json=step.json
                )
            step = _core.advance_response(operation, response)
        return step.value

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

    async def get_docs(self, ids: Sequence[str] | None = None) -> list[StoredDocument]:
        return await self._client._run(_core.docs_get(self, ids=ids))

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
    ) -> PushIndexResult:
        """Record a handoff. `to="humans"` (or a team / user) puts it in the escalation queue."""
        return await self._client._run(
            _core.session_push(
                self,
                to=to,
                target=target,
                reason=reason,
                from_agent=from_agent,
                from_channel=from_channel,
            )
        )

    async def refresh(self) -> SessionInfo:
        return await self._client._run(_core.session_refresh(self))


__all__ = ["MossClient", "Session"]
