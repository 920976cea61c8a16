"""What one call may make the server do is capped: filter conditions and nesting, and the
text of one add_docs call. Over a limit is a 4xx naming the setting, and nothing is written."""

from __future__ import annotations

import pytest

from sessions_app.models import AuditEvent, Turn


@pytest.fixture
def s1(api):
    api.post("/sessions", {"name": "s1"})
    docs = [
        {"id": f"t{n}", "text": f"turn number {n}", "metadata": {"n": str(n)}} for n in range(3)
    ]
    api.post("/sessions/s1/docs", {"docs": docs})
    return api


def query(api, spec):
    return api.post("/sessions/s1/query", {"query": "turn", "alpha": 0.0, "filter": spec})


def conditions(count):
    return {"$or": [{"n": str(n)} for n in range(count)]}


def nested(depth):
    spec: dict[str, object] = {"n": "1"}
    for _ in range(depth):
        spec = {"$and": [spec]}
    return spec


def test_a_filter_with_300000_or_clauses_is_refused_naming_the_limit(s1):
    response = query(s1, conditions(300_000))
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_input",
        "message": "filter has more than 100 conditions (each $in / $nin value counts as one); "
        "the limit is MOSS_MAX_FILTER_CLAUSES=100",
    }


def test_filter_conditions_up_to_the_limit_are_accepted(s1):
    response = query(s1, conditions(100))
    assert response.status_code == 200
    assert sorted(doc["id"] for doc in response.json()["docs"]) == ["t0", "t1", "t2"]
    assert query(s1, conditions(101)).status_code == 422


def test_each_in_value_counts_as_a_condition(s1, settings):
    settings.MOSS_MAX_FILTER_CLAUSES = 3
    ok = query(s1, {"$and": [{"n": {"$in": ["1", "2"]}}, {"n": {"$ne": "2"}}]})
    assert [doc["id"] for doc in ok.json()["docs"]] == ["t1"]
    over = query(s1, {"$and": [{"n": {"$nin": ["0", "1", "2"]}}, {"n": {"$ne": "2"}}]})
    assert over.status_code == 422
    assert "MOSS_MAX_FILTER_CLAUSES=3" in over.json()["message"]


def test_filter_nesting_is_capped(s1):
    assert query(s1, nested(8)).status_code == 200
    response = query(s1, nested(9))
    assert response.status_code == 422
    assert (
        "nested more than 8 levels deep; the limit is MOSS_MAX_FILTER_DEPTH=8"
        in (response.json()["message"])
    )


def test_a_filter_nested_deeper_than_json_parsing_allows_is_a_4xx(s1):
    raw = '{"query": "x", "filter": ' + '{"$and": [' * 5000 + "{}" + "]}" * 5000 + "}"
    response = s1.client.post("/api/v1/sessions/s1/query", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"


def test_an_add_call_over_the_text_limit_is_a_413_and_writes_nothing(s1, settings):
    settings.MOSS_MAX_CALL_TEXT_CHARS = 100
    AuditEvent.objects.all().delete()
    docs = [{"id": "a", "text": "x" * 60}, {"id": "b", "text": "y" * 41}]
    response = s1.post("/sessions/s1/docs", {"docs": docs})
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "message": "the docs of this call have 101 characters of text in all, the limit is "
        "MOSS_MAX_CALL_TEXT_CHARS=100; split them into several calls",
    }
    assert Turn.objects.count() == 3
    assert not AuditEvent.objects.exists()


def test_an_add_call_at_the_text_limit_is_accepted(s1, settings):
    settings.MOSS_MAX_CALL_TEXT_CHARS = 100
    docs = [{"id": "a", "text": "x" * 60}, {"id": "b", "text": "y" * 40}]
    response = s1.post("/sessions/s1/docs", {"docs": docs})
    assert response.status_code == 200
    assert response.json()["added"] == 2


def test_deleting_more_ids_than_one_call_carries_is_rejected(s1):
    response = s1.post("/sessions/s1/docs/delete", {"ids": [f"x{n}" for n in range(501)]})
    assert response.status_code == 422
    assert response.json()["message"] == "ids: has 501 items, the limit is 500"
    assert Turn.objects.count() == 3
