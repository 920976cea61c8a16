"""The console's websocket, driven through Channels' communicator with the in-memory layer."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from moss_web.asgi import application
from sessions_app.actors import Actor
from sessions_app.console import consumers
from sessions_app.models import Project
from sessions_app.services import console as console_service
from sessions_app.services.handoffs import session_claim, session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert

pytestmark = pytest.mark.django_db(transaction=True)

BOT = Actor.system("chat-bot")


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def connect(
    user: Any | None, *, origin: str = "http://testserver"
) -> tuple[bool, WebsocketCommunicator]:
    # What a browser on http://testserver sends: the page's origin and the host it connects to.
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if user is not None:
        headers.append((b"cookie", (await database_sync_to_async(_cookie)(user)).encode()))
    communicator = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    connected, _ = await communicator.connect()
    return connected, communicator


async def receive_until(communicator: WebsocketCommunicator, text: str, timeout: float = 10) -> str:
    """The first message containing `text`; earlier ones are skipped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await communicator.receive_from(timeout=max(deadline - loop.time(), 0.01))
        if text in message:
            return str(message)


def _turn(doc_id: str, text: str, role: str = "customer") -> DocInput:
    return DocInput(
        id=doc_id,
        text=text,
        metadata={"channel": "chat", "role": role, "author": "Dana", "device": "phone"},
    )


@database_sync_to_async
def escalate(project: Project, name: str = "conv-1") -> None:
    session, _ = session_open(project=project, name=name, actor=BOT)
    turns_upsert(
        session=session,
        docs=[_turn("t1", "I was charged twice."), _turn("t2", "Refund please.")],
        actor=BOT,
    )
    session_push(session=session, actor=BOT, to_kind="humans", reason="Refund not received")


@database_sync_to_async
def add_turn(project: Project, name: str, doc_id: str, text: str) -> None:
    session, _ = session_open(project=project, name=name, actor=BOT)
    turns_upsert(session=session, docs=[_turn(doc_id, text, role="bot")], actor=BOT)


@database_sync_to_async
def claim(project: Project, name: str, user: Any) -> None:
    session = project.sessions.get(name=name)
    session_claim(session=session, user=user)


@pytest.fixture
def people(
    make_project: Callable[..., tuple[Project, str]], make_user: Callable[..., Any]
) -> dict[str, Any]:
    acme, _ = make_project("Acme")
    globex, _ = make_project("Globex")
    return {
        "acme": acme,
        "globex": globex,
        "ana": make_user("ana", acme),
        "ben": make_user("ben", acme),
        "mallory": make_user("mallory", globex),
    }


async def test_an_anonymous_socket_is_refused() -> None:
    connected, _ = await connect(None)
    assert not connected


async def test_a_foreign_origin_is_refused(people: dict[str, Any]) -> None:
    connected, _ = await connect(people["ana"], origin="http://evil.example")
    assert not connected


async def test_an_escalation_appears_live_in_the_queue_of_its_project_only(
    people: dict[str, Any],
) -> None:
    _, ana = await connect(people["ana"])
    _, mallory = await connect(people["mallory"])
    await ana.send_to(text_data=json.dumps({"view": "queue"}))
    await mallory.send_to(text_data=json.dumps({"view": "queue"}))
    assert "No escalations waiting" in await ana.receive_from()
    assert "No escalations waiting" in await mallory.receive_from()

    await escalate(people["acme"])

    row = await receive_until(ana, 'data-session="conv-1"')
    assert "Refund not received" in row and "Refund please." in row
    assert await mallory.receive_nothing(timeout=0.5)
    await ana.disconnect()
    await mallory.disconnect()


async def test_a_claim_removes_the_row_for_others_and_says_who_took_it(
    people: dict[str, Any],
) -> None:
    await escalate(people["acme"])
    _, ben = await connect(people["ben"])
    await ben.send_to(text_data=json.dumps({"view": "queue"}))
    assert 'data-session="conv-1"' in await ben.receive_from()

    await claim(people["acme"], "conv-1", people["ana"])

    message = await receive_until(ben, "claimed")
    assert "ana claimed conv-1." in message
    assert 'data-session="conv-1"' not in message
    await ben.disconnect()


