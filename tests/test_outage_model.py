"""The embedding model is unavailable: turns are kept, found by keyword, embedded later.

"Unavailable" is made real, not mocked: the loader is pointed at a folder
without the model (EMBEDDING_MODEL_PATH), so loading fails exactly as it does
when the files are missing in production. In-process tests drop the loaded
model for their duration; the server-process test starts a server without it
and gives it back by putting the model's files where the setting points.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from moss_client import CallLimits, DocumentInfo, MossClientSync
from sessions_app import embeddings
from sessions_app.models import Project, Turn
from tests.conftest import ApiClient
from tests.servers import server_process

TURNS: list[dict[str, Any]] = [
    {
        "id": "t1",
        "text": "Customer reported a duplicate $49.99 charge.",
        "metadata": {"role": "customer"},
    },
    {
        "id": "t2",
        "text": "Agent confirmed a refund in 3-5 business days.",
        "metadata": {"role": "agent"},
    },
]


class Model:
    """Makes this process's model unavailable, and available again."""

    def __init__(self, settings: Any, missing: Path) -> None:
        self.settings = settings
        self.missing = missing

    def gone(self) -> None:
        # The fixture puts the real ones back afterwards.
        embeddings._model = embeddings._context_model = None
        self.settings.EMBEDDING_MODEL_PATH = str(self.missing)

    def back(self) -> None:
        self.settings.EMBEDDING_MODEL_PATH = ""


@pytest.fixture
def model(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Model]:
    """The real loader; restored to the loaded model afterwards."""
    monkeypatch.setattr(embeddings, "_model", embeddings.model_load())
    monkeypatch.setattr(embeddings, "_context_model", embeddings.context_model_get())
    monkeypatch.setattr(embeddings, "_failure", "")
    monkeypatch.setattr(embeddings, "_failed_at", 0.0)
    settings.MOSS_EMBED_RETRY_SECONDS = 0  # every call tries to load again
    yield Model(settings, tmp_path / "no-model-here")


@pytest.fixture
def model_unavailable(model: Model) -> Model:
    """The model unloaded and its path pointing at a folder without it."""
    model.gone()
    return model


def add(api: ApiClient, docs: list[dict[str, Any]], name: str = "conv-1") -> Any:
    api.post("/sessions", {"name": name})
    return api.post(f"/sessions/{name}/docs", {"docs": docs})


def test_turns_are_stored_at_once_with_their_embedding_pending(
    api: ApiClient, model_unavailable: Model
) -> None:
    response = add(api, TURNS)
    assert response.status_code == 200, response.content
    assert response.json()["added"] == 2
    assert response.json()["embedding_pending"] == 2
    assert all(turn.embedding is None for turn in Turn.objects.all())
    docs = api.get("/sessions/conv-1/docs").json()["docs"]
    assert [(d["id"], d["embedding_pending"]) for d in docs] == [("t1", True), ("t2", True)]
    assert api.get("/sessions/conv-1").json()["doc_count"] == 2


def test_queries_fall_back_to_keyword_scoring_and_say_so(
    api: ApiClient, model_unavailable: Model
) -> None:
    add(api, TURNS)
    for alpha in (0.8, 1.0):
        response = api.post("/sessions/conv-1/query", {"query": "refund", "alpha": alpha})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["degraded"] == "keyword_only"
        assert [doc["id"] for doc in body["docs"]] == ["t2"]
        assert body["docs"][0]["score"] == pytest.approx(1.0)


def test_client_embeddings_need_no_model(api: ApiClient, model: Model) -> None:
    vectors = embeddings.texts_embed([doc["text"] for doc in TURNS])
    docs = [{**d, "embedding": v.tolist()} for d, v in zip(TURNS, vectors, strict=True)]
    model.gone()
    assert add(api, docs).json()["embedding_pending"] == 0
    query = {"query": "refund", "alpha": 1.0, "embedding": vectors[1].tolist()}
    body = api.post("/sessions/conv-1/query", query).json()
    assert body["degraded"] is None
    assert body["docs"][0]["id"] == "t2"


def test_changing_a_text_while_the_model_is_unavailable_drops_its_old_embedding(
    api: ApiClient, model: Model
) -> None:
    add(api, TURNS)
    assert Turn.objects.filter(embedding__isnull=True).count() == 0
    model.gone()
    changed = {
        "id": "t1",
        "text": "Customer now disputes a $12 fee.",
        "metadata": {"role": "customer"},
    }
    response = api.post("/sessions/conv-1/docs", {"docs": [changed]})
    assert response.json()["updated"] == 1 and response.json()["embedding_pending"] == 1
    assert Turn.objects.get(doc_id="t1").embedding is None
    assert Turn.objects.get(doc_id="t2").embedding is not None


