"""A request the server refuses for now (429 over the key's rate, 503 with a dependency down)
says when to come back; both clients wait that long and send it again, within their
RetryPolicy, and otherwise raise a typed error that carries the wait."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import pytest
from django.test import override_settings

from moss_client import (
    DocumentInfo,
    MossClient,
    MossClientSync,
    MossConnectionError,
    NotFoundError,
    QueryOptions,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ValidationError,
    _core,
)
from moss_web.asgi_handler import PooledThreadsASGIHandler
from sessions_app.models import Handoff, Turn


def reply(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers, json={"error": "e", "message": "m"})


@pytest.mark.parametrize(
    ("response", "retries", "wait"),
    [
        (reply(429, "2"), 0, 2.0),
        (reply(503, "5"), 2, 5.0),
        (reply(429, "2"), 3, None),  # the policy's attempts are used up
        (reply(429, "31"), 0, None),  # longer than the policy waits
        (reply(429), 0, None),  # no Retry-After: the server did not say when
        (reply(429, "Wed, 21 Oct 2026 07:28:00 GMT"), 0, None),
        (reply(503, "inf"), 0, None),  # a wait that never ends is no wait to honour
        (reply(503, "1e400"), 0, None),
        (reply(500, "1"), 0, None),  # a bug, not a refusal: it may have written
        (reply(422, "1"), 0, None),
    ],
)
def test_only_a_refusal_that_says_when_is_retried(response, retries, wait) -> None:
    assert _core.retry_wait(response, retries=retries, policy=RetryPolicy()) == wait


def test_the_typed_errors_carry_the_servers_wait() -> None:
    with pytest.raises(RateLimitedError) as throttled:
        _core.response_decode(reply(429, "7"))
    assert throttled.value.retry_after == 7.0
    with pytest.raises(ServerError) as unavailable:
        _core.response_decode(reply(503, "5"))
    assert unavailable.value.retry_after == 5.0


@pytest.fixture
def sync_client(wsgi_app: Any, make_project: Any):
    """The blocking client speaking HTTP to the real app in-process, so the test sets the
    server's rate."""
    project, key = make_project("Acme")

    def make(**kwargs: Any) -> MossClientSync:
        transport = httpx.WSGITransport(app=wsgi_app)
        return MossClientSync(
            project.public_id, key, base_url="http://testserver", transport=transport, **kwargs
        )

    return make


@override_settings(MOSS_API_KEY_RATE="2/s")
def test_a_throttled_call_waits_and_goes_through(sync_client: Any) -> None:
    client = sync_client()
    session = client.session("conv-1")
    session.refresh()  # the key's second request in this second
    started = time.monotonic()
    added = session.add_docs([DocumentInfo(id="t1", text="sent after the wait")])
    assert added.added == 1
    assert time.monotonic() - started >= 0.2  # it waited for the window to open
    assert Turn.objects.filter(doc_id="t1").count() == 1


@override_settings(MOSS_API_KEY_RATE="2/s")
def test_without_retries_the_throttled_call_raises_with_the_wait_and_writes_nothing(
    sync_client: Any,
) -> None:
    client = sync_client(retry=RetryPolicy(attempts=0))
    session = client.session("conv-1")
    session.refresh()
    with pytest.raises(RateLimitedError) as refused:
        session.add_docs([DocumentInfo(id="t1", text="refused")])
    assert refused.value.status == 429
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 1
    assert not Turn.objects.filter(doc_id="t1").exists()


@override_settings(MOSS_API_KEY_RATE="1/min")
def test_a_wait_beyond_the_policy_is_not_slept_through(sync_client: Any) -> None:
    client = sync_client(retry=RetryPolicy(max_wait=5))
    client.session("conv-1")
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        client.session("conv-1")
    assert time.monotonic() - started < 5


@override_settings(MOSS_API_KEY_RATE="2/s")
def test_the_async_client_waits_too(transactional_db: None, make_project: Any) -> None:
    project, key = make_project("Acme")

    async def calls() -> int:
        transport = httpx.ASGITransport(app=PooledThreadsASGIHandler())
        async with MossClient(
            project.public_id, key, base_url="http://testserver", transport=transport
        ) as client:
            session = await client.session("conv-1")
            await session.refresh()
            added = await session.add_docs([DocumentInfo(id="t1", text="after the wait")])
        return added.added

    assert asyncio.run(calls()) == 1


def test_the_event_stream_honours_the_servers_wait_up_to_a_minute() -> None:
    """A throttle's Retry-After: 45 is waited out (reconnecting at 15 s only met the
    limit again); a proxy's 3600 would leave a bot deaf for an hour; "inf" hung the
    async stream for good."""
    follower = _core.EventFollower(after=None, types=None, session=None, wait=5)
    for asked in (3600.0, None):
        error = ServerError("down", status=503, code="unavailable", retry_after=asked)
        assert 0 < follower.retry_delay(error) <= _core.STREAM_RETRY_AFTER_MAX == 60.0
    for asked in (2.0, 45.0):
        busy = RateLimitedError("slow down", status=429, code="throttled", retry_after=asked)
        assert follower.retry_delay(busy) >= asked


