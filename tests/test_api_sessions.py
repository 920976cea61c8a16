from datetime import datetime

from sessions_app.models import AuditEvent, Session


def test_opening_a_new_name_creates_the_session(api):
    response = api.post("/sessions", {"name": "conv-123", "metadata": {"customer_id": "c-1"}})
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "conv-123"
    assert body["doc_count"] == 0
    assert body["status"] == "bot"
    assert body["version"] == 0
    assert body["model_id"] == "all-MiniLM-L6-v2"
    assert body["metadata"] == {"customer_id": "c-1"}
    assert body["created"] is True


def test_opening_an_existing_name_resumes_it(api):
    api.post("/sessions", {"name": "conv-123"})
    api.post("/sessions/conv-123/docs", {"docs": [{"id": "t1", "text": "hello there"}]})
    response = api.post("/sessions", {"name": "conv-123"})
    assert response.status_code == 200
    assert response.json()["doc_count"] == 1
    assert response.json()["created"] is False
    assert Session.objects.filter(name="conv-123").count() == 1


def test_resuming_is_audited_with_the_key(api):
    api.post("/sessions", {"name": "conv-9", "channel": "chat", "device": "phone"})
    api.post("/sessions", {"name": "conv-9", "channel": "email", "device": "laptop"})
    kinds = list(AuditEvent.objects.values_list("kind", "channel", "device", "actor_key__prefix"))
    prefix = api.key[:11]
    assert kinds == [
        ("session.created", "chat", "phone", prefix),
        ("session.opened", "email", "laptop", prefix),
    ]


def test_the_model_alias_opens_the_same_model(api):
    response = api.post("/sessions", {"name": "s1", "model_id": "moss-minilm"})
    assert response.json()["model_id"] == "all-MiniLM-L6-v2"
    assert api.post("/sessions", {"name": "s1", "model_id": "moss-minilm"}).status_code == 200


def test_an_unknown_model_is_rejected(api):
    response = api.post("/sessions", {"name": "s1", "model_id": "gpt-embed"})
    assert response.status_code == 422
    assert "unknown model_id 'gpt-embed'" in response.json()["message"]
    assert not Session.objects.exists()


def test_get_session_reports_state(api):
    api.post("/sessions", {"name": "s1"})
    body = api.get("/sessions/s1").json()
    assert body["name"] == "s1"
    assert body["holder"] == f"key {api.key[:11]}"


def test_sessions_list_filters_by_status_prefix_and_customer(api):
    api.post("/sessions", {"name": "conv-1", "metadata": {"customer_id": "c-1"}})
    api.post("/sessions", {"name": "conv-2", "metadata": {"customer_id": "c-2"}})
    api.post("/sessions", {"name": "ticket-3", "metadata": {"customer_id": "c-1"}})
    api.post("/sessions/conv-2/push", {"to": "humans", "reason": "angry"})

    def names(**params):
        return [s["name"] for s in api.get("/sessions", **params).json()["sessions"]]

    assert names() == ["ticket-3", "conv-2", "conv-1"]
    assert names(prefix="conv-") == ["conv-2", "conv-1"]
    assert names(customer_id="c-1") == ["ticket-3", "conv-1"]
    assert names(status="waiting") == ["conv-2"]


def test_sessions_list_pages_with_a_cursor(api):
    for n in range(5):
        api.post("/sessions", {"name": f"s{n}"})
    first = api.get("/sessions", limit=2).json()
    second = api.get("/sessions", limit=2, cursor=first["next_cursor"]).json()
    third = api.get("/sessions", limit=2, cursor=second["next_cursor"]).json()
    seen = [s["name"] for page in (first, second, third) for s in page["sessions"]]
    assert seen == ["s4", "s3", "s2", "s1", "s0"]
    assert third["next_cursor"] is None


def test_deleting_a_session_removes_it_and_its_turns(api):
    api.post("/sessions", {"name": "s1"})
    api.post("/sessions/s1/docs", {"docs": [{"id": "t1", "text": "hello"}]})
    assert api.delete("/sessions/s1").status_code == 204
    assert api.get("/sessions/s1").status_code == 404
    assert AuditEvent.objects.filter(kind="session.deleted", session_name="s1").exists()


def test_healthz_needs_no_key(client, db):
    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert response.json()["database"]["ok"] is True


def test_an_edit_moves_the_turns_updated_at_and_not_its_created_at(api):
    def stored():
        doc = api.get("/sessions/conv-1/docs", ids="a").json()["docs"][0]
        return datetime.fromisoformat(doc["created_at"]), datetime.fromisoformat(doc["updated_at"])

    api.post("/sessions", {"name": "conv-1"})
    api.post("/sessions/conv-1/docs", {"docs": [{"id": "a", "text": "first"}]})
    created, updated = stored()
    assert (
        api.post("/sessions/conv-1/docs", {"docs": [{"id": "a", "text": "second"}]}).json()[
            "updated"
        ]
        == 1
    )
    assert stored()[0] == created and stored()[1] > updated
