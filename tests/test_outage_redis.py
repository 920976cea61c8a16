"""Redis goes down under a running server, and comes back.

A server process uses a throwaway redis-server that the test stops and starts
(the machine's Redis is not touched). The API keeps working; console sockets
are closed for a retry and refused with 503 (never a 500) while Redis is down;
the console polls over HTTP meanwhile and goes live again when Redis returns.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sessions_app.models import Project
from tests.backing_services import ThrowawayRedis
from tests.conftest import ApiClient, need
from tests.servers import server_process

TURNS = [
    {"id": "t1", "text": "Where is my refund?", "metadata": {"role": "customer"}},
    {"id": "t2", "text": "It was sent on Monday.", "metadata": {"role": "bot"}},
]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    need(shutil.which("redis-server") is not None, "no redis-server binary")
    server = ThrowawayRedis(tmp_path / "redis")
    yield server
    server.stop()


def escalate(bot: httpx.Client, name: str, reason: str = "Asked for a person") -> None:
    assert bot.post("/sessions", json={"name": name}).status_code in (200, 201)
    assert bot.post(f"/sessions/{name}/docs", json={"docs": TURNS}).status_code == 200
    push = {"to": "humans", "reason": reason, "from_channel": "chat"}
    assert bot.post(f"/sessions/{name}/push", json=push).json()["status"] == "waiting"


def bot_for(base_url: str, project: Project, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=30,
    )


def console_socket(base_url: str, cookie: str) -> ClientConnection:
    ws_url = base_url.replace("http://", "ws://") + "/ws/console/"
    return connect(
        ws_url, additional_headers={"Cookie": cookie, "Origin": base_url}, open_timeout=10
    )


def receive_until(console: ClientConnection, marker: str) -> str:
    while True:
        message = str(console.recv(timeout=20))
        if marker in message:
            return message


def test_the_api_works_and_console_sockets_get_no_500_while_redis_is_down(
    transactional_db: None,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    redis: ThrowawayRedis,
) -> None:
    project, key = make_project("Acme")
    client = Client()
    client.force_login(make_user("ana", project))
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    with server_process(env={"REDIS_URL": redis.url}) as base_url:
        bot = bot_for(base_url, project, key)
        with console_socket(base_url, cookie) as console:
            console.send(json.dumps({"view": "queue"}))
            assert "No escalations waiting" in str(console.recv(timeout=10))

            redis.stop()
            # The open socket is closed with "try again later", which browsers retry.
            with pytest.raises(ConnectionClosed) as closed:
                console.recv(timeout=20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        # New handshakes are refused with 503, not 500.
        with pytest.raises(InvalidStatus) as refused:
            console_socket(base_url, cookie)
        assert refused.value.response.status_code == 503

        # The API keeps working; only its live notifications are lost.
        escalate(bot, "conv-down")
        # What the polling console reads has it.
        queue = httpx.get(
            f"{base_url}/console/", headers={"HX-Request": "true", "Cookie": cookie}, timeout=10
        )
        assert queue.status_code == 200 and 'data-session="conv-down"' in queue.text

        redis.start()
        with console_socket(base_url, cookie) as console:
            # Reconnected, the console catches up on what it missed...
            console.send(json.dumps({"view": "queue"}))
            assert 'data-session="conv-down"' in receive_until(console, "queue")
            # ...and is live again.
            escalate(bot, "conv-up", reason="Back online")
            assert "Back online" in receive_until(console, 'data-session="conv-up"')


def test_the_updates_view_sends_what_the_socket_would_after_the_cursor(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    api.post("/sessions", {"name": "conv-1"})
    api.post("/sessions/conv-1/docs", {"docs": TURNS})
    api.post("/sessions/conv-1/push", {"to": "humans", "reason": "Asked for a person"})
    client = Client()
    client.force_login(make_user("ana", api.project))
    url = f"/console/p/{api.project.public_id}/s/conv-1/updates/"

    response = client.get(url, {"after_seq": 1, "version": 0}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="turn-2"' in html and 'id="turn-1"' not in html
    assert 'id="handoff-1"' in html
    # The cursor and the status panel replace the page's copies (out of band).
    assert '<form id="thread-cursor" hx-swap-oob="true"' in html
    assert 'name="after_seq" value="2"' in html
    assert '<section id="session-status" hx-swap-oob="true"' in html

    nothing_new = client.get(url, {"after_seq": 2, "version": 1}).content.decode()
    # No thread item (the brief card, re-sent with the status, may cite a turn by link).
    assert 'id="turn-' not in nothing_new and 'id="handoff-' not in nothing_new


def test_the_updates_view_of_another_projects_session_is_a_404(
    api: ApiClient, other_api: ApiClient, make_user: Callable[..., Any]
) -> None:
    api.post("/sessions", {"name": "conv-1"})
    client = Client()
    client.force_login(make_user("mallory", other_api.project))
    response = client.get(f"/console/p/{api.project.public_id}/s/conv-1/updates/")
    assert response.status_code == 404


@pytest.mark.browser
def test_the_console_polls_while_redis_is_down_and_goes_live_again(
    transactional_db: None,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    redis: ThrowawayRedis,
    browser: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    env = {"REDIS_URL": redis.url, "MOSS_CONSOLE_RETRY_SECONDS": "1"}
    with server_process(env=env) as base_url:
        bot = bot_for(base_url, project, key)
        page = browser.new_page()
        page.goto(f"{base_url}/accounts/login/?next=/console/")
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill("pw-ana")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/console/")
        live = page.locator("#live-status")
        expect(live).to_have_attribute("data-state", "open", timeout=15_000)

        redis.stop()
        expect(live).to_have_attribute("data-state", "closed", timeout=15_000)
        label = "getComputedStyle(document.querySelector('#live-status'), '::after').content"
        assert page.evaluate(label) == '"Reconnecting…"'

        # The queue keeps up by polling.
        escalate(bot, "conv-1", reason="Refund not received")
        expect(page.locator('tr[data-session="conv-1"]')).to_contain_text(
            "Refund not received", timeout=15_000
        )

        # So does a session view opened while Redis is down.
        page.locator('tr[data-session="conv-1"] a.customer').click()
        page.wait_for_url(f"**/console/p/{project.public_id}/s/conv-1/")
        expect(live).to_have_attribute("data-state", "closed", timeout=15_000)
        note = {"id": "t3", "text": "Refund reference RF-2201.", "metadata": {"role": "bot"}}
        assert bot.post("/sessions/conv-1/docs", json={"docs": [note]}).status_code == 200
        expect(page.locator("#turn-3")).to_contain_text("RF-2201", timeout=15_000)

        redis.start()
        expect(live).to_have_attribute("data-state", "open", timeout=20_000)
        last = {"id": "t4", "text": "Customer confirmed receipt.", "metadata": {"role": "bot"}}
        assert bot.post("/sessions/conv-1/docs", json={"docs": [last]}).status_code == 200
        expect(page.locator("#turn-4")).to_contain_text("confirmed receipt", timeout=15_000)
        expect(page.locator("#thread > li.turn")).to_have_count(4)
