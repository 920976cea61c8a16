"""The SDK's return path against real server processes: the event stream (async and sync,
resuming after a cut connection and after a server restart), handoffs and forced pushes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from moss_client import (
    AuthenticationError,
    ConflictError,
    DocumentInfo,
    Event,
    Handoff,
    MossClient,
    MossClientSync,
    ValidationError,
)
from sessions_app.actors import Actor
from sessions_app.selectors import session_get
from sessions_app.services.handoffs import session_claim, session_hand_back, session_push
from sessions_app.services.turns import DocInput, turns_upsert
from tests.servers import free_port, server_process

Credentials = tuple[str, str, str]
VECTOR = [0.05] * 384  # client-side embeddings keep these tests off the model


def doc(doc_id: str, text: str = "hello", role: str = "customer") -> DocumentInfo:
    return DocumentInfo(id=doc_id, text=text, metadata={"role": role}, embedding=VECTOR)


@pytest.fixture
def project(make_project: Callable[..., Any]) -> tuple[Any, str]:
    return make_project("Acme")


@pytest.fixture
def credentials(live_server_url: str, project: tuple[Any, str]) -> Credentials:
    return project[0].public_id, project[1], live_server_url


@pytest.fixture
async def client(credentials: Credentials) -> AsyncIterator[MossClient]:
    project_id, key, url = credentials
    async with MossClient(project_id, key, base_url=url, agent="sms-bot") as moss:
        yield moss


async def test_the_async_stream_yields_typed_events_as_they_happen(client: MossClient) -> None:
    session = await client.session("conv-1")
    await session.add_docs([doc("t1", "I was charged twice")])
    stream = client.events(session="conv-1", wait=10)
    created, added = await anext(stream), await anext(stream)
    assert isinstance(created, Event)
    assert (created.type, created.cursor, created.session.name) == ("session.created", 1, "conv-1")
    assert (added.type, added.data["id"], added.data["text"]) == (
        "turn.added",
        "t1",
        "I was charged twice",
    )
    assert (added.actor.kind, added.actor.name) == ("bot", "sms-bot")
    assert added.id.startswith("evt_") and added.created_at.tzinfo is not None
    assert stream.cursor == 2

    async def escalate_soon() -> None:
        await asyncio.sleep(0.5)
        await session.push_index(to="humans", reason="wants a person")

    pushed = asyncio.create_task(escalate_soon())
    escalated = await asyncio.wait_for(anext(stream), 20)
    await pushed
    assert (escalated.type, escalated.cursor) == ("session.escalated", 3)
    assert (escalated.session.status, escalated.data["reason"]) == ("waiting", "wants a person")


async def test_after_now_and_latest_event_cursor_skip_the_past(client: MossClient) -> None:
    session = await client.session("conv-1")
    await session.add_docs([doc("t1")])
    assert await client.latest_event_cursor() == 2
    stream = client.events(after="now", types=["session.pushed"], wait=10)

    async def push_soon() -> None:
        await asyncio.sleep(0.5)
        await session.add_docs([doc("t2")])
        await session.push_index(target="chat-bot")

    task = asyncio.create_task(push_soon())
    event = await asyncio.wait_for(anext(stream), 20)
    await task
    assert (event.type, event.cursor, event.data["to"]) == (
        "session.pushed",
        4,
        {"kind": "bot", "target": "chat-bot"},
    )


class CuttableProxy:
    """A real TCP proxy in front of the server whose open connections can be cut."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_the_async_stream_resumes_from_its_cursor_after_the_connection_drops(
    credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    project_id, key, url = credentials
    upstream = int(url.rsplit(":", 1)[1])
    async with (
        CuttableProxy(upstream) as proxy,
        MossClient(project_id, key, base_url=f"http://127.0.0.1:{proxy.port}") as follower,
        MossClient(project_id, key, base_url=url, agent="sms-bot") as writer,
    ):
        session = await writer.session("conv-1")
        await session.add_docs([doc("t1")])
        stream = follower.events(session="conv-1", wait=20)
        seen = [await anext(stream), await anext(stream)]
        waiting = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.5)
        with caplog.at_level(logging.WARNING, logger="moss_client"):
            proxy.cut()  # the long-poll in flight loses its connection
            await asyncio.sleep(0.2)
            await session.add_docs([doc("t2")])
            await session.push_index(to="humans")
            seen += [await asyncio.wait_for(waiting, 30), await asyncio.wait_for(anext(stream), 30)]
    assert [e.cursor for e in seen] == [1, 2, 3, 4]
    assert [e.type for e in seen] == [
        "session.created",
        "turn.added",
        "turn.added",
        "session.escalated",
    ]
    assert any("retrying" in record.getMessage() for record in caplog.records)


