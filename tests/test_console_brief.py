"""The brief card at the top of the console's session page, linked to its turns, kept live."""

from __future__ import annotations

from typing import Any

import pytest

from sessions_app.actors import Actor
from sessions_app.models import Session
from sessions_app.services.turns import DocInput, turns_upsert
from tests.conftest import ApiClient
from tests.test_console_views import HTMX, escalate, logged_in, session_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(api: ApiClient, make_user: Any) -> Any:
    return make_user("ana", api.project)


def card(html: str) -> str:
    return html[html.index('id="brief"') : html.index("</section>", html.index('id="brief"'))]


def test_the_brief_card_opens_the_session_page_and_links_every_item_to_its_turn(
    api: ApiClient, ana: Any
) -> None:
    escalate(api)
    response = logged_in(ana).get(session_url(api))
    html = response.content.decode()
    assert response.status_code == 200
    # One card, above the thread.
    assert html.index('id="brief"') < html.index('id="thread"')
    brief = card(html)
    # The reason, with the last turn before it.
    assert "Refund not received" in brief
    assert "chat-bot" in brief
    # The customer's own words, linked to their turn.
    assert "The refund has not arrived yet." in brief
    assert 'href="#turn-3">#3</a> Dana on chat' in brief
    # What the bot did, and the facts, each linked.
    assert 'href="#turn-2">#2</a> <strong>voice-bot</strong>: I opened a refund' in brief
    assert 'data-kind="amount">$49.99</a>' in brief
    assert 'href="#turn-1" title="First said in #1"' in brief
    # The path: channels with devices, the wait, the handoff.
    assert 'href="#turn-1">voice</a> <span class="muted">on ivr, phone</span>' in brief
    assert 'href="#turn-3">chat</a> <span class="muted">on desktop</span>' in brief
    assert "Waiting <time" in brief
    assert "1 handoff</summary>" in brief


def test_the_card_is_escaped(api: ApiClient, ana: Any) -> None:
    escalate(api, reason="<script>alert(1)</script>")
    html = logged_in(ana).get(session_url(api)).content.decode()
    assert "<script>alert(1)" not in card(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card(html)


def test_the_live_update_refreshes_the_card_when_a_turn_arrives(api: ApiClient, ana: Any) -> None:
    escalate(api)
    session = Session.objects.get(name="conv-1")
    turns_upsert(
        session=session,
        docs=[
            DocInput(
                id="turn-4",
                text="My order ORD-5512 is the one, call me at (415) 555-0134.",
                metadata={"channel": "sms", "role": "customer", "author": "Dana"},
            )
        ],
        actor=Actor.system(),
    )
    response = logged_in(ana).get(
        session_url(api, action="updates"), {"after_seq": 3, "version": 1}, headers=HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="turn-4"' in html
    brief = card(html)
    assert brief.startswith('id="brief" hx-swap-oob="true"')
    assert 'href="#turn-4" title="First said in #4" data-kind="order">ORD-5512</a>' in brief
    assert 'data-kind="phone">(415) 555-0134</a>' in brief
    assert 'href="#turn-4">sms</a>' in brief


def test_a_session_the_user_may_not_open_shows_no_brief(
    api: ApiClient, make_user: Any, make_project: Any
) -> None:
    escalate(api)
    other, _ = make_project("Globex")
    stranger = make_user("stranger", other)
    response = logged_in(stranger).get(session_url(api))
    assert response.status_code == 404
    assert b'id="brief"' not in response.content