async def test_a_session_view_catches_up_then_gets_new_turns_once(
    people: dict[str, Any],
) -> None:
    acme = people["acme"]
    await escalate(acme)
    _, ana = await connect(people["ana"])
    # The page has turn 1 only: the answer is what it missed, in order.
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1"}
    await ana.send_to(text_data=json.dumps({**hello, "after_seq": "1", "version": "0"}))
    catch_up = await ana.receive_from()
    assert 'hx-swap-oob="beforeend:#thread"' in catch_up
    assert 'id="turn-1"' not in catch_up
    assert catch_up.index('id="turn-2"') < catch_up.index('id="handoff-1"')
    assert 'name="after_seq" value="2"' in catch_up

    await add_turn(acme, "conv-1", "t3", "A bot looked up the refund.")
    live = await receive_until(ana, 'id="turn-3"')
    assert 'id="turn-2"' not in live and "A bot looked up the refund." in live

    # A reconnecting page (or a sync after a reply) gets nothing twice.
    await ana.send_to(text_data=json.dumps({**hello, "after_seq": "1", "version": "0"}))
    again = await ana.receive_from()
    assert "beforeend:#thread" not in again
    await ana.disconnect()


async def test_a_session_of_another_project_is_never_watched(people: dict[str, Any]) -> None:
    acme = people["acme"]
    await escalate(acme)
    _, mallory = await connect(people["mallory"])
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1", "after_seq": 0}
    await mallory.send_to(text_data=json.dumps(hello))
    answer = await mallory.receive_from()
    assert "not available" in answer and "turn-" not in answer
    await add_turn(acme, "conv-1", "t3", "Private to Acme.")
    assert await mallory.receive_nothing(timeout=0.5)
    await mallory.disconnect()


async def test_garbage_messages_are_ignored(people: dict[str, Any]) -> None:
    _, ana = await connect(people["ana"])
    await ana.send_to(text_data="not json")
    await ana.send_to(text_data="[1, 2]")
    await ana.send_to(text_data=json.dumps({"view": "nothing"}))
    assert await ana.receive_nothing(timeout=0.3)
    await ana.disconnect()


@database_sync_to_async
def force_push(project: Project, name: str) -> None:
    session = project.sessions.get(name=name)
    session_push(session=session, actor=BOT, to_kind="bot", to_target="chat-bot", force=True)


async def test_a_forced_take_over_closes_the_holders_forms_live(people: dict[str, Any]) -> None:
    acme = people["acme"]
    await escalate(acme)
    await claim(acme, "conv-1", people["ana"])
    _, ana = await connect(people["ana"])
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1"}
    await ana.send_to(
        text_data=json.dumps({**hello, "after_seq": "2", "version": "1", "holds": "1"})
    )
    assert 'name="holds" value="1"' in await ana.receive_from()

    await force_push(acme, "conv-1")

    update = await receive_until(ana, "took this session over")
    assert "chat-bot took this session over" in update
    # The reply box and the hand-off forms are swapped for their closed versions.
    assert 'id="reply"' in update and "Claim this session to reply." in update
    assert 'id="session-actions-slot"' in update and "Hand back" not in update
    assert 'name="holds" value="0"' in update
    await ana.disconnect()


def _signed_in_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _sign_in_end(client: Client, user: Any, how: str) -> None:
    if how == "signed out":
        client.logout()
    elif how == "deactivated":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    else:  # a new password ends every sign-in made with the old one
        user.set_password("a new password 9f3k")
        user.save()


