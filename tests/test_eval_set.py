"""The labelled eval set (eval/sessions/) keeps the shape scripts/eval.py and the brief rely on."""

import json
from pathlib import Path

import pytest

SESSIONS = sorted((Path(__file__).resolve().parent.parent / "eval" / "sessions").glob("*.json"))
FACT_KINDS = {"amount", "order", "case", "ticket", "invoice", "date", "email", "phone"}


def test_the_set_has_enough_sessions_questions_and_a_held_out_split():
    sessions = [json.loads(path.read_text()) for path in SESSIONS]
    assert len(sessions) >= 30
    assert sum(len(s["questions"]) for s in sessions) >= 120
    held_out = sum(s["split"] == "test" for s in sessions)
    assert 0.2 <= held_out / len(sessions) <= 0.3
    channels = {t["metadata"]["channel"] for s in sessions for t in s["turns"]}
    assert channels == {"voice", "chat", "email", "sms"}


@pytest.mark.parametrize("path", SESSIONS, ids=lambda path: path.stem)
def test_every_label_points_at_a_turn_that_carries_it(path):
    session = json.loads(path.read_text())
    assert session["name"] == path.stem
    assert session["split"] in {"tune", "test"}
    texts = {turn["id"]: turn["text"] for turn in session["turns"]}
    assert len(texts) == len(session["turns"]), "turn ids are unique"
    for turn in session["turns"]:
        assert turn["metadata"]["role"] in {"customer", "bot", "agent"}
        assert turn["metadata"]["channel"] in {"voice", "chat", "email", "sms"}
        assert turn["metadata"]["author"]
    assert session["escalation"]["reason"]
    assert session["escalation"]["after_turn"] in texts
    for question in session["questions"]:
        assert question["q"] and question["relevant"]
        assert set(question["relevant"]) <= texts.keys(), question
    for fact in session["facts"]:
        assert fact["kind"] in FACT_KINDS
        assert fact["value"] in texts[fact["turn"]], fact
    assert set(session["promises"]) <= texts.keys()
