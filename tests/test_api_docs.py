import numpy as np

from sessions_app import embeddings
from sessions_app.models import AuditEvent, Turn


def add(api, name, docs):
    return api.post(f"/sessions/{name}/docs", {"docs": docs})


def test_add_docs_stores_turns_in_order_with_embeddings(api):
    api.post("/sessions", {"name": "s1"})
    response = add(
        api,
        "s1",
        [
            {
                "id": "turn-1",
                "text": "Customer reported a duplicate charge.",
                "metadata": {"channel": "voice", "role": "customer"},
            },
            {"id": "turn-2", "text": "Agent confirmed a refund."},
        ],
    )
    assert response.status_code == 200
    assert response.json() == {
        "added": 2,
        "updated": 0,
        "unchanged": 0,
        "doc_count": 2,
        "embedding_pending": 0,
    }
    turns = list(Turn.objects.order_by("seq"))
    assert [(t.doc_id, t.seq) for t in turns] == [("turn-1", 1), ("turn-2", 2)]
    expected = embeddings.stored_texts_embed(["Customer reported a duplicate charge."])[0]
    assert turns[0].embedding is not None
    assert np.allclose(turns[0].embedding, expected, atol=1e-5)
    assert turns[0].model_id == "all-MiniLM-L6-v2"


def test_adding_an_existing_id_updates_it_in_place(api):
    api.post("/sessions", {"name": "s1"})
    add(api, "s1", [{"id": "t1", "text": "first version"}, {"id": "t2", "text": "other"}])
    response = add(api, "s1", [{"id": "t1", "text": "second version"}])
    assert response.json() == {
        "added": 0,
        "updated": 1,
        "unchanged": 0,
        "doc_count": 2,
        "embedding_pending": 0,
    }
    turn = Turn.objects.get(doc_id="t1")
    assert turn.text == "second version" and turn.seq == 1
    assert turn.embedding is not None
    assert np.allclose(
        turn.embedding, embeddings.stored_texts_embed(["second version"])[0], atol=1e-5
    )


def test_a_retried_call_changes_nothing(api):
    api.post("/sessions", {"name": "s1"})
    docs = [{"id": "t1", "text": "hello", "metadata": {"channel": "chat"}}]
    add(api, "s1", docs)
    before = Turn.objects.get(doc_id="t1")
    response = add(api, "s1", docs)
    assert response.json() == {
        "added": 0,
        "updated": 0,
        "unchanged": 1,
        "doc_count": 1,
        "embedding_pending": 0,
    }
    assert Turn.objects.get(doc_id="t1").updated_at == before.updated_at


def test_a_client_embedding_is_stored_as_given(api):
    api.post("/sessions", {"name": "s1"})
    # Values that need every one of float32's 9 significant digits, and its extremes.
    vector = np.random.default_rng(7).standard_normal(384).astype(np.float32)
    extremes = [1.0, -0.0, np.finfo(np.float32).tiny, np.finfo(np.float32).max]
    vector[:4] = np.array(extremes, dtype=np.float32)
    add(api, "s1", [{"id": "t1", "text": "custom", "embedding": vector.tolist()}])
    turn = Turn.objects.get(doc_id="t1")
    assert turn.embedding is not None
    assert np.array_equal(np.asarray(turn.embedding, dtype=np.float32), vector)
    assert turn.model_id == "client"


def test_get_docs_by_ids_keeps_the_order_asked(api):
    api.post("/sessions", {"name": "s1"})
    add(api, "s1", [{"id": f"t{n}", "text": f"text {n}"} for n in range(3)])
    response = api.client.get("/api/v1/sessions/s1/docs?ids=t2&ids=t0&ids=missing")
    assert [d["id"] for d in response.json()["docs"]] == ["t2", "t0"]


def test_get_docs_pages_through_the_thread_in_sequence_order(api):
    api.post("/sessions", {"name": "s1"})
    add(
        api,
        "s1",
        [{"id": f"t{n}", "text": f"text {n}", "metadata": {"n": str(n)}} for n in range(5)],
    )
    first = api.get("/sessions/s1/docs", limit=2).json()
    assert [(d["id"], d["seq"]) for d in first["docs"]] == [("t0", 1), ("t1", 2)]
    assert first["docs"][0]["metadata"] == {"n": "0"}
    rest = api.get("/sessions/s1/docs", limit=10, cursor=first["next_cursor"]).json()
    assert [d["id"] for d in rest["docs"]] == ["t2", "t3", "t4"]
    assert rest["next_cursor"] is None
    # Reading the thread is audited once, with the key, not once per page.
    reads = AuditEvent.objects.filter(kind="session.read")
    assert list(reads.values_list("actor_key__project", flat=True)) == [api.project.pk]


def test_delete_docs_removes_them_and_updates_the_count(api):
    api.post("/sessions", {"name": "s1"})
    add(api, "s1", [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}])
    response = api.post("/sessions/s1/docs/delete", {"ids": ["a", "nope"]})
    assert response.json() == {"deleted": 1, "doc_count": 1}
    assert list(Turn.objects.values_list("doc_id", flat=True)) == ["b"]
    assert api.get("/sessions/s1").json()["doc_count"] == 1


def test_resume_reads_stored_embeddings_without_the_model(api, monkeypatch):
    api.post("/sessions", {"name": "s1"})
    add(api, "s1", [{"id": "a", "text": "one"}])

    def fail(*args, **kwargs):
        raise AssertionError("resume must not embed anything")

    monkeypatch.setattr(embeddings, "texts_embed", fail)
    assert api.post("/sessions", {"name": "s1"}).json()["doc_count"] == 1
    assert api.get("/sessions/s1/docs").json()["docs"][0]["id"] == "a"
