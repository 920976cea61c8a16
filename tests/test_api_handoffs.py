"""The return path, readable: handoff history, the session's last handoff, forced take-over."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.models import AuditEvent, Event
from sessions_app.selectors import session_get
from sessions_app.services.handoffs import session_claim, session_hand_back


def escalate_and_claim(api, user):
    api.post("/sessions", {"name": "conv-1"})
    api.post(
        "/sessions/conv-1/push",
        {
            "to": "humans",
            "reason": "wants a refund",
            "from_agent": "sms-bot",
            "from_channel": "sms",
        },
    )
    session_claim(session=session_get(project=api.project, name="conv-1"), user=user)


def test_handoff_history_shows_who_handed_to_whom_and_why(api, make_user):
    ana = make_user("ana", api.project)
    escalate_and_claim(api, ana)
    session_hand_back(
        session=session_get(project=api.project, name="conv-1"),
        user=ana,
        bot="sms-bot",
        note="I've reversed the fee",
    )
    response = api.get("/sessions/conv-1/handoffs")
    assert response.status_code == 200
    handoffs = response.json()["handoffs"]
    assert [(h["version"], h["to"]["kind"], h["to"]["target"]) for h in handoffs] == [
        (1, "humans", ""),
        (2, "bot", "sms-bot"),
    ]
    escalation, hand_back = handoffs
    assert escalation["from_agent"] == "sms-bot"
    assert escalation["from_channel"] == "sms"
    assert escalation["reason"] == "wants a refund"
    assert escalation["actor"]["kind"] == "bot"
    assert escalation["claimed_by"] == "ana"
    assert escalation["claimed_at"] is not None
    assert hand_back["reason"] == "I've reversed the fee"
    assert hand_back["actor"] == {"kind": "user", "name": "ana"}
    assert hand_back["from_channel"] == "console"


def test_the_session_carries_its_last_handoff(api, make_user):
    api.post("/sessions", {"name": "conv-1"})
    assert api.get("/sessions/conv-1").json()["last_handoff"] is None
    api.post("/sessions/conv-1/push", {"to": "humans", "reason": "angry"})
    session = api.get("/sessions/conv-1").json()
    assert session["last_handoff"]["reason"] == "angry"
    assert session["last_handoff"]["version"] == 1
    listed = api.get("/sessions").json()["sessions"]
    assert listed[0]["last_handoff"]["to"] == {"kind": "humans", "target": ""}


def test_handoff_history_pages(api):
    api.post("/sessions", {"name": "conv-1"})
    for _ in range(3):
        api.post("/sessions/conv-1/push", {})
    first = api.get("/sessions/conv-1/handoffs", limit=2).json()
    assert [h["version"] for h in first["handoffs"]] == [1, 2]
    rest = api.get("/sessions/conv-1/handoffs", limit=2, cursor=first["next_cursor"]).json()
    assert [h["version"] for h in rest["handoffs"]] == [3]
    assert rest["next_cursor"] is None


def test_handoffs_of_another_projects_session_are_not_found(api, other_api):
    other_api.post("/sessions", {"name": "conv-1"})
    response = api.get("/sessions/conv-1/handoffs")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_bot_cannot_push_a_session_a_specialist_holds(api, make_user):
    escalate_and_claim(api, make_user("ana", api.project))
    response = api.post("/sessions/conv-1/push", {"to": "bot", "target": "sms-bot"})
    assert response.status_code == 409
    assert "ana holds conv-1" in response.json()["message"]
    assert "force" in response.json()["message"]
    session = api.get("/sessions/conv-1").json()
    assert (session["status"], session["holder"], session["version"]) == ("held", "ana", 1)


def test_a_forced_push_takes_the_session_over_and_says_so(api, make_user):
    escalate_and_claim(api, make_user("ana", api.project))
    response = api.post("/sessions/conv-1/push", {"to": "bot", "target": "sms-bot", "force": True})
    assert response.status_code == 200
    assert response.json()["status"] == "bot"
    audit = AuditEvent.objects.get(kind="handoff")
    assert audit.data["taken_over_from"] == "ana"
    event = Event.objects.get(type="session.pushed")
    assert event.data["forced"] is True
    assert event.data["taken_over_from"] == "ana"


def test_a_customer_turn_through_the_api_reopens_a_resolved_session(api, make_user):
    from sessions_app.services.handoffs import session_resolve

    ana = make_user("ana", api.project)
    escalate_and_claim(api, ana)
    session_resolve(session=session_get(project=api.project, name="conv-1"), user=ana, note="ok")
    api.post(
        "/sessions/conv-1/docs",
        {"docs": [{"id": "c9", "text": "Still broken", "metadata": {"role": "customer"}}]},
    )
    session = api.get("/sessions/conv-1").json()
    assert session["status"] == "waiting"
    assert session["last_handoff"]["reason"] == "the customer wrote after the session was resolved"


def test_a_sessions_last_handoff_is_read_in_one_query(
    api, make_user, django_assert_max_num_queries
):
    """Opening or reading a handed-over session reads its last handoff with the people it
    names at once; the list reads the same count of queries whatever its page holds."""
    ana = make_user("ana", api.project)
    escalate_and_claim(api, ana)
    # The key, the session (with its audit row), the handoff with who made and claimed it.
    with django_assert_max_num_queries(3):
        opened = api.post("/sessions", {"name": "conv-1"}).json()
    with django_assert_max_num_queries(3):
        read = api.get("/sessions/conv-1").json()
    for body in (opened, read):
        assert body["last_handoff"]["claimed_by"] == "ana"
        assert body["last_handoff"]["actor"] == {"kind": "bot", "name": "sms-bot"}

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/sessions").status_code == 200
        return len(captured.captured_queries)

    one = list_queries()
    for n in range(3):
        api.post("/sessions", {"name": f"more-{n}"})
        api.post(f"/sessions/more-{n}/push", {"to": "humans", "from_agent": "sms-bot"})
    assert len(api.get("/sessions").json()["sessions"]) == 4
    assert list_queries() == one


JOB_ID = "5b1f0d2e-8c1a-4f3e-9d2b-7a6c5e4f3a21"
PUSH = {"to": "humans", "reason": "wants a refund", "from_channel": "sms", "job_id": JOB_ID}


def test_a_push_sent_again_with_its_job_id_is_recorded_once(api, make_user):
    """A push whose answer was lost (or that got a 503 after its commit) is sent again
    as it was: the second answers with the first's handoff and records nothing, even
    once a specialist has claimed the session (no 409, no second escalation)."""
    api.post("/sessions", {"name": "conv-1"})
    first = api.post("/sessions/conv-1/push", PUSH)
    assert first.status_code == 200
    assert first.json()["job_id"] == JOB_ID
    session_claim(
        session=session_get(project=api.project, name="conv-1"), user=make_user("ana", api.project)
    )

    again = api.post("/sessions/conv-1/push", PUSH)
    assert again.status_code == 200
    assert again.json()["job_id"] == JOB_ID
    assert again.json()["version"] == first.json()["version"] == 1
    assert again.json()["status"] == "held"
    assert Event.objects.filter(type="session.escalated").count() == 1
    assert AuditEvent.objects.filter(kind="escalated").count() == 1
    assert len(api.get("/sessions/conv-1/handoffs").json()["handoffs"]) == 1


def test_a_job_id_used_for_another_push_is_a_conflict_that_writes_nothing(api, other_api):
    api.post("/sessions", {"name": "conv-1"})
    api.post("/sessions", {"name": "conv-2"})
    assert api.post("/sessions/conv-1/push", PUSH).status_code == 200
    other_reason = api.post("/sessions/conv-1/push", {**PUSH, "reason": "something else"})
    other_session = api.post("/sessions/conv-2/push", PUSH)
    other_api.post("/sessions", {"name": "conv-1"})
    other_project = other_api.post("/sessions/conv-1/push", PUSH)
    for response in (other_reason, other_session, other_project):
        assert response.status_code == 409
        message = response.json()["message"]
        assert message == f"job_id {JOB_ID} was already used for another push; send a new one"
    assert Event.objects.filter(type="session.escalated").count() == 1
    assert api.get("/sessions/conv-2").json()["status"] == "bot"


def test_a_job_id_that_is_not_a_uuid_is_refused(api):
    api.post("/sessions", {"name": "conv-1"})
    response = api.post("/sessions/conv-1/push", {**PUSH, "job_id": "job-1"})
    assert response.status_code == 422
    assert "job_id" in response.json()["message"]
    assert not Event.objects.filter(type="session.escalated").exists()
