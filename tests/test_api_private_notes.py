"""The API leaves the specialists' private notes out unless the bot asks (include_internal)."""

import pytest

from sessions_app.models import Session
from sessions_app.services.console import console_note


@pytest.fixture
def with_note(api, make_user):
    api.post("/sessions", {"name": "conv-1", "metadata": {"customer_id": "c-9"}})
    api.post(
        "/sessions/conv-1/docs",
        {"docs": [{"id": "t1", "text": "Where is my parcel?", "metadata": {"role": "customer"}}]},
    )
    ana = make_user("ana", api.project)
    session = Session.objects.get(project=api.project, name="conv-1")
    note_id = console_note(session=session, user=ana, text="Depot 7 lost the parcel, refund it")
    return api, note_id


def test_reads_leave_notes_out_by_default(with_note):
    api, note_id = with_note

    thread = api.get("/sessions/conv-1/docs").json()
    by_id = api.get("/sessions/conv-1/docs", ids=[note_id, "t1"]).json()
    session = api.get("/sessions/conv-1").json()

    assert [d["id"] for d in thread["docs"]] == ["t1"]
    assert [d["id"] for d in by_id["docs"]] == ["t1"]
    assert session["doc_count"] == 1


def test_reads_include_notes_when_asked(with_note):
    api, note_id = with_note

    thread = api.get("/sessions/conv-1/docs", include_internal="true").json()

    assert [(d["id"], d["internal"]) for d in thread["docs"]] == [("t1", False), (note_id, True)]


@pytest.mark.parametrize("path", ["/sessions/conv-1/query", "/query"])
def test_queries_leave_notes_out_unless_asked(with_note, path):
    api, note_id = with_note
    body = {"query": "depot refund", "top_k": 5, "customer_id": "c-9"}
    if path != "/query":
        del body["customer_id"]

    hidden = api.post(path, body).json()
    shown = api.post(path, {**body, "include_internal": True}).json()

    assert note_id not in [d["id"] for d in hidden["docs"]]
    assert not any(d["internal"] for d in hidden["docs"])
    assert {"id": note_id, "internal": True}.items() <= next(
        d for d in shown["docs"] if d["id"] == note_id
    ).items()


def test_notes_are_not_in_the_event_stream(with_note):
    api, _ = with_note

    events = api.get("/events").json()["events"]

    assert all("Depot 7" not in str(event["data"]) for event in events)
    assert [e["type"] for e in events] == ["session.created", "turn.added"]


def test_a_bot_cannot_overwrite_a_note_by_its_id(with_note):
    api, note_id = with_note

    response = api.post("/sessions/conv-1/docs", {"docs": [{"id": note_id, "text": "gone"}]})

    assert response.status_code == 409
    assert "in use by another turn" in response.json()["message"]
