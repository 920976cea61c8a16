"""The timeline, the as-received thread and the exports, against the scripted history."""

import csv
import io
import json
import re

import pytest
from django.test import Client

from sessions_app.actors import Actor
from sessions_app.models import AuditEvent
from sessions_app.services import timeline
from sessions_app.services.timeline import as_received_build, timeline_build
from sessions_app.services.turns import DocInput, turns_upsert
from tests.supervise_history import History, history_build

CONV1_ORDER = [
    "session.created",
    "turns.added",
    "t1",
    "t2",
    "handoff",
    "session.opened",
    "turns.added",
    "t3",
    "escalated",
    "claimed",
    "turns.added",
    "t4",
    "handed_back",
    "turns.added",
    "t5",
    "escalated",
    "claimed",
    "resolved",
]


@pytest.fixture
def history(db: None) -> History:
    return history_build()


@pytest.fixture
def sam(history: History) -> Client:
    client = Client()
    client.force_login(history.users["sam"])
    return client


def test_timeline_lists_every_event_and_turn_in_order(history: History) -> None:
    entries = timeline_build(session=history.conv1)
    assert [e.doc_id or e.kind for e in entries] == CONV1_ORDER
    times = [e.at for e in entries if not e.is_turn]
    assert times == sorted(times)


def test_timeline_says_who_acted_through_which_key_or_user(history: History) -> None:
    entries = {(e.kind, e.doc_id): e for e in timeline_build(session=history.conv1)}
    assert entries[("session.created", "")].who == "voice-bot (key default)"
    assert entries[("session.created", "")].channel == "voice"
    assert entries[("session.created", "")].device == "phone"
    assert entries[("turn", "t4")].who == "ana"
    assert entries[("turn", "t4")].channel == "email"
    assert entries[("turn", "t3")].who == "Dana via chat-bot (key default)"
    assert entries[("turn", "t3")].device == "laptop"
    assert entries[("resolved", "")].who == "ben"
    # A bot's own turn is not "voice-bot via voice-bot".
    assert entries[("turn", "t2")].who == "voice-bot (key default)"


def test_timeline_gaps_are_measured_from_the_previous_entry(history: History) -> None:
    entries = timeline_build(session=history.conv1)
    assert entries[0].gap_seconds is None
    assert all(e.gap_seconds is not None and e.gap_seconds >= 0 for e in entries[1:])
    claimed = next(i for i, e in enumerate(entries) if e.kind == "claimed")
    expected = (entries[claimed].at - entries[claimed - 1].at).total_seconds()
    assert entries[claimed].gap_seconds == pytest.approx(expected)


def test_as_received_shows_the_thread_at_the_escalation_with_later_turns_marked(
    history: History,
) -> None:
    received = as_received_build(session=history.conv1, version=2)
    assert [t.doc_id for t in received.turns] == ["t1", "t2", "t3", "t4", "t5"]
    assert received.after == {4, 5}
    assert received.received_count == 3
    assert received.handoff.to_kind == "humans"


def test_as_received_at_the_last_handoff_has_nothing_after(history: History) -> None:
    received = as_received_build(session=history.conv1, version=4)
    assert received.after == set()
    assert received.received_count == 5


