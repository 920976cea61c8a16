"""Nothing crosses a project boundary: a foreign session looks exactly like a missing one."""

import pytest

from sessions_app.models import AuditEvent, Turn


@pytest.fixture
def foreign(other_api):
    other_api.post("/sessions", {"name": "secret", "metadata": {"customer_id": "c-1"}})
    other_api.post(
        "/sessions/secret/docs",
        {
            "docs": [
                {"id": "t1", "text": "The customer's card ends in 4242 and the refund is pending."}
            ]
        },
    )
    return other_api


CALLS = [
    ("get", "/sessions/{name}", None),
    ("delete", "/sessions/{name}", None),
    ("get", "/sessions/{name}/docs", None),
    ("post", "/sessions/{name}/docs", {"docs": [{"id": "x", "text": "injected"}]}),
    ("post", "/sessions/{name}/docs/delete", {"ids": ["t1"]}),
    ("post", "/sessions/{name}/query", {"query": "refund"}),
    ("post", "/sessions/{name}/push", {"to": "humans"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_another_projects_session_is_a_404_like_a_missing_one(api, foreign, method, path, body):
    def call(name):
        target = path.format(name=name)
        return getattr(api, method)(target, body) if body else getattr(api, method)(target)

    theirs, missing = call("secret"), call("no-such-session")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["message"].replace("secret", "X") == missing.json()["message"].replace(
        "no-such-session", "X"
    )
    assert Turn.objects.filter(session__name="secret").count() == 1
    assert not AuditEvent.objects.filter(project=api.project).exists()


def test_opening_the_same_name_makes_a_separate_session(api, foreign):
    body = api.post("/sessions", {"name": "secret"}).json()
    assert body["doc_count"] == 0
    assert api.post("/sessions/secret/query", {"query": "refund card"}).json()["docs"] == []


def test_listing_and_customer_queries_see_only_the_callers_project(api, foreign):
    assert api.get("/sessions").json()["sessions"] == []
    assert api.get("/sessions", customer_id="c-1").json()["sessions"] == []
    result = api.post("/query", {"customer_id": "c-1", "query": "refund"}).json()
    assert result["docs"] == []


def test_a_key_only_works_with_its_own_project_id(api, foreign):
    from django.test import Client

    crossed = Client(headers={"X-Project-Id": api.project.public_id, "X-Project-Key": foreign.key})
    assert crossed.get("/api/v1/sessions").status_code == 401
