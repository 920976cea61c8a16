"""The SDK splits a large add_docs (and delete_docs) into requests within the server's limits,
transparently, for both clients: the splitting lives in the shared sans-IO core."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from moss_client import (
    CallLimits,
    DocumentInfo,
    MossClient,
    MossClientSync,
    TooLargeError,
    _core,
)
from moss_client.errors import error_for_status
from sessions_app.models import AuditEvent, Turn


def docs(count: int, *, chars: int = 10, embedded: bool = False) -> list[DocumentInfo]:
    return [
        DocumentInfo(
            id=f"d{n}",
            text=f"{n:05d}" + "x" * (chars - 5),
            embedding=unit_vector(n) if embedded else None,
        )
        for n in range(count)
    ]


def unit_vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(384)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def add_requests() -> int:
    """Each add request that wrote something is one audit event."""
    return AuditEvent.objects.filter(kind="turns.added").count()


# --- the core alone ------------------------------------------------------------


def test_batches_keep_order_and_stay_within_both_limits() -> None:
    limits = CallLimits(max_docs=3, max_text_chars=25)
    batches = _core.docs_batches(docs(8), limits=limits)
    assert [[d.id for d in batch] for batch in batches] == [
        ["d0", "d1"],
        ["d2", "d3"],
        ["d4", "d5"],
        ["d6", "d7"],
    ]
    by_count = _core.docs_batches(docs(7, chars=1 + 5), limits=limits)
    assert [len(batch) for batch in by_count] == [3, 3, 1]


def test_a_doc_over_the_text_limit_on_its_own_goes_alone() -> None:
    items = [*docs(2), DocumentInfo(id="big", text="y" * 100), *docs(1)]
    batches = _core.docs_batches(items, limits=CallLimits(max_docs=10, max_text_chars=50))
    assert [[d.id for d in batch] for batch in batches] == [["d0", "d1"], ["big"], ["d0"]]


def test_no_docs_is_still_one_request_so_the_server_can_say_why() -> None:
    assert _core.docs_batches([], limits=CallLimits()) == [[]]


class Session(_core.SessionBase):
    pass


def session_info() -> Any:
    now = datetime.now(UTC)
    return _core.SessionInfo(
        name="s1",
        doc_count=0,
        status="bot",
        holder=None,
        version=0,
        model_id="m",
        metadata={},
        last_seq=0,
        created_at=now,
        updated_at=now,
    )


def test_a_batch_the_server_finds_too_large_is_halved_and_sent_again() -> None:
    session = Session(session_info())
    operation = _core.docs_add(session, docs=docs(4), channel="", limits=CallLimits())
    sent: list[list[str]] = []
    step = _core.advance(operation, None)
    stored = 0
    while isinstance(step, _core.Request):
        ids = [doc["id"] for doc in step.json["docs"]]
        sent.append(ids)
        if len(ids) > 1:  # this server takes one doc per request
            step = _core._resume(
                operation.throw, error_for_status(413, code="too_large", message="too much")
            )
        else:
            stored += 1
            reply = {"added": 1, "updated": 0, "unchanged": 0, "doc_count": stored}
            step = _core.advance(operation, reply)
    assert sent == [
        ["d0", "d1", "d2", "d3"],
        ["d0", "d1"],
        ["d0"],
        ["d1"],
        ["d2", "d3"],
        ["d2"],
        ["d3"],
    ]
    assert step.value.added == 4 and session.doc_count == 4


# --- both clients against the real app ------------------------------------------


@pytest.fixture
def sync_client(wsgi_app: Any, make_project: Any):
    """The blocking client speaking HTTP to the real app, in-process (so the test can set the
    server's limits)."""

    def make(**kwargs: Any) -> MossClientSync:
        project, key = make_project("Acme")
        transport = httpx.WSGITransport(app=wsgi_app)
        return MossClientSync(
            project.public_id, key, base_url="http://testserver", transport=transport, **kwargs
        )

    return make


def test_the_sync_client_splits_by_its_limits(sync_client: Any) -> None:
    client = sync_client(call_limits=CallLimits(max_docs=2, max_text_chars=1_000))
    session = client.session("conv-1")
    result = session.add_docs(docs(5))
    assert (result.added, result.doc_count, session.doc_count) == (5, 5, 5)
    assert add_requests() == 3
    assert [d.id for d in session.get_docs()] == [f"d{n}" for n in range(5)]
    assert session.delete_docs([f"d{n}" for n in range(5)]).deleted == 5
    assert AuditEvent.objects.filter(kind="turns.deleted").count() == 3


def test_against_a_server_with_lower_limits_the_sync_client_still_stores_everything(
    sync_client: Any, settings: Any
) -> None:
    settings.MOSS_MAX_CALL_TEXT_CHARS = 25
    session = sync_client().session("conv-1")
    result = session.add_docs(docs(5))
    assert (result.added, result.updated, result.unchanged, result.doc_count) == (5, 0, 0, 5)
    assert list(Turn.objects.order_by("seq").values_list("doc_id", flat=True)) == [
        f"d{n}" for n in range(5)
    ]
    # Halving 5 docs of 10 characters down to calls of at most 25: 2 + 1 + 2.
    assert add_requests() == 3
    retried = session.add_docs(docs(5))
    assert (retried.added, retried.unchanged) == (0, 5)


def test_against_a_server_that_takes_fewer_docs_a_call_the_client_still_stores_everything(
    sync_client: Any, settings: Any
) -> None:
    settings.MOSS_MAX_DOCS_PER_CALL = 2
    session = sync_client().session("conv-1")
    result = session.add_docs(docs(5, embedded=True))
    assert (result.added, result.doc_count) == (5, 5)
    assert list(Turn.objects.order_by("seq").values_list("doc_id", flat=True)) == [
        f"d{n}" for n in range(5)
    ]
    assert add_requests() == 3  # 5 halved to 2 + 3, and the 3 to 1 + 2


def test_a_single_doc_over_the_servers_limit_is_a_typed_error(
    sync_client: Any, settings: Any
) -> None:
    settings.MOSS_MAX_CALL_TEXT_CHARS = 25
    session = sync_client().session("conv-1")
    with pytest.raises(TooLargeError, match="MOSS_MAX_CALL_TEXT_CHARS=25") as raised:
        session.add_docs([DocumentInfo(id="big", text="z" * 26)])
    assert (raised.value.status, raised.value.code) == (413, "too_large")
    assert not Turn.objects.exists()


@pytest.fixture
def live_credentials(live_server_url: str, make_project: Any) -> tuple[str, str, str]:
    project, key = make_project("Acme")
    return project.public_id, key, live_server_url


async def test_the_async_client_splits_a_call_over_the_default_limits(
    live_credentials: tuple[str, str, str],
) -> None:
    project_id, key, url = live_credentials
    async with MossClient(project_id, key, base_url=url) as client:
        session = await client.session("conv-big")
        # 13 texts of 16,000 characters (with their embeddings, so no model time) are
        # 208,000 characters: over the 200,000 a call may carry.
        long_turns = docs(13, chars=16_000, embedded=True)
        result = await session.add_docs(long_turns)
        assert (result.added, session.doc_count) == (13, 13)
        # 501 docs: one more than a call may carry.
        many = [DocumentInfo(id=f"m{n}", text="hi", embedding=unit_vector(n)) for n in range(501)]
        result = await session.add_docs(many)
        assert (result.added, result.doc_count) == (501, 514)
    assert await sync_to_async(add_requests)() == 4
