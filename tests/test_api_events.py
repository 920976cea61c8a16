"""The long-poll event stream, over real HTTP against the real server and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.db import connection

from sessions_app.notify_listener import APPLICATION_NAME
from sessions_app.services.event_log import EVENT_TYPES


@dataclass
class Bot:
    """One project's bot speaking HTTP to the real server."""

    url: str
    headers: dict[str, str]

    def client(self, timeout: float = 60) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.url}/api/v1",
            headers=self.headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=200),
        )

    def sync(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=self.headers, timeout=60)


@pytest.fixture
def make_bot(live_server_url: str, make_project: Callable[..., Any]) -> Callable[[str], Bot]:
    def make(name: str = "Acme") -> Bot:
        project, key = make_project(name)
        headers = {"X-Project-Id": project.public_id, "X-Project-Key": key, "X-Agent": "sms-bot"}
        return Bot(live_server_url, headers)

    return make


@pytest.fixture
def bot(make_bot: Callable[[str], Bot]) -> Bot:
    return make_bot("Acme")


def turn(doc_id: str, text: str = "hello", role: str = "customer") -> dict[str, Any]:
    # A client-side embedding keeps these tests off the model.
    return {"id": doc_id, "text": text, "metadata": {"role": role}, "embedding": [0.05] * 384}


def write(bot: Bot, *calls: tuple[str, dict[str, Any]]) -> None:
    with bot.sync() as client:
        for path, body in calls:
            assert client.post(path, json=body).status_code in (200, 201), path