@pytest.mark.parametrize("how", ["signed out", "deactivated", "password changed"])
async def test_a_socket_closes_once_its_sign_in_ends(
    people: dict[str, Any], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages refuse a user at once; an open socket must not go on streaming to them."""
    monkeypatch.setattr(consumers, "SIGN_IN_CHECK_SECONDS", 0)
    acme, ana = people["acme"], people["ana"]
    await escalate(acme)
    await claim(acme, "conv-1", ana)
    client = await database_sync_to_async(_signed_in_client)(ana)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    assert (await socket.connect())[0]
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1", "after_seq": 0}
    await socket.send_to(text_data=json.dumps(hello))
    await receive_until(socket, 'id="turn-2"')

    await database_sync_to_async(_sign_in_end)(client, ana, how)
    await add_turn(acme, "conv-1", "t3", "Card 4111 written after the sign-in ended.")
    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_watch_of_a_name_that_cannot_exist_is_refused_and_the_socket_stays(
    people: dict[str, Any],
) -> None:
    """A NUL would reach PostgreSQL, which refuses it with an error (the socket closed)."""
    acme = people["acme"]
    await escalate(acme)
    _, ana = await connect(people["ana"])
    for project, name in (("\u0000", "conv-1"), (acme.public_id, "conv\u00001"), ("", "")):
        await ana.send_to(
            text_data=json.dumps({"view": "session", "project": project, "session": name})
        )
        assert "not available" in await ana.receive_from()
    await ana.send_to(
        text_data=json.dumps({"view": "session", "project": acme.public_id, "session": "conv-1"})
    )
    assert 'id="turn-1"' in await receive_until(ana, 'id="turn-1"')
    await ana.disconnect()


@database_sync_to_async
def edit_turn(project: Project, name: str, doc_id: str, text: str) -> None:
    session = project.sessions.get(name=name)
    turns_upsert(session=session, docs=[_turn(doc_id, text)], actor=BOT)


@database_sync_to_async
def delete_turns(project: Project, name: str, *doc_ids: str) -> None:
    turns_delete(session=project.sessions.get(name=name), doc_ids=list(doc_ids), actor=BOT)


@database_sync_to_async
def push(project: Project, name: str) -> None:
    session_push(session=project.sessions.get(name=name), actor=BOT, to_kind="humans")


async def test_edits_and_deletes_reach_an_open_thread_each_time(people: dict[str, Any]) -> None:
    """Two edits in a row looked alike (same version, last_seq, status): the second was
    dropped as the double of the first, and neither replaced the turn on the page."""
    acme = people["acme"]
    await escalate(acme)
    _, ana = await connect(people["ana"])
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1"}
    await ana.send_to(text_data=json.dumps({**hello, "after_seq": "2", "version": "1"}))
    await ana.receive_from()
    for order in ("ORD-22222", "ORD-33333"):
        await edit_turn(acme, "conv-1", "t1", f"My order {order} is late.")
        update = await receive_until(ana, order)
        assert '<li id="turn-1" hx-swap-oob="true"' in update
        assert f"My order {order} is late." in update and order in update.split('id="brief"')[1]
    await delete_turns(acme, "conv-1", "t2")
    gone = await receive_until(ana, 'hx-swap-oob="delete"')
    assert '<li id="turn-2" hx-swap-oob="delete"></li>' in gone
    await ana.disconnect()


async def test_a_handoff_after_a_deleted_last_turn_still_arrives(people: dict[str, Any]) -> None:
    acme = people["acme"]
    await escalate(acme)
    await add_turn(acme, "conv-1", "t3", "A bot note that will be deleted.")
    await delete_turns(acme, "conv-1", "t3")
    _, ana = await connect(people["ana"])
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1"}
    # The page shows turns 1-2 and handoff 1; turn 3 is gone.
    await ana.send_to(text_data=json.dumps({**hello, "after_seq": "2", "version": "1"}))
    await ana.receive_from()
    await push(acme, "conv-1")
    update = await receive_until(ana, 'id="handoff-2"')
    assert 'name="after_seq" value="3"' in update
    await ana.disconnect()


async def test_a_page_far_behind_gets_the_latest_page_not_the_whole_thread(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_service, "THREAD_PAGE", 2)
    acme = people["acme"]
    await escalate(acme)
    for n in range(3, 7):
        await add_turn(acme, "conv-1", f"t{n}", f"Bot turn {n}.")
    _, ana = await connect(people["ana"])
    hello = {"view": "session", "project": acme.public_id, "session": "conv-1"}
    await ana.send_to(text_data=json.dumps({**hello, "after_seq": "0", "version": "0"}))
    update = await ana.receive_from()
    assert 'hx-swap-oob="innerHTML:#thread"' in update
    assert re.findall(r'<li id="turn-(\d+)"', update) == ["5", "6"]
    assert "Load earlier turns" in update and 'name="after_seq" value="6"' in update
    await ana.disconnect()
