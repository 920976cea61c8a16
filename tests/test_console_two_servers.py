"""Two server processes sharing Postgres and Redis: a push through A reaches a console on B."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
from django.test import Client
from websockets.sync.client import connect

from sessions_app.models import Project
from tests.conftest import need
from tests.servers import server_process

REDIS = {"REDIS_URL": "redis://127.0.0.1:6379/15"}


def redis_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_an_escalation_through_one_process_reaches_a_console_on_the_other(
    transactional_db: None,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
) -> None:
    need(redis_is_up(), "no Redis on 127.0.0.1:6379")
    project, key = make_project("Acme")
    client = Client()
    client.force_login(make_user("ana", project))
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    with server_process(env=REDIS) as process_a, server_process(env=REDIS) as process_b:
        ws_url = process_b.replace("http://", "ws://") + "/ws/console/"
        headers = {"Cookie": cookie, "Origin": process_b}
        with connect(ws_url, additional_headers=headers, open_timeout=10) as console:
            console.send(json.dumps({"view": "queue"}))
            assert "No escalations waiting" in str(console.recv(timeout=10))

            bot = httpx.Client(
                base_url=f"{process_a}/api/v1",
                headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
                timeout=30,
            )
            bot.post("/sessions", json={"name": "conv-ab"})
            turn = {"id": "t1", "text": "Where is my refund?", "metadata": {"role": "customer"}}
            bot.post("/sessions/conv-ab/docs", json={"docs": [turn]})
            push = {"to": "humans", "reason": "Asked for a person", "from_channel": "chat"}
            assert bot.post("/sessions/conv-ab/push", json=push).json()["status"] == "waiting"

            deadline = time.monotonic() + 20
            while True:
                message = str(console.recv(timeout=max(deadline - time.monotonic(), 0.1)))
                if 'data-session="conv-ab"' in message:
                    break
            assert "Asked for a person" in message
            assert "Where is my refund?" in message
