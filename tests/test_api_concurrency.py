"""Concurrent writers to one session lose nothing, and sequence numbers stay gap-free."""

import asyncio

import httpx
import pytest

from sessions_app.actors import Actor
from sessions_app.errors import NotFound
from sessions_app.models import Session, Turn
from sessions_app.services.handoffs import session_push
from sessions_app.services.sessions import session_delete, session_open
from sessions_app.services.turns import DocInput, turns_upsert

WRITERS = 6
BATCHES = 4
PER_BATCH = 5


async def _write_all(base_url, headers, batches):
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v1/sessions/conv-1/docs", json={"docs": docs}) for docs in batches)
        )
    return responses


@pytest.fixture
def server_session(live_server_url, make_project):
    project, key = make_project()
    session_open(project=project, name="conv-1", actor=Actor.system())
    return live_server_url, {"X-Project-Id": project.public_id, "X-Project-Key": key}


def test_concurrent_writers_lose_nothing(server_session):
    base_url, headers = server_session
    batches = [
        [
            {"id": f"w{w}-b{b}-{n}", "text": f"writer {w} batch {b} turn {n}"}
            for n in range(PER_BATCH)
        ]
        for w in range(WRITERS)
        for b in range(BATCHES)
    ]
    responses = asyncio.run(_write_all(base_url, headers, batches))
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["added"] for r in responses) == WRITERS * BATCHES * PER_BATCH

    total = WRITERS * BATCHES * PER_BATCH
    seqs = sorted(Turn.objects.filter(session__name="conv-1").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    # Each batch's turns got consecutive numbers: one writer's call is never interleaved.
    for batch in batches:
        batch_seqs = sorted(
            Turn.objects.filter(doc_id__in=[d["id"] for d in batch]).values_list("seq", flat=True)
        )
        assert batch_seqs == list(range(batch_seqs[0], batch_seqs[0] + PER_BATCH))


def test_concurrent_retries_of_one_call_store_it_once(server_session):
    base_url, headers = server_session
    call = [{"id": f"t{n}", "text": f"retried turn {n}"} for n in range(5)]
    responses = asyncio.run(_write_all(base_url, headers, [call] * 6))
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["added"] for r in responses) == 5
    assert sorted(Turn.objects.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert {r.json()["doc_count"] for r in responses} == {5}


def test_opens_adding_metadata_at_once_keep_every_key(server_session):
    base_url, headers = server_session

    async def open_all():
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/sessions", json={"name": "conv-1", "metadata": {f"k{n}": "v"}}
                    )
                    for n in range(8)
                )
            )

    assert all(r.status_code == 200 for r in asyncio.run(open_all()))
    metadata = Session.objects.get(name="conv-1").metadata
    assert metadata == {f"k{n}": "v" for n in range(8)}


def test_writes_racing_a_delete_find_the_session_gone(make_project):
    """add_docs and push read the session, do their slow part (the model), then lock it;
    a DELETE may land in between. That is a 404 (NotFound), not a 500."""
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=Actor.system())
    session_delete(project=project, name="conv-1", actor=Actor.system())
    with pytest.raises(NotFound, match="session 'conv-1' not found"):
        turns_upsert(session=session, docs=[DocInput(id="a", text="hi")], actor=Actor.system())
    with pytest.raises(NotFound, match="session 'conv-1' not found"):
        session_push(session=session, actor=Actor.system())
    assert not Turn.objects.exists()