def test_the_sync_stream_resumes_from_its_cursor_after_a_server_restart(
    project: tuple[Any, str], transactional_db: None, caplog: pytest.LogCaptureFixture
) -> None:
    acme, key = project
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    received: list[Event] = []

    def consume() -> None:
        with MossClientSync(acme.public_id, key, base_url=base_url) as follower:
            for event in follower.events(session="conv-r", wait=2):
                received.append(event)
                if len(received) == 6:
                    return

    consumer = threading.Thread(target=consume, daemon=True)
    with caplog.at_level(logging.WARNING, logger="moss_client"):
        with server_process(port=port):
            with MossClientSync(acme.public_id, key, base_url=base_url) as writer:
                session = writer.session("conv-r")
                session.add_docs([doc("t1")])
                session.push_index(target="voice-bot")
            consumer.start()
            wait_until(lambda: len(received) == 3)
        # The server is down; the stream keeps retrying while the log grows.
        stored = session_get(project=acme, name="conv-r")
        turns_upsert(
            session=stored,
            docs=[DocInput(id="t2", text="are you there?", metadata={}, embedding=VECTOR)],
            actor=Actor.system("sms-gateway"),
        )
        session_push(session=stored, actor=Actor.system("ops"), to_kind="humans")
        wait_until(lambda: any("retrying" in r.getMessage() for r in caplog.records))
        with server_process(port=port):
            with MossClientSync(acme.public_id, key, base_url=base_url) as writer:
                writer.session("conv-r").push_index(target="chat-bot")
            consumer.join(timeout=120)
    assert not consumer.is_alive()
    assert [e.cursor for e in received] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in received] == [
        "session.created",
        "turn.added",
        "session.pushed",
        "turn.added",
        "session.escalated",
        "session.pushed",
    ]
    assert len({e.id for e in received}) == 6


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stub_transport(replies: Iterator[httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: next(replies))


PAGE = {
    "events": [
        {
            "id": "evt_1",
            "cursor": 7,
            "type": "session.claimed",
            "created_at": "2026-11-25T14:03:11.520000+00:00",
            "session": {"name": "conv-1", "status": "held", "holder": "ana", "version": 1},
            "actor": {"kind": "user", "name": "ana"},
            "data": {"holder": "ana"},
        }
    ],
    "next_cursor": 9,
}


async def test_the_stream_retries_a_5xx_and_stops_on_a_4xx() -> None:
    # A 503 from a proxy is not reachable on demand from the real server: a stub plays it.
    replies = iter(
        [httpx.Response(503, text="Service Unavailable"), httpx.Response(200, json=PAGE)]
    )
    async with MossClient(
        "p", "k", base_url="http://moss.test", transport=stub_transport(replies)
    ) as stub:
        stream = stub.events(after=6)
        event = await anext(stream)
        assert (event.cursor, event.actor.name, stream.cursor) == (7, "ana", 9)
    denied = iter([httpx.Response(401, json={"error": "unauthorized", "message": "bad key"})])
    async with MossClient(
        "p", "k", base_url="http://moss.test", transport=stub_transport(denied)
    ) as stub:
        with pytest.raises(AuthenticationError):
            await anext(stub.events())


def test_bad_stream_arguments_raise_the_servers_422(credentials: Credentials) -> None:
    project_id, key, url = credentials
    with MossClientSync(project_id, key, base_url=url) as client:
        with pytest.raises(ValidationError, match=r"unknown event type 'turn\.exploded'"):
            next(client.events(types=["turn.exploded"]))
        with pytest.raises(ValidationError, match="wait must be between 0 and 30"):
            next(client.events(wait=45))
        with pytest.raises(ValueError, match="wait must be more than 0"):
            client.events(wait=0)


def test_handoffs_last_handoff_and_a_forced_push_through_the_sdk(
    credentials: Credentials, project: tuple[Any, str], make_user: Callable[..., Any]
) -> None:
    acme, _ = project
    ana = make_user("ana", acme)
    project_id, key, url = credentials
    with MossClientSync(project_id, key, base_url=url, agent="sms-bot") as client:
        session = client.session("conv-1")
        session.add_docs([doc("t1", "please reverse the fee")])
        session.push_index(
            to="humans", reason="fee dispute", from_agent="sms-bot", from_channel="sms"
        )
        session_claim(session=session_get(project=acme, name="conv-1"), user=ana)
        with pytest.raises(ConflictError, match="ana holds conv-1") as held:
            session.push_index(target="sms-bot")
        assert held.value.status == 409
        session_hand_back(
            session=session_get(project=acme, name="conv-1"),
            user=ana,
            bot="sms-bot",
            note="I've reversed the fee",
        )
        session.refresh()
        assert isinstance(session.last_handoff, Handoff)
        assert (session.last_handoff.reason, session.last_handoff.actor.name) == (
            "I've reversed the fee",
            "ana",
        )

        session.push_index(to="humans", reason="again")
        session_claim(session=session_get(project=acme, name="conv-1"), user=ana)
        forced = session.push_index(target="sms-bot", force=True)
        assert (forced.status, session.status, session.holder) == ("bot", "bot", "sms-bot")

        history = session.handoffs()
        assert [(h.version, h.to.kind, h.to.target) for h in history] == [
            (1, "humans", ""),
            (2, "bot", "sms-bot"),
            (3, "humans", ""),
            (4, "bot", "sms-bot"),
        ]
        assert (history[0].claimed_by, history[0].from_channel) == ("ana", "sms")
        assert history[0].claimed_at is not None
        assert history[1].actor.kind == "user"
        assert session.last_handoff is not None and session.last_handoff.version == 4

        take_over = next(client.events(types=["session.pushed"], wait=1))
        assert (take_over.session.version, take_over.actor.name) == (4, "sms-bot")
        assert (take_over.data["forced"], take_over.data["taken_over_from"]) == (True, "ana")


async def test_async_session_handoffs(client: MossClient) -> None:
    session = await client.session("conv-1")
    assert (await session.handoffs(), session.last_handoff) == ([], None)
    await session.push_index(to="humans", reason="wants a person")
    await session.push_index(target="chat-bot", reason="back to a bot")
    history = await session.handoffs()
    assert [(h.to.kind, h.reason) for h in history] == [
        ("humans", "wants a person"),
        ("bot", "back to a bot"),
    ]
    assert session.last_handoff is not None
    assert session.last_handoff.to.target == "chat-bot"
