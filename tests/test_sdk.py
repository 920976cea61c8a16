"""The SDK against a real server process: every call, and errors as typed exceptions."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from moss_client import (
    AuthenticationError,
    ConflictError,
    DocumentInfo,
    MossClient,
    MossClientSync,
    MossConnectionError,
    MossError,
    NotFoundError,
    QueryOptions,
    ServerError,
    ValidationError,
)
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
NOTE_TURNS = [
    DocumentInfo(id="turn-1", text="Customer reported a duplicate $49.99 charge."),
    DocumentInfo(id="turn-2", text="Agent confirmed a refund in 3-5 business days."),
]

Credentials = tuple[str, str, str]


@pytest.fixture
def credentials(live_server_url: str, make_project: Callable[..., Any]) -> Credentials:
    project, key = make_project("Acme")
    return project.public_id, key, live_server_url


@pytest.fixture
def other_credentials(live_server_url: str, make_project: Callable[..., Any]) -> Credentials:
    project, key = make_project("Globex")
    return project.public_id, key, live_server_url


@pytest.fixture
async def client(credentials: Credentials) -> AsyncIterator[MossClient]:
    project_id, key, url = credentials
    async with MossClient(project_id, key, base_url=url, agent="voice-bot") as moss:
        yield moss


def unit_vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(384)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def test_the_note_example_opens_adds_hands_off_resumes_and_queries(
    credentials: Credentials,
) -> None:
    project_id, key, url = credentials
    async with MossClient(project_id, key, base_url=url) as agent_a:
        session = await agent_a.session(index_name="conv-123")
        assert (session.name, session.doc_count, session.created) == ("conv-123", 0, True)
        added = await session.add_docs(NOTE_TURNS)
        assert (added.added, added.updated, added.unchanged) == (2, 0, 0)
        assert session.doc_count == 2
        pushed = await session.push_index()
        assert pushed.job_id and pushed.index_name == "conv-123"
        assert (pushed.doc_count, pushed.status, pushed.version) == (2, "bot", 1)
        assert session.version == 1

    async with MossClient(project_id, key, base_url=url) as agent_b:
        resumed = await agent_b.session(index_name="conv-123")
        assert (resumed.doc_count, resumed.created, resumed.version) == (2, False, 1)
        assert resumed.model_id == "all-MiniLM-L6-v2"
        results = await resumed.query("status of the refund", QueryOptions(top_k=3))
        assert [doc.id for doc in results.docs] == ["turn-2", "turn-1"]
        assert results.docs[0].score > results.docs[1].score
        assert results.docs[0].text == NOTE_TURNS[1].text
        assert (results.query, results.index_name) == ("status of the refund", "conv-123")
        assert results.time_taken_ms > 0


async def test_add_docs_upserts_by_id_and_counts_added_updated_unchanged(
    client: MossClient,
) -> None:
    session = await client.session("conv-upsert", metadata={"customer_id": "cust-1"})
    await session.add_docs(NOTE_TURNS)
    retried = await session.add_docs(NOTE_TURNS)
    assert (retried.added, retried.updated, retried.unchanged, retried.doc_count) == (0, 0, 2, 2)
    changed = await session.add_docs(
        [
            DocumentInfo(id="turn-2", text="Agent issued the refund today.", metadata={"k": "v"}),
            DocumentInfo(id="turn-3", text="Customer thanked the agent."),
        ]
    )
    assert (changed.added, changed.updated, changed.unchanged) == (1, 1, 0)
    assert session.doc_count == 3
    [turn_2] = await session.get_docs(["turn-2"])
    assert (turn_2.text, turn_2.metadata, turn_2.seq) == (
        "Agent issued the refund today.",
        {"k": "v"},
        2,
    )


async def test_get_docs_follows_pages_and_keeps_the_order_asked(client: MossClient) -> None:
    session = await client.session("conv-long")
    # Client-side embeddings keep this fast; 520 turns span two server pages.
    for start in (0, 260):
        await session.add_docs(
            [
                DocumentInfo(id=f"t{i}", text=f"turn number {i}", embedding=unit_vector(i))
                for i in range(start, start + 260)
            ]
        )
    thread = await session.get_docs()
    assert [doc.seq for doc in thread] == list(range(1, 521))
    assert thread[0].id == "t0" and thread[-1].id == "t519"
    assert thread[0].model_id == "client"
    asked = [f"t{i}" for i in range(120, 0, -1)] + ["missing"]
    found = await session.get_docs(asked)
    assert [doc.id for doc in found] == asked[:-1]


async def test_delete_docs_refreshes_the_count(client: MossClient) -> None:
    session = await client.session("conv-delete")
    await session.add_docs(NOTE_TURNS)
    deleted = await session.delete_docs(["turn-1", "missing"])
    assert (deleted.deleted, deleted.doc_count, session.doc_count) == (1, 1, 1)
    assert [doc.id for doc in await session.get_docs()] == ["turn-2"]


async def test_query_options_filter_alpha_and_embedding(client: MossClient) -> None:
    session = await client.session("conv-query")
    await session.add_docs(
        [
            DocumentInfo(id="v1", text="Caller wants a refund", metadata={"channel": "voice"}),
            DocumentInfo(id="c1", text="Refund approved in chat", metadata={"channel": "chat"}),
            DocumentInfo(id="e1", text="Invoice INV-7781 attached", metadata={"channel": "email"}),
        ]
    )
    only_chat = await session.query("refund", QueryOptions(filter={"channel": {"$eq": "chat"}}))
    assert [doc.id for doc in only_chat.docs] == ["c1"]
    not_voice = await session.query(
        "refund", QueryOptions(filter={"$or": [{"channel": "chat"}, {"channel": "email"}]})
    )
    assert {doc.id for doc in not_voice.docs} == {"c1", "e1"}
    keyword = await session.query("INV-7781", QueryOptions(alpha=0.0))
    assert [doc.id for doc in keyword.docs] == ["e1"]
    by_vector = await session.query(
        "anything", QueryOptions(top_k=1, alpha=1.0, embedding=unit_vector(7))
    )
    assert len(by_vector.docs) == 1


async def test_push_index_to_humans_queues_the_session(client: MossClient) -> None:
    session = await client.session("conv-escalate")
    await session.add_docs(NOTE_TURNS)
    pushed = await session.push_index(
        to="humans",
        reason="customer asks for a manager",
        from_agent="voice-bot",
        from_channel="voice",
    )
    assert (pushed.status, session.status, session.holder) == ("waiting", "waiting", None)
    waiting = await client.list_sessions(status="waiting")
    assert [info.name for info in waiting] == ["conv-escalate"]
    back = await session.push_index(to="bot", target="chat-bot")
    assert (back.status, back.version, session.holder) == ("bot", 2, "chat-bot")
    with pytest.raises(ValidationError, match="no team named 'nobody'"):
        await session.push_index(to="team", target="nobody")


async def test_list_sessions_filters_and_query_customer_spans_its_sessions(
    client: MossClient,
) -> None:
    voice = await client.session("cust-9-voice", metadata={"customer_id": "cust-9"})
    email = await client.session("cust-9-email", metadata={"customer_id": "cust-9"})
    other = await client.session("other-1", metadata={"customer_id": "cust-10"})
    await voice.add_docs([DocumentInfo(id="a", text="Customer asked about a refund by phone.")])
    await email.add_docs([DocumentInfo(id="b", text="Refund receipt sent by email.")])
    await other.add_docs([DocumentInfo(id="c", text="A refund for someone else.")])

    assert {s.name for s in await client.list_sessions(prefix="cust-9")} == {
        "cust-9-voice",
        "cust-9-email",
    }
    mine = await client.list_sessions(customer_id="cust-9")
    assert {s.name for s in mine} == {"cust-9-voice", "cust-9-email"}
    assert mine[0].metadata == {"customer_id": "cust-9"}
    assert len(await client.list_sessions()) == 3

    results = await client.query_customer("cust-9", "refund", QueryOptions(top_k=5))
    assert {(doc.index_name, doc.id) for doc in results.docs} == {
        ("cust-9-voice", "a"),
        ("cust-9-email", "b"),
    }
    assert results.index_name is None


async def test_delete_session_and_other_projects_sessions_are_not_found(
    client: MossClient, other_credentials: Credentials
) -> None:
    await (await client.session("conv-gone")).add_docs(NOTE_TURNS)
    await client.delete_session("conv-gone")
    with pytest.raises(NotFoundError, match="session 'conv-gone' not found") as raised:
        await client.get_session("conv-gone")
    assert (raised.value.status, raised.value.code) == (404, "not_found")

    await client.session("conv-mine")
    async with MossClient(*other_credentials[:2], base_url=other_credentials[2]) as stranger:
        with pytest.raises(NotFoundError):
            await stranger.get_session("conv-mine")
        with pytest.raises(NotFoundError):
            await stranger.delete_session("conv-mine")
        assert await stranger.list_sessions() == []


async def test_server_errors_raise_typed_exceptions_with_the_server_message(
    client: MossClient, credentials: Credentials
) -> None:
    project_id, _, url = credentials
    async with MossClient(project_id, "wrong-key", base_url=url) as intruder:
        with pytest.raises(AuthenticationError, match="X-Project-Key") as raised:
            await intruder.session("conv-1")
        assert raised.value.status == 401

    with pytest.raises(ValidationError, match="invalid session name") as invalid:
        await client.session("no spaces allowed")
    assert (invalid.value.status, invalid.value.code) == (422, "invalid_input")

    session = await client.session("conv-errors")
    await session.add_docs(NOTE_TURNS)
    rejected_batches = {
        "text: must not be empty": [DocumentInfo(id="new", text=""), NOTE_TURNS[0]],
        "duplicate id 'x'": [DocumentInfo(id="x", text="a"), DocumentInfo(id="x", text="b")],
        "NUL": [DocumentInfo(id="n", text="a\x00b")],
        "embedding": [DocumentInfo(id="e", text="short vector", embedding=[0.1, 0.2])],
    }
    for message, batch in rejected_batches.items():
        with pytest.raises(ValidationError, match=message):
            await session.add_docs(batch)
    assert session.doc_count == 2
    assert [doc.id for doc in await session.get_docs()] == ["turn-1", "turn-2"]

    with pytest.raises(ValidationError, match="top_k: must be at least 1"):
        await session.query("refund", QueryOptions(top_k=0))
    with pytest.raises(ValidationError, match="unknown filter operator '\\$regex'"):
        await session.query("refund", QueryOptions(filter={"channel": {"$regex": "v.*"}}))
    with pytest.raises(ValidationError, match="unknown model_id 'gpt-9'"):
        await client.session("conv-errors", model_id="gpt-9")


async def test_network_failures_are_moss_errors_too() -> None:
    async with MossClient("p", "k", base_url=f"http://127.0.0.1:{free_port()}") as unreachable:
        with pytest.raises(MossConnectionError, match="cannot reach the server") as raised:
            await unreachable.session("conv-1")
    assert raised.value.status is None
    assert isinstance(raised.value, MossError)


async def test_statuses_the_api_rarely_sends_still_map_to_their_types() -> None:
    # 409 comes from console claims, 5xx from a broken proxy: neither is reachable
    # through API v1 on demand, so a stub transport plays the server here.
    replies = {
        "/api/v1/sessions": httpx.Response(
            409, json={"error": "conflict", "message": "ana has already claimed conv-1"}
        ),
        "/api/v1/sessions/conv-1": httpx.Response(502, text="Bad Gateway"),
    }
    transport = httpx.MockTransport(lambda request: replies[request.url.path])
    async with MossClient("p", "k", base_url="http://moss.test", transport=transport) as stub:
        with pytest.raises(ConflictError, match="ana has already claimed conv-1") as conflict:
            await stub.session("conv-1")
        assert (conflict.value.status, conflict.value.code) == (409, "conflict")
        with pytest.raises(ServerError, match="Bad Gateway") as broken:
            await stub.get_session("conv-1")
        assert broken.value.status == 502


def test_the_sync_client_has_the_same_surface(credentials: Credentials) -> None:
    project_id, key, url = credentials
    with MossClientSync(project_id, key, base_url=url) as client:
        session = client.session("conv-sync", metadata={"customer_id": "cust-5"})
        assert session.add_docs(NOTE_TURNS).added == 2
        assert session.doc_count == 2
        results = client.get_session("conv-sync").query(
            "status of the refund", QueryOptions(top_k=1)
        )
        assert [doc.id for doc in results.docs] == ["turn-2"]
        assert [doc.id for doc in session.get_docs()] == ["turn-1", "turn-2"]
        assert session.delete_docs(["turn-1"]).doc_count == 1
        pushed = session.push_index(to="humans", reason="billing question")
        assert (pushed.status, pushed.doc_count) == ("waiting", 1)
        assert session.refresh().status == "waiting"
        assert [s.name for s in client.list_sessions(customer_id="cust-5")] == ["conv-sync"]
        assert client.query_customer("cust-5", "refund").docs[0].id == "turn-2"
        client.delete_session("conv-sync")
        with pytest.raises(NotFoundError):
            client.get_session("conv-sync")


def test_moss_client_imports_no_django() -> None:
    check = (
        "import sys, moss_client, moss_client.sync; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True)
    for source in (ROOT / "moss_client").glob("*.py"):
        assert "django" not in source.read_text().lower(), source.name


async def test_private_notes_come_back_only_when_asked(
    client: MossClient, credentials: Credentials, make_user: Callable[..., Any]
) -> None:
    from asgiref.sync import sync_to_async

    from sessions_app.models import Project, Session
    from sessions_app.services.console import console_note

    def note() -> str:
        project = Project.objects.get(public_id=credentials[0])
        return console_note(
            session=Session.objects.get(project=project, name="conv-notes"),
            user=make_user("ana", project),
            text="The duplicate charge came from billing bug BILL-311",
        )

    session = await client.session("conv-notes")
    await session.add_docs(NOTE_TURNS)
    note_id = await sync_to_async(note)()

    assert [doc.id for doc in await session.get_docs()] == ["turn-1", "turn-2"]
    with_notes = await session.get_docs(include_internal=True)
    assert [(doc.id, doc.internal) for doc in with_notes][-1] == (note_id, True)
    assert await session.get_docs([note_id]) == []
    assert (await session.get_docs([note_id], include_internal=True))[0].internal
    hidden = await session.query("billing bug duplicate charge", QueryOptions(top_k=5))
    shown = await session.query(
        "billing bug duplicate charge", QueryOptions(top_k=5, include_internal=True)
    )
    assert note_id not in [doc.id for doc in hidden.docs]
    assert any(doc.id == note_id and doc.internal for doc in shown.docs)


@pytest.mark.parametrize("name", ["conv-1/brief", "conv-1/docs", ".", "..", "", "a" * 129])
def test_a_name_outside_the_rule_is_refused_before_it_becomes_a_path(name: str) -> None:
    """The server decodes %2F: "conv-1/brief" reached conv-1's brief (and crashed the
    SDK's reading of it); "." listed the sessions."""
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    transport = httpx.MockTransport(server)
    with MossClientSync("p", "k", base_url="http://moss.test", transport=transport) as client:
        for call in (client.get_session, client.delete_session):
            with pytest.raises(ValidationError, match="invalid session name") as refused:
                call(name)
            assert refused.value.code == "invalid_input"
    assert sent == []


def test_the_sdk_checks_names_by_the_servers_rule() -> None:
    from moss_client import _core
    from sessions_app.validation import SESSION_NAME_PATTERN

    assert _core.SESSION_NAME_RE.pattern == SESSION_NAME_PATTERN
