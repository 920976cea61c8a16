"""The ASGI request path: few thread hops per API call, and request threads reused.

Through the ASGI application in-process (httpx's ASGI transport), as uvicorn calls it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from asgiref import sync
from django.core.signals import request_finished, request_started

from moss_web.asgi_handler import PooledThreadsASGIHandler
from sessions_app.models import Project


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every sync_to_async call, by the function it runs."""
    counted: Counter[str] = Counter()
    original = sync.SyncToAsync.__call__

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counted[getattr(self.func, "__qualname__", repr(self.func))] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    return counted


@pytest.fixture
def threads_seen() -> Iterator[list[str]]:
    """The thread each request's sync work starts on (Django's request_started signal)."""
    names: list[str] = []

    def record(**kwargs: Any) -> None:
        names.append(threading.current_thread().name)

    request_started.connect(record)
    yield names
    request_started.disconnect(record)


def test_an_api_call_makes_one_thread_hop(
    transactional_db: None,
    make_project: Callable[..., tuple[Project, str]],
    hops: Counter[str],
) -> None:
    project, key = make_project("Acme")
    headers = {"X-Project-Id": project.public_id, "X-Project-Key": key}

    async def calls() -> httpx.Response:
        transport = httpx.ASGITransport(app=PooledThreadsASGIHandler())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as api:
            opened = await api.post("/api/v1/sessions", json={"name": "conv-1"})
            assert opened.status_code == 201
            hops.clear()
            return await api.get("/api/v1/sessions/conv-1")

    response = asyncio.run(calls())
    assert response.status_code == 200
    assert response.json()["name"] == "conv-1"
    # Django's request-started signal, the operation and the response's close, in one hop
    # (three with Django's handler, 17 with its own middleware).
    assert sum(hops.values()) == 1, hops


def test_a_sync_views_request_starts_and_finishes_on_its_thread_before_it_is_sent(
    transactional_db: None, make_project: Callable[..., tuple[Project, str]]
) -> None:
    project, key = make_project("Acme")
    headers = {"X-Project-Id": project.public_id, "X-Project-Key": key}
    seen: list[tuple[str, str]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.current_thread().name))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=PooledThreadsASGIHandler())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as api:
            return await api.post("/api/v1/sessions", json={"name": "conv-1"})

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        response = asyncio.run(call())
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert response.status_code == 201
    assert [event for event, _ in seen] == ["started", "finished"]
    assert {name for _, name in seen} == {seen[0][1]} and seen[0][1].startswith("request")


def test_async_views_and_bad_requests_keep_their_answers(
    transactional_db: None, make_project: Callable[..., tuple[Project, str]]
) -> None:
    project, key = make_project("Acme")
    headers = {"X-Project-Id": project.public_id, "X-Project-Key": key}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=PooledThreadsASGIHandler())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as api:
            return [
                await api.get("/healthz"),  # async views: Django's async path
                await api.get("/api/v1/events", params={"wait": 0}),
                await api.post(
                    "/api/v1/sessions",
                    content=b'{"name": "\xff',
                    headers={"Content-Type": "application/json"},
                ),
                await api.get("/api/v1/no-such-thing"),
            ]

    health, events, bad, missing = asyncio.run(calls())
    assert "status" in health.json()  # the health check's own answer (503 while loading)
    assert events.status_code == 200 and events.json()["events"] == []
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/json")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(
        "application/json"
    )


async def test_requests_one_after_another_reuse_one_thread(threads_seen: list[str]) -> None:
    transport = httpx.ASGITransport(app=PooledThreadsASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(3):
            assert (await client.get("/api/v1/no-such-thing")).status_code == 404
    assert len(threads_seen) == 3
    assert len(set(threads_seen)) == 1 and threads_seen[0].startswith("request")
    assert threads_seen[0] != threading.current_thread().name


def test_which_views_are_async_is_read_again_when_the_urlconf_changes(settings: Any) -> None:
    from moss_web.asgi_handler import _cached_view_is_async, _view_is_async

    assert _view_is_async("/healthz") and not _view_is_async("/api/v1/sessions")
    assert _cached_view_is_async.cache_info().currsize >= 2
    settings.ROOT_URLCONF = "moss_web.urls"  # tests that swap the urlconf signal it
    assert _cached_view_is_async.cache_info().currsize == 0


def test_long_paths_are_answered_but_not_kept() -> None:
    from moss_web.asgi_handler import _cached_view_is_async, _view_is_async

    _cached_view_is_async.cache_clear()
    assert not _view_is_async("/api/v1/sessions/" + "x" * 100_000)
    assert _cached_view_is_async.cache_info().currsize == 0