def read_all(bot: Bot, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = 0
    with bot.sync() as client:
        while True:
            page = client.get("/events", params={"after": cursor, "limit": 500, **params}).json()
            events += page["events"]
            if page["next_cursor"] == cursor:
                return events
            cursor = page["next_cursor"]


def test_a_stream_with_events_answers_at_once_oldest_first(bot: Bot) -> None:
    write(
        bot,
        ("/sessions", {"name": "conv-1"}),
        ("/sessions/conv-1/docs", {"docs": [turn("t1", "Charged twice")]}),
        ("/sessions/conv-1/push", {"to": "humans", "reason": "refund"}),
    )
    with bot.sync() as client:
        started = time.perf_counter()
        page = client.get("/events", params={"wait": 30}).json()
        assert time.perf_counter() - started < 10  # answered, not held for 30 s
    assert [e["type"] for e in page["events"]] == [
        "session.created",
        "turn.added",
        "session.escalated",
    ]
    assert [e["cursor"] for e in page["events"]] == [1, 2, 3]
    assert page["next_cursor"] == 3
    added = page["events"][1]
    assert added["id"].startswith("evt_")
    assert added["session"] == {
        "name": "conv-1",
        "status": "bot",
        "holder": "sms-bot",
        "version": 0,
    }
    assert added["actor"] == {"kind": "bot", "name": "sms-bot"}
    assert (added["data"]["id"], added["data"]["seq"], added["data"]["text"]) == (
        "t1",
        1,
        "Charged twice",
    )
    assert page["events"][2]["session"]["status"] == "waiting"


def test_a_waiting_long_poll_wakes_within_200_ms_of_a_push(make_bot: Callable[[str], Bot]) -> None:
    bot = make_bot("Acme")
    write(bot, ("/sessions", {"name": "conv-1"}))

    async def scenario() -> tuple[float, float, dict[str, Any]]:
        async with bot.client() as waiter, bot.client() as pusher:
            started = time.perf_counter()
            poll = asyncio.create_task(waiter.get("/events", params={"after": 1, "wait": 20}))
            await asyncio.sleep(1.0)  # the poll is waiting on the server by now
            assert not poll.done()
            pushed = await pusher.post("/sessions/conv-1/push", json={"to": "humans"})
            acknowledged = time.perf_counter()  # committed before the reply was sent
            assert pushed.status_code == 200
            reply = await poll
            woken = time.perf_counter()
            return woken - started, woken - acknowledged, reply.json()

    waited, after_push, page = asyncio.run(scenario())
    assert [e["type"] for e in page["events"]] == ["session.escalated"]
    assert waited >= 1.0  # it really was waiting, not answered at once
    assert after_push < 0.2, f"woke {after_push * 1000:.0f} ms after the push"


def test_nothing_new_answers_empty_at_the_deadline_with_the_same_cursor(bot: Bot) -> None:
    write(bot, ("/sessions", {"name": "conv-1"}))
    with bot.sync() as client:
        started = time.perf_counter()
        page = client.get("/events", params={"after": 1, "wait": 1.5}).json()
        assert time.perf_counter() - started >= 1.5
        assert page == {"events": [], "next_cursor": 1}
        # wait=0 (the default) is a plain read.
        assert client.get("/events", params={"after": 1}).json() == page


def test_after_now_follows_only_new_events_and_no_after_starts_at_the_oldest(bot: Bot) -> None:
    write(bot, ("/sessions", {"name": "conv-1"}), ("/sessions", {"name": "conv-2"}))
    with bot.sync() as client:
        now = client.get("/events", params={"after": "now"}).json()
        assert now == {"events": [], "next_cursor": 2}
        assert [e["cursor"] for e in client.get("/events").json()["events"]] == [1, 2]
        write(bot, ("/sessions/conv-2/push", {}))
        later = client.get("/events", params={"after": now["next_cursor"]}).json()
        assert [e["type"] for e in later["events"]] == ["session.pushed"]


def test_a_page_ends_at_its_limit_and_next_cursor_continues(bot: Bot) -> None:
    write(bot, *[("/sessions", {"name": f"conv-{n}"}) for n in range(5)])
    with bot.sync() as client:
        first = client.get("/events", params={"limit": 2}).json()
        assert ([e["cursor"] for e in first["events"]], first["next_cursor"]) == ([1, 2], 2)
        rest = client.get("/events", params={"after": 2, "limit": 10}).json()
        assert ([e["cursor"] for e in rest["events"]], rest["next_cursor"]) == ([3, 4, 5], 5)


def test_events_of_each_session_arrive_in_order(bot: Bot) -> None:
    async def writer(name: str) -> None:
        async with bot.client() as client:
            await client.post("/sessions", json={"name": name})
            for n in range(8):
                docs = {"docs": [turn(f"{name}-{n}", f"turn {n}")]}
                assert (await client.post(f"/sessions/{name}/docs", json=docs)).status_code == 200
                if n % 3 == 2:
                    await client.post(f"/sessions/{name}/push", json={"target": f"bot-{n}"})

    async def writers() -> None:
        await asyncio.gather(*(writer(f"conv-{w}") for w in range(3)))

    asyncio.run(writers())
    events = read_all(bot)
    assert [e["cursor"] for e in events] == list(range(1, len(events) + 1))
    for name in ("conv-0", "conv-1", "conv-2"):
        mine = [e for e in events if e["session"]["name"] == name]
        assert mine[0]["type"] == "session.created"
        turns = [e["data"]["id"] for e in mine if e["type"] == "turn.added"]
        assert turns == [f"{name}-{n}" for n in range(8)]
        assert [e["data"]["seq"] for e in mine if e["type"] == "turn.added"] == list(range(1, 9))
        versions = [e["session"]["version"] for e in mine]
        assert versions == sorted(versions)
        assert [e["data"]["to"]["target"] for e in mine if e["type"] == "session.pushed"] == [
            "bot-2",
            "bot-5",
        ]


def test_another_projects_events_never_reach_the_stream(make_bot: Callable[[str], Bot]) -> None:
    acme, globex = make_bot("Acme"), make_bot("Globex")
    write(acme, ("/sessions", {"name": "acme-1"}))

    async def scenario() -> dict[str, Any]:
        async with acme.client() as watcher, globex.client() as stranger:
            poll = asyncio.create_task(watcher.get("/events", params={"after": 1, "wait": 2}))
            await asyncio.sleep(0.5)
            await stranger.post("/sessions", json={"name": "globex-1"})
            await stranger.post("/sessions/globex-1/docs", json={"docs": [turn("g1", "secret")]})
            await stranger.post("/sessions/globex-1/push", json={"to": "humans"})
            return (await poll).json()

    assert asyncio.run(scenario()) == {"events": [], "next_cursor": 1}
    assert [e["session"]["name"] for e in read_all(acme)] == ["acme-1"]
    assert {e["session"]["name"] for e in read_all(globex)} == {"globex-1"}
    # Each project counts its own cursors.
    assert [e["cursor"] for e in read_all(globex)] == [1, 2, 3]
    with acme.sync() as client:
        reply = client.get("/events", params={"session": "globex-1"}).json()
    assert reply["events"] == []


def test_type_and_session_filters_and_the_cursor_moves_past_what_they_skip(bot: Bot) -> None:
    write(
        bot,
        ("/sessions", {"name": "conv-1"}),
        ("/sessions", {"name": "conv-2"}),
        ("/sessions/conv-1/docs", {"docs": [turn("a")]}),
        ("/sessions/conv-2/docs", {"docs": [turn("b")]}),
        ("/sessions/conv-2/push", {"to": "humans"}),
    )
    with bot.sync() as client:
        turns = client.get("/events", params={"types": "turn.added"}).json()
        assert [e["data"]["id"] for e in turns["events"]] == ["a", "b"]
        assert turns["next_cursor"] == 5  # the head: nothing after it matched
        two = client.get("/events", params={"types": "turn.added, session.escalated"}).json()
        assert [e["type"] for e in two["events"]] == [
            "turn.added",
            "turn.added",
            "session.escalated",
        ]
        conv_2 = client.get("/events", params={"session": "conv-2"}).json()
        assert [e["type"] for e in conv_2["events"]] == [
            "session.created",
            "turn.added",
            "session.escalated",
        ]
        both = client.get("/events", params={"session": "conv-1", "types": "turn.added"}).json()
        assert [e["data"]["id"] for e in both["events"]] == ["a"]
        none = client.get("/events", params={"types": "session.claimed"}).json()
        assert none == {"events": [], "next_cursor": 5}


def test_a_filtered_waiter_sleeps_through_events_it_did_not_ask_for(bot: Bot) -> None:
    write(bot, ("/sessions", {"name": "conv-1"}))

    async def scenario() -> dict[str, Any]:
        async with bot.client() as waiter, bot.client() as other:
            poll = asyncio.create_task(
                waiter.get(
                    "/events",
                    params={"after": 1, "wait": 20, "types": "session.escalated"},
                )
            )
            await asyncio.sleep(0.5)
            await other.post("/sessions/conv-1/docs", json={"docs": [turn("t1")]})
            await other.post("/sessions", json={"name": "conv-2"})
            await asyncio.sleep(0.5)
            assert not poll.done()
            await other.post("/sessions/conv-1/push", json={"to": "humans"})
            return (await poll).json()

    page = asyncio.run(scenario())
    assert [(e["type"], e["cursor"]) for e in page["events"]] == [("session.escalated", 4)]
    assert page["next_cursor"] == 4


def test_fifty_waiting_clients_leave_the_api_free_and_all_wake(
    make_bot: Callable[[str], Bot],
) -> None:
    bot, other_project = make_bot("Acme"), make_bot("Globex")
    write(bot, ("/sessions", {"name": "conv-1"}))

    async def scenario() -> list[dict[str, Any]]:
        async with bot.client() as client, other_project.client() as other:
            polls = [
                asyncio.create_task(client.get("/events", params={"after": 1, "wait": 25}))
                for _ in range(50)
            ]
            await asyncio.sleep(1.5)
            # While all fifty wait, other calls are answered (the pool has 10 connections).
            for n in range(10):
                assert (await client.get("/sessions/conv-1")).status_code == 200
                assert (await client.get("/events", params={"after": 1})).json()["events"] == []
                created = await other.post("/sessions", json={"name": f"globex-{n}"})
                assert created.status_code == 201
            assert not any(poll.done() for poll in polls)
            await client.post("/sessions/conv-1/push", json={"to": "humans"})
            return [(await poll).json() for poll in polls]

    pages = asyncio.run(scenario())
    assert len(pages) == 50
    assert all([e["type"] for e in page["events"]] == ["session.escalated"] for page in pages)


def listener_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            [APPLICATION_NAME],
        )
        return [row[0] for row in cursor.fetchall()]