class LostDeleteAnswer(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The app behind a proxy that turns the first DELETE's answer into a 503 after the
    server has committed it (README "Outages": a commit lost mid-way)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deletes: list[int] = []

    def _answer(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method != "DELETE":
            return response
        self.deletes.append(response.status_code)
        return reply(503, "0") if len(self.deletes) == 1 else response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, self.inner.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        return self._answer(request, response)


def test_a_delete_sent_again_after_a_503_that_committed_is_done(
    wsgi_app: Any, make_project: Any
) -> None:
    project, key = make_project("Acme")
    transport = LostDeleteAnswer(httpx.WSGITransport(app=wsgi_app))
    client = MossClientSync(
        project.public_id, key, base_url="http://testserver", transport=transport
    )
    client.session("conv-1")
    client.delete_session("conv-1")  # no NotFoundError: what was asked is done
    assert transport.deletes == [204, 404]
    with pytest.raises(NotFoundError):  # a 404 the first time is still an error
        client.delete_session("conv-1")


def test_the_async_client_finishes_a_retried_delete_too(
    transactional_db: None, make_project: Any
) -> None:
    project, key = make_project("Acme")
    transport = LostDeleteAnswer(httpx.ASGITransport(app=PooledThreadsASGIHandler()))

    async def delete() -> None:
        async with MossClient(
            project.public_id, key, base_url="http://testserver", transport=transport
        ) as client:
            await client.session("conv-1")
            await client.delete_session("conv-1")

    asyncio.run(delete())
    assert transport.deletes == [204, 404]


def test_a_vector_that_json_cannot_carry_is_refused_before_anything_is_sent(
    sync_client: Any,
) -> None:
    session = sync_client().session("conv-1")
    vector = [0.1] * 384
    with pytest.raises(ValidationError, match="embedding: must hold finite numbers"):
        session.query("refund", QueryOptions(embedding=[math.nan, *vector[1:]]))
    docs = [
        DocumentInfo(id="t1", text="fine"),
        DocumentInfo(id="t2", text="bad", embedding=[math.inf, *vector[1:]]),
    ]
    with pytest.raises(ValidationError, match=r"docs\['t2'\].embedding"):
        session.add_docs(docs)
    assert not Turn.objects.exists()


class FailingReads(httpx.BaseTransport):
    """The app behind a network that loses every GET after a push."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.pushed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.pushed and request.method == "GET":
            raise httpx.ConnectError("the network went away", request=request)
        response = self.inner.handle_request(request)
        self.pushed = self.pushed or request.url.path.endswith("/push")
        return response


def test_a_push_whose_re_read_fails_is_still_reported_done(
    wsgi_app: Any, make_project: Any
) -> None:
    """Failing it would have the caller push again: a second handoff."""
    project, key = make_project("Acme")
    transport = FailingReads(httpx.WSGITransport(app=wsgi_app))
    client = MossClientSync(
        project.public_id, key, base_url="http://testserver", transport=transport
    )
    session = client.session("conv-1")
    result = session.push_index(to="humans", reason="refund")
    assert (result.status, result.version) == ("waiting", 1)
    assert (session.status, session.version) == ("waiting", 1)
    assert Handoff.objects.count() == 1
    with pytest.raises(MossConnectionError):  # other calls still say the network failed
        session.refresh()


class LostPushAnswers(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The app behind a network that loses the answer to the first push, after the
    server has saved it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pushes = 0

    def _lose(self, request: httpx.Request) -> bool:
        if not request.url.path.endswith("/push"):
            return False
        self.pushes += 1
        return self.pushes == 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self._lose(request):
            raise httpx.ReadError("the connection dropped before the answer", request=request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self._lose(request):
            raise httpx.ReadError("the connection dropped before the answer", request=request)
        return response


def test_a_push_whose_answer_is_lost_is_sent_again_and_recorded_once(
    wsgi_app: Any, make_project: Any
) -> None:
    project, key = make_project("Acme")
    transport = LostPushAnswers(httpx.WSGITransport(app=wsgi_app))
    client = MossClientSync(
        project.public_id, key, base_url="http://testserver", transport=transport
    )
    session = client.session("conv-1")
    result = session.push_index(to="humans", reason="refund")
    assert transport.pushes == 2
    assert (result.status, result.version) == ("waiting", 1)
    [handoff] = Handoff.objects.all()
    assert str(handoff.job_id) == result.job_id
    # A push of one's own, sent again later with its job_id, is recorded once too.
    again = session.push_index(to="humans", reason="refund", job_id=result.job_id)
    assert (again.job_id, again.version) == (result.job_id, 1)
    assert Handoff.objects.count() == 1


def test_the_async_client_sends_a_lost_push_again_too(
    transactional_db: None, make_project: Any
) -> None:
    project, key = make_project("Acme")
    transport = LostPushAnswers(httpx.ASGITransport(app=PooledThreadsASGIHandler()))

    async def push() -> str:
        async with MossClient(
            project.public_id, key, base_url="http://testserver", transport=transport
        ) as client:
            session = await client.session("conv-1")
            return (await session.push_index(to="humans", reason="refund")).job_id

    job_id = asyncio.run(push())
    assert transport.pushes == 2
    assert [str(h.job_id) for h in Handoff.objects.all()] == [job_id]
