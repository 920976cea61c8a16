"""Routing is enforced on claim: a team's escalation goes to its members, a named
specialist's to them; supervisors and admins may override, and the override is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessions_app.errors import PermissionDenied
from sessions_app.models import AuditEvent, Session
from sessions_app.services.handoffs import session_claim
from tests.conftest import ApiClient
from tests.test_console_views import HTMX, escalate, logged_in, session_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(api: ApiClient, make_user: Callable[..., Any]) -> dict[str, Any]:
    return {
        "ana": make_user("ana", api.project, teams=("billing",)),
        "ben": make_user("ben", api.project, teams=("technical",)),
        "sam": make_user("sam", api.project, role="supervisor"),
        "root": make_user("root", api.project, role="admin"),
    }


def _claim_event(name: str) -> AuditEvent:
    return AuditEvent.objects.get(kind="claimed", session_name=name)


def test_an_agent_outside_the_team_cannot_claim_its_escalation(
    api: ApiClient, people: dict[str, Any]
) -> None:
    escalate(api, to="team", target="billing")
    session = Session.objects.get(name="conv-1")
    with pytest.raises(PermissionDenied, match="routed to team billing"):
        session_claim(session=session, user=people["ben"])
    session.refresh_from_db()
    assert session.status == "waiting" and session.holder is None
    assert not AuditEvent.objects.filter(kind="claimed").exists()


def test_a_team_member_claims_without_an_override(api: ApiClient, people: dict[str, Any]) -> None:
    escalate(api, to="team", target="billing")
    session_claim(session=Session.objects.get(name="conv-1"), user=people["ana"])
    assert api.get("/sessions/conv-1").json()["holder"] == "ana"
    assert "override" not in _claim_event("conv-1").data


def test_an_agent_cannot_claim_an_escalation_routed_to_another_specialist(
    api: ApiClient, people: dict[str, Any]
) -> None:
    escalate(api, to="user", target="ana")
    with pytest.raises(PermissionDenied, match="routed to ana: only ana or a supervisor"):
        session_claim(session=Session.objects.get(name="conv-1"), user=people["ben"])


@pytest.mark.parametrize(("to", "target"), [("team", "technical"), ("user", "ben")])
@pytest.mark.parametrize("username", ["sam", "root"])
def test_supervisors_and_admins_override_the_routing_and_it_is_recorded(
    api: ApiClient, people: dict[str, Any], to: str, target: str, username: str
) -> None:
    escalate(api, to=to, target=target)
    session_claim(session=Session.objects.get(name="conv-1"), user=people[username])
    assert api.get("/sessions/conv-1").json()["holder"] == username
    event = _claim_event("conv-1")
    assert event.actor_user == people[username]
    assert event.data["override"] == ("team technical" if to == "team" else "ben")


def test_the_console_refuses_the_claim_and_says_why(api: ApiClient, people: dict[str, Any]) -> None:
    escalate(api, to="team", target="billing")
    ben = logged_in(people["ben"])
    response = ben.post(session_url(api, action="claim"), headers=HTMX)
    assert response.status_code == 403
    assert "routed to team billing" in response.content.decode()
    assert response["HX-Retarget"] == "#queue-notice"
    assert api.get("/sessions/conv-1").json()["status"] == "waiting"


def test_a_supervisor_sees_the_claim_button_and_the_timeline_shows_the_override(
    api: ApiClient, people: dict[str, Any]
) -> None:
    escalate(api, to="team", target="technical")
    sam = logged_in(people["sam"])
    page = sam.get(session_url(api))
    assert page.status_code == 200
    assert 'class="claim"' in page.content.decode()
    assert sam.post(session_url(api, action="claim")).status_code == 302
    timeline = sam.get(f"/supervise/p/{api.project.public_id}/s/conv-1/")
    assert timeline.status_code == 200
    assert "overrode routing to team technical" in timeline.content.decode()


def test_a_team_member_sees_the_claim_button(api: ApiClient, people: dict[str, Any]) -> None:
    escalate(api, to="team", target="billing")
    page = logged_in(people["ana"]).get(session_url(api))
    assert page.status_code == 200 and 'class="claim"' in page.content.decode()