def test_the_listener_reconnects_when_its_database_connection_is_killed(bot: Bot) -> None:
    write(bot, ("/sessions", {"name": "conv-1"}))
    with bot.sync() as client:
        client.get("/events", params={"after": 1, "wait": 0.2})  # starts the listener
    [killed] = listener_backends()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [killed])
    deadline = time.monotonic() + 30
    while not [pid for pid in listener_backends() if pid != killed]:
        assert time.monotonic() < deadline, "the listener did not reconnect"
        time.sleep(0.1)

    async def scenario() -> tuple[float, dict[str, Any]]:
        async with bot.client() as waiter, bot.client() as pusher:
            poll = asyncio.create_task(waiter.get("/events", params={"after": 1, "wait": 20}))
            await asyncio.sleep(1.0)
            await pusher.post("/sessions/conv-1/push", json={})
            acknowledged = time.perf_counter()
            reply = await poll
            return time.perf_counter() - acknowledged, reply.json()

    after_push, page = asyncio.run(scenario())
    assert [e["type"] for e in page["events"]] == ["session.pushed"]
    assert after_push < 0.2, "woken by the new LISTEN connection, not by the fallback poll"


BAD_QUERIES = [
    ({"after": "x"}, "after must be a cursor"),
    ({"after": "-1"}, "after must be a cursor"),
    ({"after": "1.5"}, "after must be a cursor"),
    ({"after": "7"}, "after=7 is past the latest event (1)"),
    ({"types": "turn.added,session.exploded"}, "unknown event type 'session.exploded'"),
    ({"wait": "31"}, "wait must be between 0 and 30 seconds"),
    ({"wait": "-1"}, "wait must be between 0 and 30 seconds"),
    ({"wait": "nan"}, "wait must be between 0 and 30 seconds"),
    ({"wait": "soon"}, "query.wait: Input should be a valid number"),
    ({"limit": "0"}, "limit must be between 1 and 500"),
    ({"limit": "501"}, "limit must be between 1 and 500"),
    ({"session": "no spaces"}, "invalid session name"),
]


@pytest.mark.parametrize(("params", "message"), BAD_QUERIES)
def test_bad_stream_queries_are_422_naming_the_problem(api, params, message) -> None:
    api.post("/sessions", {"name": "conv-1"})
    response = api.get("/events", **params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert message in body["message"]


def test_every_known_type_is_accepted_and_no_key_is_401(api) -> None:
    assert api.get("/events", types=",".join(EVENT_TYPES)).status_code == 200
    response = api.client.get("/api/v1/events", headers={"X-Project-Key": "nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
