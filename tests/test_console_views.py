"""The console's pages, fragments and actions, and who may reach them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sessions_app.errors import Conflict
from sessions_app.models import AuditEvent, Handoff, Session
from sessions_app.services.console import console_reply
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

TURNS = [
    ("turn-1", "voice", "customer", "Dana", "phone", "I was charged twice for $49.99."),
    ("turn-2", "voice", "bot", "voice-bot", "ivr", "I opened a refund for the duplicate."),
    ("turn-3", "chat", "customer", "Dana", "desktop", "The refund has not arrived yet."),
]


def escalate(
    api: ApiClient, name: str = "conv-1", to: str = "humans", target: str = "", **extra: Any
) -> None:
    """A bot's session with three turns, pushed to humans (or a team or user)."""
    opened = api.post("/sessions", {"name": name, "metadata": {"customer_name": "Dana"}})
    assert opened.status_code in (200, 201), opened.content
    docs = [
        {"id": i, "text": t, "metadata": {"channel": c, "role": r, "author": a, "device": d}}
        for i, c, r, a, d, t in TURNS
    ]
    assert api.post(f"/sessions/{name}/docs", {"docs": docs}).status_code == 200
    push = {
        "to": to,
        "target": target,
        "reason": "Refund not received",
        "from_agent": "chat-bot",
        "from_channel": "chat",
        **extra,
    }
    response = api.post(f"/sessions/{name}/push", push)
    assert response.status_code == 200, response.content


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_url(api: ApiClient, name: str = "conv-1", action: str = "") -> str:
    return f"/console/p/{api.project.public_id}/s/{name}/{action + '/' if action else ''}"


HTMX = {"HX-Request": "true"}


@pytest.fixture
def ana(api: ApiClient, make_user: Callable[..., Any]) -> Any:
    return make_user("ana", api.project, teams=("billing",))


def test_the_queue_needs_a_login(client: Client) -> None:
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_queue_shows_a_waiting_escalation_with_its_context(api: ApiClient, ana: Any) -> None:
    escalate(api)
    html = logged_in(ana).get("/console/").content.decode()
    assert "Dana" in html
    assert "conv-1" in html
    assert "Refund not received" in html
    assert "chat-bot" in html
    assert "The refund has not arrived yet." in html
    assert 'ws-connect="/ws/console/"' in html


def test_the_queue_shows_only_what_is_routed_to_the_user(
    api: ApiClient, other_api: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    make_user("ben", api.project, teams=("technical",))
    escalate(api, "for-anyone")
    escalate(api, "for-billing", to="team", target="billing")
    escalate(api, "for-technical", to="team", target="technical")
    escalate(api, "for-ana", to="user", target="ana")
    escalate(api, "for-ben", to="user", target="ben")
    escalate(other_api, "other-project")
    html = logged_in(ana).get("/console/").content.decode()
    for shown in ("for-anyone", "for-billing", "for-ana"):
        assert shown in html
    for hidden in ("for-technical", "for-ben", "other-project"):
        assert hidden not in html


def test_a_member_of_two_projects_sees_both_queues(
    api: ApiClient, other_api: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    make_user("ana", other_api.project)
    escalate(api, "acme-1")
    escalate(other_api, "globex-1")
    html = logged_in(ana).get("/console/").content.decode()
    assert "acme-1" in html and "globex-1" in html
    assert "Globex" in html  # the project column appears


def test_an_htmx_request_gets_the_queue_fragment_only(api: ApiClient, ana: Any) -> None:
    escalate(api)
    html = logged_in(ana).get("/console/", headers=HTMX).content.decode()
    assert html.lstrip().startswith('<section id="queue"')
    assert "<html" not in html


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("get", ""),
        ("get", "?q=refund"),
        ("post", "claim"),
        ("post", "reply"),
        ("post", "hand-back"),
        ("post", "transfer"),
        ("post", "resolve"),
    ],
)
def test_a_user_of_another_project_gets_404_everywhere(
    api: ApiClient, other_api: ApiClient, make_user: Callable[..., Any], method: str, action: str
) -> None:
    escalate(api)
    outsider = logged_in(make_user("mallory", other_api.project))
    url = session_url(api) + action if action.startswith("?") else session_url(api, action=action)
    data = {"text": "hi", "channel": "chat", "bot": "b", "note": "n", "to": "humans"}
    for headers in ({}, HTMX):
        response = getattr(outsider, method)(url, data, headers=headers)
        assert response.status_code == 404
    assert Session.objects.get(name="conv-1").status == "waiting"
    assert not AuditEvent.objects.filter(kind="session.viewed").exists()


