"""Every bad input gets a 4xx JSON error naming the problem, and writes nothing."""

import pytest
from django.test import Client

from sessions_app.models import AuditEvent, Handoff, Session, Turn

OK_DOC = {"id": "ok", "text": "a fine turn"}
LONG_TEXT = "x" * 16_001


def docs(*items):
    return {"docs": [OK_DOC, *items]}


BAD_ADDS = [
    ("missing text", docs({"id": "a"}), "docs.1.text"),
    ("empty text", docs({"id": "a", "text": ""}), "docs.1.text: must not be empty"),
    ("blank text", docs({"id": "a", "text": "   "}), "docs[1]: text must not be empty"),
    (
        "text too long",
        docs({"id": "a", "text": LONG_TEXT}),
        "docs.1.text: must be at most 16000 characters",
    ),
    ("NUL in text", docs({"id": "a", "text": "bad\x00byte"}), "must not contain NUL"),
    ("duplicate ids", docs({"id": "ok", "text": "again"}), "duplicate id 'ok'"),
    ("empty id", docs({"id": "", "text": "t"}), "docs.1.id: must not be empty"),
    ("non-string metadata", docs({"id": "a", "text": "t", "metadata": {"n": 5}}), "metadata.n"),
    (
        "short embedding",
        docs({"id": "a", "text": "t", "embedding": [0.1] * 383}),
        "docs.1.embedding: has 383 items, at least 384 required",
    ),
    ("NaN embedding", None, "docs.1.embedding.0: must be a finite number"),
    ("no docs", {"docs": []}, "docs: has 0 items, at least 1 required"),
]


@pytest.fixture
def session(api):
    api.post("/sessions", {"name": "s1"})
    AuditEvent.objects.all().delete()
    return api


def assert_nothing_written():
    assert not Turn.objects.exists()
    assert not AuditEvent.objects.exists()
    assert Session.objects.get(name="s1").last_seq == 0


@pytest.mark.parametrize(("case", "body", "message"), BAD_ADDS, ids=[c[0] for c in BAD_ADDS])
def test_bad_docs_are_rejected_whole(session, case, body, message):
    if body is None:
        raw = (
            '{"docs": [{"id": "ok", "text": "a fine turn"}, {"id": "a", "text": "t", '
            '"embedding": [NaN' + ", 0.1" * 383 + "]}]}"
        )
        response = session.client.post(
            "/api/v1/sessions/s1/docs", raw, content_type="application/json"
        )
    else:
        response = session.post("/sessions/s1/docs", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"] == "invalid_input"
    assert message in response.json()["message"]
    assert_nothing_written()


def test_more_docs_than_a_call_may_carry_is_a_413_writing_nothing(session):
    """A 413, as more text than a call may carry is: the SDK halves the call on it."""
    response = session.post(
        "/sessions/s1/docs", {"docs": [{"id": f"d{n}", "text": "t"} for n in range(501)]}
    )
    assert response.status_code == 413, response.content
    assert response.json() == {
        "error": "too_large",
        "message": "501 docs in one call, the limit is 500 (MOSS_MAX_DOCS_PER_CALL); "
        "split the call",
    }
    assert_nothing_written()


BAD_QUERIES = [
    ({"query": "x", "top_k": 0}, "top_k: must be at least 1"),
    ({"query": "x", "top_k": 101}, "top_k: must be at most 100"),
    ({"query": "x", "alpha": 1.5}, "alpha: must be at most 1.0"),
    ({"query": ""}, "query: must not be empty"),
    ({"query": " "}, "query must not be empty"),
    ({"query": "x", "filter": {"channel": {"$regex": "a"}}}, "unknown filter operator '$regex'"),
    ({"query": "x", "filter": {"$not": {"a": "b"}}}, "unknown filter operator '$not'"),
    ({"query": "x", "filter": {"$and": {"a": "b"}}}, "$and takes a non-empty list"),
    ({"query": "x", "filter": {"a": {"$in": "b"}}}, "$in on 'a' takes a non-empty list"),
    ({"query": "x", "filter": {"a": {"$gt": [1]}}}, "$gt on 'a' takes a string or a number"),
    ({"query": "x", "filter": {"a": {}}}, "filter on 'a' has no operator"),
    ({"query": "x", "embedding": [1.0, 2.0]}, "embedding: has 2 items, at least 384 required"),
    ({"query": "x", "top_k": "many"}, "top_k"),
]


@pytest.mark.parametrize(("body", "message"), BAD_QUERIES)
def test_bad_queries_are_rejected(session, body, message):
    response = session.post("/sessions/s1/query", body)
    assert response.status_code == 422
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    "name", ["", "-starts-with-dash", "has space", "slash/name", "x" * 129, "nul\x00"]
)
def test_invalid_session_names_are_rejected(api, name):
    response = api.post("/sessions", {"name": name})
    assert response.status_code == 422
    assert "invalid session name" in response.json()["message"]
    assert not Session.objects.exists()


