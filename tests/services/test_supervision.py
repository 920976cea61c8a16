"""A supervisor on a held session: take over, reassign, release; each audited and logged."""

import pytest

from sessions_app.actors import Actor
from sessions_app.errors import Conflict, InvalidInput, PermissionDenied
from sessions_app.models import AuditEvent, Event, SessionStatus
from sessions_app.services.handoffs import session_claim, session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.supervision import (
    session_reassign,
    session_release,
    session_take_over,
)


@pytest.fixture
def held(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    sue = make_user("sue", project, role="supervisor")
    make_user("bo", project, teams=("billing",))
    bot = Actor.for_key(project.api_keys.get(), agent="chat-bot")
    session, _ = session_open(project=project, name="conv-1", actor=bot)
    session_push(session=session, actor=bot, to_kind="humans", reason="refund")
    session_claim(session=session, user=ana)
    return session, ana, sue


def test_take_over_makes_the_supervisor_the_holder(held):
    session, _ana, sue = held

    handoff = session_take_over(session=session, supervisor=sue, note="ana went home")

    session.refresh_from_db()
    assert session.status == SessionStatus.HELD
    assert session.holder == sue and session.holder_label == "sue"
    assert handoff.claimed_by == sue and handoff.from_agent == "sue"
    audit = AuditEvent.objects.get(session=session, kind="taken_over")
    assert audit.actor_user == sue
    assert audit.data["taken_from"] == "ana" and audit.data["supervisor"] == "sue"
    event = Event.objects.get(type="session.taken_over")
    assert event.actor_name == "sue"
    assert event.session_state["holder"] == "sue" and event.session_state["status"] == "held"


def test_reassign_routes_the_escalation_to_a_team(held):
    session, _ana, sue = held

    session_reassign(session=session, supervisor=sue, to_kind="team", to_target="billing")

    session.refresh_from_db()
    assert session.status == SessionStatus.WAITING
    assert session.holder is None and session.queue_team.name == "billing"
    assert AuditEvent.objects.get(kind="reassigned").data["taken_from"] == "ana"
    assert Event.objects.filter(type="session.reassigned").exists()


def test_reassign_to_a_named_specialist_and_refuses_strangers(held):
    session, ana, sue = held
    with pytest.raises(InvalidInput, match="no specialist named 'nobody'"):
        session_reassign(session=session, supervisor=sue, to_kind="user", to_target="nobody")
    with pytest.raises(InvalidInput):
        session_reassign(session=session, supervisor=sue, to_kind="bot", to_target="x")
    session.refresh_from_db()
    assert session.holder == ana

    session_reassign(session=session, supervisor=sue, to_kind="user", to_target="bo")
    session.refresh_from_db()
    assert session.queue_user.username == "bo"


def test_release_puts_it_back_in_the_queue_for_anyone(held):
    session, _ana, sue = held

    session_release(session=session, supervisor=sue)

    session.refresh_from_db()
    assert session.status == SessionStatus.WAITING
    assert session.queue_team is None and session.queue_user is None
    assert AuditEvent.objects.get(kind="released").actor_label == "sue"
    assert Event.objects.filter(type="session.released").exists()


def test_only_supervisors_may_and_only_on_a_held_session(held, make_user):
    session, ana, sue = held
    max_ = make_user("max", session.project, role="admin")
    bo = session.project.memberships.get(user__username="bo").user
    with pytest.raises(PermissionDenied):
        session_take_over(session=session, supervisor=bo)
    with pytest.raises(PermissionDenied):
        session_release(session=session, supervisor=ana)
    session_take_over(session=session, supervisor=sue)
    with pytest.raises(Conflict, match="already"):
        session_take_over(session=session, supervisor=sue)
    session_release(session=session, supervisor=max_)
    with pytest.raises(Conflict, match="not held"):
        session_take_over(session=session, supervisor=sue)
