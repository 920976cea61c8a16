"""session.brief() in both SDK clients, against a real server process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from moss_client import Brief, DocumentInfo, MossClient, MossClientSync, NotFoundError

TURNS = [
    DocumentInfo(
        id="turn-1",
        text="Customer reported a duplicate $49.99 charge on order #A-88231.",
        metadata={"role": "customer", "channel": "voice", "device": "iphone"},
    ),
    DocumentInfo(
        id="turn-2",
        text="Agent confirmed: we'll refund it in 3-5 business days.",
        metadata={"role": "agent", "channel": "voice", "author": "ana"},
    ),
]


@pytest.fixture
def credentials(live_server_url: str, make_project: Callable[..., Any]) -> tuple[str, str, str]:
    project, key = make_project("Acme")
    return project.public_id, key, live_server_url


def check(brief: Brief) -> None:
    assert brief.status == "waiting"
    assert brief.escalation is not None and brief.escalation.reason == "duplicate charge"
    assert brief.escalation.to.kind == "humans"
    assert brief.problem is not None and brief.problem.turn == "turn-1"
    assert [(p.turn, p.topics) for p in brief.promises] == [("turn-2", ["refund"])]
    assert {(f.kind, f.key, f.turn) for f in brief.facts} == {
        ("amount", "USD 49.99", "turn-1"),
        ("order", "A-88231", "turn-1"),
        ("date", "in 3-5 business days", "turn-2"),
    }
    assert brief.facts_of("order")[0].value == "A-88231"
    assert brief.path.channels == ["voice"] and brief.path.devices == ["iphone"]
    assert brief.path.handoffs[0].turn == "turn-2"
    assert brief.path.waiting_seconds is not None


async def test_the_async_client_reads_the_brief(credentials: tuple[str, str, str]) -> None:
    project_id, key, url = credentials
    async with MossClient(project_id, key, base_url=url) as client:
        session = await client.session("conv-brief")
        await session.add_docs(TURNS)
        await session.push_index(to="humans", reason="duplicate charge")
        check(await session.brief())
        await client.delete_session("conv-brief")
        with pytest.raises(NotFoundError, match="session 'conv-brief' not found"):
            await session.brief()


def test_the_sync_client_reads_the_same_brief(credentials: tuple[str, str, str]) -> None:
    project_id, key, url = credentials
    with MossClientSync(project_id, key, base_url=url) as client:
        session = client.session("conv-brief-sync")
        session.add_docs(TURNS)
        session.push_index(to="humans", reason="duplicate charge")
        check(session.brief())