def test_as_received_page_marks_the_turns_added_after_the_handoff(
    history: History, sam: Client
) -> None:
    response = sam.get(f"/supervise/p/{history.project.public_id}/s/conv-1/received/2/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Added after this handoff" in body
    assert body.count('class="thread-turn after-handoff"') == 2
    assert body.index('id="turn-3"') < body.index("Added after this handoff")
    assert body.index("Added after this handoff") < body.index('id="turn-4"')


def test_as_received_pages_the_thread_and_the_handoff_links(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 10k-turn session's page rendered every turn (2.3 MB at 5k), and every page of a
    session listed a link per handoff. Both are pages now."""
    monkeypatch.setattr(timeline, "RECEIVED_PAGE", 2)
    monkeypatch.setattr(timeline, "HANDOFF_LINKS", 2)
    first = as_received_build(session=history.conv1, version=2)
    assert [t.seq for t in first.turns] == [2, 3, 4, 5]
    assert (first.received_count, first.after_count, first.earlier_before) == (3, 2, 2)
    assert first.after == {4, 5} and first.divider_before == 4 and first.after_hidden == 0
    earlier = as_received_build(session=history.conv1, version=2, before=2)
    assert [t.seq for t in earlier.turns] == [1]
    assert (earlier.earlier_before, earlier.after, earlier.after_hidden) == (None, set(), 2)

    base = f"/supervise/p/{history.project.public_id}/s/conv-1/received"
    body = sam.get(f"{base}/3/").content.decode()
    assert [int(v) for v in re.findall(r'received/(\d+)/"', body)] == [2, 3, 4, 5]
    assert 'rel="prev">… earlier' in body and 'rel="next">later …' in body
    page = sam.get(f"{base}/2/", {"before": "2"}).content.decode()
    assert 'id="turn-1"' in page and 'id="turn-2"' not in page
    assert "Back to the handoff point" in page
    assert sam.get(f"{base}/2/", {"before": "x"}).status_code == 404


def test_timeline_page_anchors_each_turn_and_links_each_handoff(
    history: History, sam: Client
) -> None:
    pid = history.project.public_id
    body = sam.get(f"/supervise/p/{pid}/s/conv-1/").content.decode()
    for seq in range(1, 6):
        assert f'id="turn-{seq}"' in body
    for version in range(1, 6):
        assert f"/supervise/p/{pid}/s/conv-1/received/{version}/" in body
    assert 'data-channel="voice"' in body and 'data-channel="email"' in body
    assert "<svg" in body and body.count("<circle") == len(CONV1_ORDER)
    assert f"/console/p/{pid}/s/conv-1/" in body


def test_jsonl_export_holds_the_timeline_in_order(history: History, sam: Client) -> None:
    response = sam.get(f"/supervise/p/{history.project.public_id}/s/conv-1/export.jsonl")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert 'filename="conv-1-timeline.jsonl"' in response["Content-Disposition"]
    rows = [json.loads(line) for line in response.getvalue().splitlines()]
    assert [r["doc_id"] or r["kind"] for r in rows] == CONV1_ORDER
    t4 = next(r for r in rows if r["doc_id"] == "t4")
    assert t4["text"] == "Refund issued March 4th."
    assert t4["channel"] == "email" and t4["seq"] == 4
    escalated = next(r for r in rows if r["kind"] == "escalated")
    assert escalated["data"]["to_kind"] == "humans"
    assert escalated["data"]["reason"] == "wants a person"
    assert AuditEvent.objects.filter(pk=escalated["audit_id"], kind="escalated").exists()


def test_csv_export_has_a_header_and_one_row_per_entry(history: History, sam: Client) -> None:
    response = sam.get(f"/supervise/p/{history.project.public_id}/s/conv-1/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = response.getvalue().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["doc_id"] or r["kind"] for r in rows] == CONV1_ORDER
    handed_back = next(r for r in rows if r["kind"] == "handed_back")
    assert handed_back["who"] == "ana"
    assert json.loads(handed_back["data"])["to"] == "chat-bot"
    assert next(r for r in rows if r["doc_id"] == "t1")["text"] == "I was charged twice for $49.99."


def test_exports_only_read(history: History, sam: Client) -> None:
    before = AuditEvent.objects.count()
    sam.get(f"/supervise/p/{history.project.public_id}/s/conv-1/export.csv")
    assert AuditEvent.objects.count() == before
    response = sam.post(f"/supervise/p/{history.project.public_id}/s/conv-1/export.csv")
    assert response.status_code == 405


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_csv_export_turns_cells_a_spreadsheet_would_run_into_text(
    history: History, sam: Client
) -> None:
    bot = Actor.system("=cmd|'/C calc'!A0")
    docs = [
        DocInput(id=f"f{n}", text=text, metadata={"author": "@evil", "device": "+phone"})
        for n, text in enumerate(FORMULAS)
    ]
    turns_upsert(session=history.conv1, docs=docs, actor=bot)
    url = f"/supervise/p/{history.project.public_id}/s/conv-1/export"
    rows = list(csv.DictReader(io.StringIO(sam.get(url + ".csv").getvalue().decode())))
    # No cell starts a formula; each dangerous one reads back as its text behind an apostrophe.
    cells = [value for row in rows for value in row.values() if value]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    turns = {r["doc_id"]: r for r in rows if r["doc_id"].startswith("f")}
    assert [turns[f"f{n}"]["text"] for n in range(len(FORMULAS))] == ["'" + f for f in FORMULAS]
    assert {(r["device"], r["who"]) for r in turns.values()} == {
        ("'+phone", "'@evil via =cmd|'/C calc'!A0")
    }
    assert any(r["who"] == "'=cmd|'/C calc'!A0" for r in rows if r["kind"] == "turns.added")
    # Ordinary values are untouched, and the JSON Lines export keeps the text exactly.
    assert next(r for r in rows if r["doc_id"] == "t1")["text"] == "I was charged twice for $49.99."
    jsonl = [json.loads(line) for line in sam.get(url + ".jsonl").getvalue().decode().splitlines()]
    assert [r["text"] for r in jsonl if r["doc_id"].startswith("f")] == FORMULAS