def test_the_session_view_shows_the_thread_handoffs_and_relevant_turns(
    api: ApiClient, ana: Any
) -> None:
    escalate(api)
    response = logged_in(ana).get(session_url(api))
    html = response.content.decode()
    assert response.status_code == 200
    # The thread, in order, each turn with channel, role, author and device.
    assert html.index('id="turn-1"') < html.index('id="turn-2"') < html.index('id="turn-3"')
    assert "ivr" in html and "desktop" in html and "voice-bot" in html
    # The escalation, placed after the turn it followed.
    assert html.index('id="turn-3"') < html.index('id="handoff-1"')
    assert "Refund not received" in html
    # Relevant context: scored links to the turns.
    relevant = html[html.index('id="relevant"') :]
    assert 'href="#turn-3"' in relevant
    assert 'class="score"' in relevant
    viewed = AuditEvent.objects.get(kind="session.viewed")
    assert viewed.actor_user == ana and viewed.session_name == "conv-1"


def test_search_is_live_and_returns_a_fragment(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    headers = {**HTMX, "HX-Target": "search-results"}
    html = client.get(session_url(api), {"q": "duplicate charge"}, headers=headers).content.decode()
    assert html.lstrip().startswith('<div id="search-results"')
    assert 'href="#turn-1"' in html
    empty = client.get(session_url(api), {"q": ""}, headers=headers).content.decode()
    assert "turn-" not in empty
    # Without htmx the same search fills the whole page.
    page = client.get(session_url(api), {"q": "duplicate charge"}).content.decode()
    assert "<html" in page and 'href="#turn-1"' in page
    # A query the search refuses is a 422 on the page, as in the partial.
    for query in ("\x00abc", "x" * 20_000):
        for extra in ({}, headers):
            refused = client.get(session_url(api), {"q": query}, headers=extra)
            assert refused.status_code == 422
            assert "query must be" in refused.content.decode()


def test_a_claim_opens_the_session_and_the_next_claimer_is_told_who_won(
    api: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    escalate(api)
    response = logged_in(ana).post(session_url(api, action="claim"))
    assert response.status_code == 302
    assert response["Location"] == session_url(api)
    ben = logged_in(make_user("ben", api.project))
    late = ben.post(session_url(api, action="claim"), headers=HTMX)
    assert late.status_code == 409
    assert "ana has already claimed conv-1" in late.content.decode()
    assert late["HX-Retarget"] == "#queue-notice"
    page = ben.post(session_url(api, action="claim"))
    assert page.status_code == 409 and "ana has already claimed conv-1" in page.content.decode()
    assert api.get("/sessions/conv-1").json()["holder"] == "ana"


def test_an_htmx_claim_redirects_the_browser(api: ApiClient, ana: Any) -> None:
    escalate(api)
    response = logged_in(ana).post(session_url(api, action="claim"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == session_url(api)


def test_a_reply_becomes_a_turn_the_api_sees_at_once(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    client.post(session_url(api, action="claim"))
    response = client.post(
        session_url(api, action="reply"),
        {"text": "Your refund was re-issued today.", "channel": "email"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "thread-sync" in response["HX-Trigger"]
    docs = api.get("/sessions/conv-1/docs").json()["docs"]
    reply = docs[-1]
    assert reply["id"].startswith("console-")
    assert reply["text"] == "Your refund was re-issued today."
    assert reply["metadata"] == {
        "channel": "email",
        "role": "agent",
        "author": "ana",
        "device": "console",
    }
    hits = api.post("/sessions/conv-1/query", {"query": "refund re-issued", "top_k": 1}).json()
    assert hits["docs"][0]["id"] == reply["id"]


def test_a_reply_needs_the_session_held_and_a_known_channel(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    unheld = client.post(session_url(api, action="reply"), {"text": "hi", "channel": "chat"})
    assert unheld.status_code == 409
    assert "claim it first" in unheld.content.decode()
    client.post(session_url(api, action="claim"))
    bad = client.post(
        session_url(api, action="reply"), {"text": "hi", "channel": "fax"}, headers=HTMX
    )
    assert bad.status_code == 422
    assert "Channel" in bad.content.decode()
    empty = client.post(session_url(api, action="reply"), {"text": " ", "channel": "chat"})
    assert empty.status_code == 422
    assert api.get("/sessions/conv-1").json()["doc_count"] == 3


def test_a_reply_racing_a_resolve_is_refused_under_the_lock(api: ApiClient, ana: Any) -> None:
    """The reply's first holder check reads the session before the model's work; the
    session may be resolved (or taken over) meanwhile. The check under the session's
    lock refuses it: no turn is stored after the resolution."""
    escalate(api)
    client = logged_in(ana)
    client.post(session_url(api, action="claim"))
    seen = Session.objects.get(project=api.project, name="conv-1")  # held by ana, as read
    client.post(session_url(api, action="resolve"), {"note": "done"})
    with pytest.raises(Conflict, match="you do not hold conv-1"):
        console_reply(session=seen, user=ana, text="One more thing", channel="chat")
    assert api.get("/sessions/conv-1").json()["status"] == "resolved"
    assert api.get("/sessions/conv-1").json()["doc_count"] == 3
    assert [e["type"] for e in api.get("/events").json()["events"]][-1] == "session.resolved"


def test_hand_back_gives_the_session_to_a_bot(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    client.post(session_url(api, action="claim"))
    response = client.post(
        session_url(api, action="hand-back"),
        {"bot": "chat-bot", "note": "Refund re-issued, close when confirmed"},
        headers=HTMX,
    )
    assert response["HX-Redirect"] == "/console/"
    session = api.get("/sessions/conv-1").json()
    assert session["status"] == "bot" and session["holder"] == "chat-bot"
    handoff = Handoff.objects.get(version=2)
    assert handoff.to_kind == "bot" and handoff.reason.startswith("Refund re-issued")
    assert AuditEvent.objects.filter(kind="handed_back", actor_user=ana).exists()


def test_transfer_to_a_team_puts_it_back_in_the_queue(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    client.post(session_url(api, action="claim"))
    unknown = client.post(session_url(api, action="transfer"), {"to": "team:nope", "note": ""})
    assert unknown.status_code == 422
    response = client.post(
        session_url(api, action="transfer"), {"to": "team:billing", "note": "needs billing"}
    )
    assert response.status_code == 302
    assert api.get("/sessions/conv-1").json()["status"] == "waiting"
    team = Session.objects.get(name="conv-1").queue_team
    assert team is not None and team.name == "billing"
    assert AuditEvent.objects.filter(kind="transferred").exists()


def test_resolve_closes_the_session(api: ApiClient, ana: Any) -> None:
    escalate(api)
    client = logged_in(ana)
    not_held = client.post(session_url(api, action="resolve"), {"note": "done"})
    assert not_held.status_code == 409
    client.post(session_url(api, action="claim"))
    client.post(session_url(api, action="resolve"), {"note": "refund confirmed"})
    assert api.get("/sessions/conv-1").json()["status"] == "resolved"
    assert AuditEvent.objects.filter(kind="resolved", actor_user=ana).exists()
