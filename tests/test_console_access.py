"""What an agent may open in the console, and why opening a session grants nothing.

An agent opens the escalations waiting for them (routed to anyone, to one of
their teams or to them) and the sessions they hold or held; supervisors and
admins open every session of their project. The supervisor pages count only
claims and handoffs, never views.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sessions_app.models import AuditEvent, Project
from tests.conftest import ApiClient
from tests.test_console_consumer import claim, connect, escalate, receive_until
from tests.test_console_views import HTMX, logged_in, session_url
from tests.test_console_views import escalate as escalate_through_api


@pytest.fixture
def people(api: ApiClient, make_user: Callable[..., Any]) -> dict[str, Any]:
    return {
        "ana": make_user("ana", api.project, teams=("billing",)),
        "ben": make_user("ben", api.project, teams=("technical",)),
        "sam": make_user("sam", api.project, role="supervisor"),
    }


def _sessions(api: ApiClient, people: dict[str, Any]) -> None:
    escalate_through_api(api, "for-anyone")
    escalate_through_api(api, "for-billing", to="team", target="billing")
    escalate_through_api(api, "for-technical", to="team", target="technical")
    escalate_through_api(api, "for-ana", to="user", target="ana")
    escalate_through_api(api, "for-ben", to="user", target="ben")
    escalate_through_api(api, "held-by-ben")
    logged_in(people["ben"]).post(session_url(api, "held-by-ben", "claim"))
    escalate_through_api(api, "held-by-ana-before")
    ana = logged_in(people["ana"])
    ana.post(session_url(api, "held-by-ana-before", "claim"))
    ana.post(session_url(api, "held-by-ana-before", "hand-back"), {"bot": "b", "note": "n"})
    api.post("/sessions", {"name": "with-a-bot"})


OPENS = {
    "for-anyone": True,
    "for-billing": True,
    "for-technical": False,
    "for-ana": True,
    "for-ben": False,
    "held-by-ben": False,
    "held-by-ana-before": True,
    "with-a-bot": False,
}


@pytest.mark.django_db
def test_an_agent_opens_only_what_waits_for_them_and_what_they_held(
    api: ApiClient, people: dict[str, Any]
) -> None:
    _sessions(api, people)
    ana = logged_in(people["ana"])
    for name, opens in OPENS.items():
        for url in (session_url(api, name), session_url(api, name) + "?q=refund"):
            assert ana.get(url).status_code == (200 if opens else 404), url
    viewed = AuditEvent.objects.filter(kind="session.viewed", actor_user=people["ana"])
    assert {e.session_name for e in viewed} == {name for name, opens in OPENS.items() if opens}


@pytest.mark.django_db
def test_a_supervisor_opens_every_session_of_the_project(
    api: ApiClient, people: dict[str, Any]
) -> None:
    _sessions(api, people)
    sam = logged_in(people["sam"])
    for name in OPENS:
        assert sam.get(session_url(api, name)).status_code == 200, name


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["reply", "hand-back", "transfer", "resolve"])
def test_actions_on_a_session_the_agent_may_not_open_are_404(
    api: ApiClient, people: dict[str, Any], action: str
) -> None:
    escalate_through_api(api, "held-by-ben")
    logged_in(people["ben"]).post(session_url(api, "held-by-ben", "claim"))
    data = {"text": "hi", "channel": "chat", "bot": "b", "note": "n", "to": "humans"}
    response = logged_in(people["ana"]).post(session_url(api, "held-by-ben", action), data)
    assert response.status_code == 404
    assert api.get("/sessions/held-by-ben").json()["holder"] == "ben"


@pytest.mark.django_db
def test_viewing_a_session_does_not_unlock_its_timeline_exports_or_as_received(
    api: ApiClient, people: dict[str, Any]
) -> None:
    escalate_through_api(api)
    ana = logged_in(people["ana"])
    # Ana may look at the waiting escalation; ben claims and resolves it.
    assert ana.get(session_url(api)).status_code == 200
    ben = logged_in(people["ben"])
    ben.post(session_url(api, action="claim"))
    ben.post(session_url(api, action="resolve"), {"note": "done"})
    assert AuditEvent.objects.filter(kind="session.viewed", actor_user=people["ana"]).exists()

    base = f"/supervise/p/{api.project.public_id}/s/conv-1/"
    for url in (base, f"{base}received/1/", f"{base}export.jsonl", f"{base}export.csv"):
        assert ana.get(url).status_code == 404, url
        assert ben.get(url).status_code == 200, url
    listing = ana.get(f"/supervise/p/{api.project.public_id}/")
    assert [s.name for s in listing.context["page"].object_list] == []
    # And the console no longer opens it for her: it is not waiting and she never held it.
    assert ana.get(session_url(api)).status_code == 404


@pytest.fixture
def acme_agents(
    transactional_db: None,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
) -> tuple[Project, Any, Any]:
    acme, _ = make_project("Acme")
    return acme, make_user("ana", acme), make_user("ben", acme)


async def test_the_websocket_watches_only_sessions_the_agent_may_open(
    acme_agents: tuple[Project, Any, Any],
) -> None:
    acme, ana, ben = acme_agents
    await escalate(acme, "conv-1")
    await escalate(acme, "conv-2")
    await claim(acme, "conv-2", ben)

    _, socket = await connect(ana)
    held = {"view": "session", "project": acme.public_id, "session": "conv-2", "after_seq": 0}
    await socket.send_to(text_data=json.dumps(held))
    answer = await socket.receive_from()
    assert "not available" in answer and "turn-" not in answer

    # Watching a waiting escalation works until someone else claims it.
    waiting = {**held, "session": "conv-1"}
    await socket.send_to(text_data=json.dumps(waiting))
    assert 'id="turn-1"' in await socket.receive_from()
    await claim(acme, "conv-1", ben)
    closed = await receive_until(socket, "no longer available")
    assert "ben claimed conv-1." in closed and "turn-" not in closed
    await socket.disconnect()


@pytest.mark.django_db
def test_a_view_by_another_project_member_writes_nothing(
    api: ApiClient, other_api: ApiClient, make_user: Callable[..., Any]
) -> None:
    escalate_through_api(api)
    outsider = logged_in(make_user("mallory", other_api.project, role="supervisor"))
    assert outsider.get(session_url(api), headers=HTMX).status_code == 404
    assert not AuditEvent.objects.filter(kind="session.viewed").exists()
