"""Python SDK for moss-web: open a session by name, add turns, query, hand off.

    from moss_client import DocumentInfo, MossClient, QueryOptions

    client = MossClient(PROJECT_ID, PROJECT_KEY, base_url="http://127.0.0.1:8000")
    session = await client.session(index_name="conv-123")
    await session.add_docs([DocumentInfo(id="turn-1", text="...")])
    await session.push_index(to="humans", reason="wants a refund")
    async for event in client.events(session="conv-123"):  # what happened next
        print(event.type, event.data)

`MossClientSync` (also `moss_client.sync.MossClient`) is the same without `await`.
`moss_client.webhooks.verify(secret, headers, body)` checks a webhook's signature.
The SDK only speaks HTTP (httpx); it imports nothing of the server.
"""

from moss_client.client import EventStream, MossClient, Session
from moss_client.errors import (
    AuthenticationError,
    ConflictError,
    MossConnectionError,
    MossError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TooLargeError,
    ValidationError,
    WebhookVerificationError,
)
from moss_client.sync import EventStream as EventStreamSync
from moss_client.sync import MossClient as MossClientSync
from moss_client.sync import Session as SessionSync
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
    PushIndexResult,
    QueryOptions,
    QueryResultDoc,
    RetryPolicy,
    SearchResult,
    SessionInfo,
    StoredDocument,
)

__all__ = [
    "Actor",
    "AddDocsResult",
    "AuthenticationError",
    "Brief",
    "BriefEscalation",
    "BriefFact",
    "BriefHandoff",
    "BriefPath",
    "BriefProblem",
    "BriefPromise",
    "BriefSegment",
    "CallLimits",
    "ConflictError",
    "DeleteDocsResult",
    "DocumentInfo",
    "Event",
    "EventPage",
    "EventSession",
    "EventStream",
    "EventStreamSync",
    "Handoff",
    "HandoffTarget",
    "MossClient",
    "MossClientSync",
    "MossConnectionError",
    "MossError",
    "NotFoundError",
    "PermissionDeniedError",
    "PushIndexResult",
    "QueryOptions",
    "QueryResultDoc",
    "RateLimitedError",
    "RetryPolicy",
    "SearchResult",
    "ServerError",
    "Session",
    "SessionInfo",
    "SessionSync",
    "StoredDocument",
    "TooLargeError",
    "ValidationError",
    "WebhookVerificationError",
]
