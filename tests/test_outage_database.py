"""The database goes down under a running server, and comes back.

A server process is pointed at a throwaway embedded PostgreSQL that the test
stops and starts; the shared test database is not touched. The latency bounds
are the behaviour asked for (issue 8): the API answers 503 within 2 s and
/healthz within 1 s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.backing_services import ThrowawayPostgres
from tests.servers import server_process

TURN_1 = {"id": "t1", "text": "Customer reported a duplicate $49.99 charge."}
TURN_2 = {"id": "t2", "text": "Agent confirmed a refund in 3-5 business days."}


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


def test_api_and_pages_answer_503_fast_while_the_database_is_down_and_recover_alone(
    tmp_path: Path,
) -> None:
    database = ThrowawayPostgres(tmp_path / "pgdata")
    project_id, key = database.project_create("Acme")
    try:
        with server_process(env={"DATABASE_URL": database.url}) as base_url:
            bot = httpx.Client(
                base_url=f"{base_url}/api/v1",
                headers={"X-Project-Id": project_id, "X-Project-Key": key},
                timeout=30,
            )
            assert bot.post("/sessions", json={"name": "conv-1"}).status_code == 201
            assert bot.post("/sessions/conv-1/docs", json={"docs": [TURN_1]}).status_code == 200

            database.stop()

            calls = [
                ("POST", "/sessions/conv-1/docs", {"docs": [TURN_2]}),
                ("GET", "/sessions/conv-1", None),
                ("POST", "/sessions/conv-1/query", {"query": "refund"}),
                ("POST", "/sessions", {"name": "conv-2"}),
            ]
            for method, path, body in calls:
                response, seconds = timed(bot.request, method, path, json=body)
                assert response.status_code == 503, (path, response.text)
                assert response.json() == {
                    "error": "database_unavailable",
                    "message": "the database is unavailable; retry later",
                }
                assert int(response.headers["Retry-After"]) > 0
                assert seconds < 2.0, (path, seconds)

            health, seconds = timed(httpx.get, f"{base_url}/healthz", timeout=10)
            assert seconds < 1.0
            assert health.status_code == 503
            assert health.json()["status"] == "unavailable"
            assert health.json()["database"]["ok"] is False

            # A signed-in page (any session cookie makes it read the database).
            page, seconds = timed(
                httpx.get, f"{base_url}/console/", cookies={"sessionid": "s" * 32}, timeout=10
            )
            assert page.status_code == 503
            assert "Temporarily unavailable" in page.text
            assert int(page.headers["Retry-After"]) > 0
            assert seconds < 2.0

            database.start()

            # The same server process recovers by itself.
            deadline = time.monotonic() + 30
            while (resumed := bot.get("/sessions/conv-1")).status_code != 200:
                assert resumed.status_code == 503, resumed.text
                assert time.monotonic() < deadline, "no recovery within 30 s"
                time.sleep(0.5)
            assert resumed.json()["doc_count"] == 1
            added = bot.post("/sessions/conv-1/docs", json={"docs": [TURN_2]})
            assert added.status_code == 200
            assert added.json()["doc_count"] == 2
            ids = [doc["id"] for doc in bot.get("/sessions/conv-1/docs").json()["docs"]]
            assert ids == ["t1", "t2"]
            assert httpx.get(f"{base_url}/healthz", timeout=10).json()["status"] == "ok"
    finally:
        database.stop()
