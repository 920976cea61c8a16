"""GET /api/v1/sessions/{name}/brief: the handoff brief, per project, every item citing a turn."""

from sessions_app.models import AuditEvent

TURNS = [
    {
        "id": "t1",
        "text": "My order #A-88231 was charged twice, $49.99 each. Call me at (415) 555-0134.",
        "metadata": {"role": "customer", "channel": "sms", "author": "Jo", "device": "android"},
    },
    {
        "id": "t2",
        "text": "I've issued a refund of $49.99; you'll see it within 3-5 business days.",
        "metadata": {"role": "bot", "channel": "sms", "author": "sms-bot"},
    },
    {
        "id": "t3",
        "text": "It has not arrived and I want to speak to a person.",
        "metadata": {"role": "customer", "channel": "chat", "author": "Jo", "device": "web"},
    },
]


def escalated(api, name="conv-1"):
    api.post("/sessions", {"name": name})
    api.post(f"/sessions/{name}/docs", {"docs": TURNS})
    api.post(
        f"/sessions/{name}/push",
        {
            "to": "humans",
            "reason": "refund has not arrived, asks for a person",
            "from_agent": "chat-bot",
        },
    )


def test_the_brief_cites_a_turn_for_every_item(api):
    escalated(api)
    response = api.get("/sessions/conv-1/brief")
    assert response.status_code == 200
    brief = response.json()

    assert brief["session"] == "conv-1"
    assert brief["status"] == "waiting"
    assert brief["escalation"]["reason"] == "refund has not arrived, asks for a person"
    assert brief["escalation"]["to"] == {"kind": "humans", "target": ""}
    assert brief["escalation"]["turn"] == "t3"
    assert brief["problem"]["turn"] == "t3"
    assert brief["problem"]["method"] == "semantic"
    assert [(p["turn"], p["seq"]) for p in brief["promises"]] == [("t2", 2)]
    assert "refund" in brief["promises"][0]["topics"]
    facts = {(f["kind"], f["value"]): f["turns"] for f in brief["facts"]}
    assert facts == {
        ("amount", "$49.99"): ["t1", "t2"],
        ("order", "A-88231"): ["t1"],
        ("phone", "(415) 555-0134"): ["t1"],
        ("date", "within 3-5 business days"): ["t2"],
    }
    path = brief["path"]
    assert path["channels"] == ["sms", "chat"]
    assert path["devices"] == ["android", "web"]
    assert [(s["channel"], s["turn"], s["last_turn"]) for s in path["segments"]] == [
        ("sms", "t1", "t2"),
        ("chat", "t3", "t3"),
    ]
    assert path["handoffs"][0]["turn"] == "t3"
    assert path["waiting_seconds"] >= 0
    assert brief["built_in_ms"] > 0


def test_reading_the_brief_is_audited_like_reading_the_thread(api):
    escalated(api)
    api.client.get("/api/v1/sessions/conv-1/brief", headers={"X-Agent": "triage-bot"})
    event = AuditEvent.objects.get(kind="session.brief_read")
    assert event.actor_label == "triage-bot"


def test_another_projects_session_is_a_404_like_a_missing_one(api, other_api):
    escalated(other_api, "secret")
    theirs = api.get("/sessions/secret/brief")
    missing = api.get("/sessions/no-such-session/brief")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {"error": "not_found", "message": "session 'secret' not found"}
    assert not AuditEvent.objects.filter(project=api.project).exists()


def test_the_same_name_in_another_project_has_its_own_brief(api, other_api):
    escalated(other_api, "conv-1")
    api.post("/sessions", {"name": "conv-1"})
    brief = api.get("/sessions/conv-1/brief").json()
    assert (brief["escalation"], brief["problem"], brief["facts"], brief["promises"]) == (
        None,
        None,
        [],
        [],
    )


def test_a_bad_name_or_key_is_refused_before_anything_is_read(api, client):
    bad = api.get("/sessions/bad%20name!/brief")
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input"
    assert "name" in bad.json()["message"]
    stranger = client.get("/api/v1/sessions/conv-1/brief")
    assert stranger.status_code == 401
    assert not AuditEvent.objects.filter(kind="session.brief_read").exists()
