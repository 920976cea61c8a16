from sessions_app.models import AuditEvent, Handoff


def test_push_records_a_handoff_to_a_bot(api):
    api.post("/sessions", {"name": "conv-1"})
    api.post("/sessions/conv-1/docs", {"docs": [{"id": "t1", "text": "hello"}]})
    response = api.post(
        "/sessions/conv-1/push",
        {
            "to": "bot",
            "target": "chat-bot",
            "from_agent": "voice-bot",
            "from_channel": "voice",
            "reason": "call ended",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["index_name"] == "conv-1"
    assert body["doc_count"] == 1
    assert body["status"] == "bot"
    assert body["version"] == 1
    handoff = Handoff.objects.get()
    assert str(handoff.job_id) == body["job_id"]
    assert (handoff.from_agent, handoff.from_channel, handoff.to_target, handoff.last_seq) == (
        "voice-bot",
        "voice",
        "chat-bot",
        1,
    )
    session = api.get("/sessions/conv-1").json()
    assert session["holder"] == "chat-bot"
    assert session["version"] == 1


def test_push_with_no_body_is_a_plain_handoff(api):
    api.post("/sessions", {"name": "conv-1"})
    body = api.post("/sessions/conv-1/push", {}).json()
    assert (body["status"], body["version"]) == ("bot", 1)


def test_push_to_humans_puts_the_session_in_the_queue(api):
    api.post("/sessions", {"name": "conv-1"})
    body = api.post("/sessions/conv-1/push", {"to": "humans", "reason": "upset"}).json()
    assert body["status"] == "waiting"
    assert [s["name"] for s in api.get("/sessions", status="waiting").json()["sessions"]] == [
        "conv-1"
    ]
    assert AuditEvent.objects.filter(kind="escalated", data__reason="upset").exists()


def test_push_to_a_team_needs_a_team_of_the_project(api, other_api):
    from sessions_app.models import Team

    Team.objects.create(project=other_api.project, name="billing")
    api.post("/sessions", {"name": "conv-1"})
    response = api.post("/sessions/conv-1/push", {"to": "team", "target": "billing"})
    assert response.status_code == 422
    assert "no team named 'billing'" in response.json()["message"]
    assert api.get("/sessions/conv-1").json()["version"] == 0
    Team.objects.create(project=api.project, name="billing")
    assert (
        api.post("/sessions/conv-1/push", {"to": "team", "target": "billing"}).json()["status"]
        == "waiting"
    )


def test_push_to_a_named_specialist_needs_a_member(api, make_user):
    make_user("ana", api.project, "agent")
    make_user("outsider")
    api.post("/sessions", {"name": "conv-1"})
    assert (
        api.post("/sessions/conv-1/push", {"to": "user", "target": "outsider"}).status_code == 422
    )
    assert api.post("/sessions/conv-1/push", {"to": "user", "target": "ana"}).status_code == 200


def test_versions_count_handoffs(api):
    api.post("/sessions", {"name": "conv-1"})
    versions = [api.post("/sessions/conv-1/push", {}).json()["version"] for _ in range(3)]
    assert versions == [1, 2, 3]