def test_malformed_json_is_a_clear_400(session):
    response = session.client.post(
        "/api/v1/sessions/s1/docs", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["message"] == "request body is not valid JSON"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/sessions/s1/docs", "GET, POST"),
        ("put", "/api/v1/sessions", "GET, POST"),
        ("get", "/api/v1/sessions/s1/push", "POST"),
    ],
)
def test_a_method_a_path_does_not_take_is_a_json_405(session, method, path, allowed):
    response = getattr(session.client, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json() == {
        "error": "method_not_allowed",
        "message": f"this path takes {allowed}",
    }


def test_an_unknown_handoff_target_is_rejected(session):
    response = session.post("/sessions/s1/push", {"to": "martians"})
    assert response.status_code == 422
    assert "to" in response.json()["message"]
    assert not Handoff.objects.exists()


@pytest.mark.parametrize("to", ["team", "user"])
def test_a_handoff_to_a_team_or_user_without_a_target_names_the_field(session, to):
    response = session.post("/sessions/s1/push", {"to": to})
    assert response.status_code == 422
    assert response.json()["message"] == f"a handoff to a {to} needs the {to}'s name in 'target'"
    assert not Handoff.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Project-Id": "proj_x"},
        {"X-Project-Key": "moss_x"},
        {"X-Project-Id": "proj_x", "X-Project-Key": "moss_wrong"},
    ],
)
def test_missing_or_wrong_keys_get_401(session, headers):
    response = Client(headers=headers).post(
        "/api/v1/sessions/s1/docs", {"docs": [OK_DOC]}, content_type="application/json"
    )
    assert response.status_code == 401
    assert "X-Project-Key" in response.json()["message"]
    assert not Turn.objects.exists()


def test_a_key_sent_with_another_project_s_id_is_a_401_that_writes_nothing(session, make_project):
    from sessions_app.services.projects import api_key_issue

    other, _ = make_project("Globex")
    api_key, raw_key = api_key_issue(project=session.project, label="fresh")
    mismatched = Client(headers={"X-Project-Id": other.public_id, "X-Project-Key": raw_key})
    assert mismatched.get("/api/v1/sessions/s1").status_code == 401
    api_key.refresh_from_db()
    assert api_key.last_used_at is None
    matched = Client(headers={"X-Project-Id": session.project.public_id, "X-Project-Key": raw_key})
    assert matched.get("/api/v1/sessions/s1").status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_revoked_key_gets_401(session):
    from sessions_app.services.projects import api_key_revoke

    api_key_revoke(api_key=session.project.api_keys.get())
    assert session.get("/sessions/s1").status_code == 401


def test_a_body_over_the_size_limit_is_a_json_413(session, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = session.post("/sessions/s1/docs", docs({"id": "a", "text": "y" * 3_000}))
    assert response.status_code == 413
    assert response.json()["message"] == "request body is larger than the limit of 2000 bytes"
    assert_nothing_written()


def test_a_full_call_with_client_embeddings_fits_the_default_limits(session):
    vector = [0.123456789] * 384
    full = {"docs": [{"id": f"d{n}", "text": "t" * 400, "embedding": vector} for n in range(500)]}
    response = session.post("/sessions/s1/docs", full)
    assert response.status_code == 200
    assert response.json()["added"] == 500