def test_embed_pending_embeds_them_once_the_model_is_back(
    api: ApiClient, model_unavailable: Model
) -> None:
    add(api, TURNS)
    with pytest.raises(CommandError, match="unavailable"):
        call_command("embed_pending", stdout=StringIO())
    assert Turn.objects.filter(embedding__isnull=True).count() == 2

    model_unavailable.back()
    out = StringIO()
    call_command("embed_pending", stdout=out)
    assert out.getvalue().strip() == "Embedded 2 pending turns; 0 pending."

    expected = embeddings.stored_texts_embed([doc["text"] for doc in TURNS])
    stored = [Turn.objects.get(doc_id=doc["id"]).embedding for doc in TURNS]
    assert np.allclose(np.array(stored), expected, atol=1e-5)
    body = api.post("/sessions/conv-1/query", {"query": "money back", "alpha": 1.0}).json()
    assert body["degraded"] is None
    assert body["docs"][0]["id"] == "t2"


def test_healthz_reports_degraded_while_the_model_is_unavailable(
    client: Client, db: None, model_unavailable: Model
) -> None:
    with pytest.raises(embeddings.ModelUnavailable):
        embeddings.model_get()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["model"]["ok"] is False
    assert body["model"]["state"] == "unavailable"
    assert "no-model-here" in body["model"]["error"]


def test_the_console_session_view_works_without_the_model(
    api: ApiClient, make_user: Callable[..., Any], model_unavailable: Model
) -> None:
    add(api, [{**doc, "metadata": {**doc["metadata"], "channel": "chat"}} for doc in TURNS])
    api.post("/sessions/conv-1/push", {"to": "humans", "reason": "wants a refund"})
    client = Client()
    client.force_login(make_user("ana", api.project))
    url = f"/console/p/{api.project.public_id}/s/conv-1/"
    response = client.get(url, {"q": "refund"})
    assert response.status_code == 200
    assert "3-5 business days" in response.content.decode()


def test_a_server_without_its_model_stores_turns_and_embeds_them_when_it_returns(
    transactional_db: None, make_project: Callable[..., tuple[Project, str]], tmp_path: Path
) -> None:
    project, key = make_project("Acme")
    model_dir = tmp_path / "model"  # nothing there yet
    env = {"EMBEDDING_MODEL_PATH": str(model_dir), "MOSS_EMBED_RETRY_SECONDS": "0.5"}
    with server_process(env=env) as base_url:
        health = httpx.get(f"{base_url}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"

        bot = httpx.Client(
            base_url=f"{base_url}/api/v1",
            headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
            timeout=30,
        )
        bot.post("/sessions", json={"name": "conv-1"})
        added = bot.post("/sessions/conv-1/docs", json={"docs": TURNS})
        assert added.status_code == 200
        assert added.json()["embedding_pending"] == 2
        found = bot.post("/sessions/conv-1/query", json={"query": "refund"}).json()
        assert found["degraded"] == "keyword_only"
        assert [doc["id"] for doc in found["docs"]] == ["t2"]

        # The model's files appear where the setting points; the server picks them up.
        model_dir.symlink_to(embeddings.model_path(), target_is_directory=True)
        deadline = time.monotonic() + 90
        while any(d["embedding_pending"] for d in bot.get("/sessions/conv-1/docs").json()["docs"]):
            assert time.monotonic() < deadline, "pending turns not embedded within 90 s"
            time.sleep(0.5)

        semantic = bot.post("/sessions/conv-1/query", json={"query": "money back", "alpha": 1.0})
        assert semantic.json()["degraded"] is None
        assert semantic.json()["docs"][0]["id"] == "t2"
        assert httpx.get(f"{base_url}/healthz", timeout=10).json()["status"] == "ok"
    expected = embeddings.stored_texts_embed([doc["text"] for doc in TURNS])
    stored = [Turn.objects.get(doc_id=doc["id"]).embedding for doc in TURNS]
    assert np.allclose(np.array(stored), expected, atol=1e-5)


def test_the_sdk_reports_the_turns_stored_without_embeddings(
    wsgi_app: Any, make_project: Callable[..., Any], model_unavailable: Model
) -> None:
    """Over two requests (one doc per call): the pending counts add up."""
    project, key = make_project("Acme")
    client = MossClientSync(
        project.public_id,
        key,
        base_url="http://testserver",
        transport=httpx.WSGITransport(app=wsgi_app),
        call_limits=CallLimits(max_docs=1),
    )
    session = client.session("conv-1")
    docs = [DocumentInfo(id=t["id"], text=t["text"], metadata=t["metadata"]) for t in TURNS]
    result = session.add_docs(docs)
    assert (result.added, result.embedding_pending) == (2, 2)
