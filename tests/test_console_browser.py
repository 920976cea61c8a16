"""A specialist in real Chromium: an escalation arrives live, is claimed, answered, handed back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sessions_app.models import Project

pytestmark = pytest.mark.browser

TURNS = [
    ("turn-1", "voice", "customer", "Dana Whitfield", "phone", "I was charged twice for $49.99."),
    ("turn-2", "voice", "bot", "voice-bot", "ivr", "I opened a refund for the duplicate charge."),
    ("turn-3", "chat", "customer", "Dana Whitfield", "desktop", "The refund never arrived."),
]


def docs(*turns: tuple[str, str, str, str, str, str]) -> dict[str, Any]:
    return {
        "docs": [
            {"id": i, "text": t, "metadata": {"channel": c, "role": r, "author": a, "device": d}}
            for i, c, r, a, d, t in turns
        ]
    }


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield browser.new_page()


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/console/")


def test_a_specialist_takes_an_escalation_from_queue_to_hand_back(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    page: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    bot = httpx.Client(
        base_url=f"{live_server_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=30,
    )
    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") == "true"

    # The specialist has the queue open, and it is live.
    sign_in(page, live_server_url, "ana")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    expect(page.locator("#queue")).to_contain_text("No escalations waiting")

    # A bot escalates through the API; the row appears without a reload.
    bot.post("/sessions", json={"name": "conv-77", "metadata": {"customer_name": "Dana"}})
    assert bot.post("/sessions/conv-77/docs", json=docs(*TURNS)).status_code == 200
    push = {"to": "humans", "reason": "Refund not received", "from_channel": "chat"}
    assert bot.post("/sessions/conv-77/push", json=push).json()["status"] == "waiting"
    row = page.locator('tr[data-session="conv-77"]')
    expect(row).to_contain_text("Refund not received", timeout=15_000)
    expect(row).to_contain_text("The refund never arrived.")

    # Claim: the session opens on the thread and the relevant turns.
    row.get_by_role("button", name="Claim").click()
    page.wait_for_url(f"**/console/p/{project.public_id}/s/conv-77/")
    for seq in (1, 2, 3):
        expect(page.locator(f"#turn-{seq}")).to_be_visible()
    expect(page.locator("#handoff-1")).to_contain_text("Refund not received")
    expect(page.locator("#session-status")).to_contain_text("by ana")
    hits = page.locator("#relevant a.hit")
    expect(hits.first).to_be_visible()
    target = hits.first.get_attribute("href")
    hits.first.click()
    expect(page.locator(str(target))).to_be_in_viewport()

    # Live search over the session, as you type.
    page.get_by_label("Words or a question").fill("duplicate charge")
    expect(page.locator("#search-results a.hit").first).to_contain_text("duplicate")

    # A bot's turn added while the view is open appears live.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    note = ("turn-4", "email", "bot", "email-bot", "mail", "Refund reference RF-2201 sent.")
    assert bot.post("/sessions/conv-77/docs", json=docs(note)).status_code == 200
    expect(page.locator("#turn-4")).to_contain_text("RF-2201", timeout=15_000)

    # The bot corrects its turn, then deletes it: the open page follows both, in place.
    fixed = ("turn-4", "email", "bot", "email-bot", "mail", "Refund reference RF-2202 sent.")
    assert bot.post("/sessions/conv-77/docs", json=docs(fixed)).status_code == 200
    expect(page.locator("#turn-4")).to_contain_text("RF-2202", timeout=15_000)
    gone = bot.post("/sessions/conv-77/docs/delete", json={"ids": ["turn-4"]})
    assert gone.json()["deleted"] == 1
    expect(page.locator("#turn-4")).to_have_count(0, timeout=15_000)

    # The reply becomes a turn the API returns at once.
    page.get_by_label("Message to the customer").fill("Your refund was re-issued today.")
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#turn-5")).to_contain_text("re-issued", timeout=15_000)
    expect(page.locator("#thread > li.turn")).to_have_count(4)
    last = bot.get("/sessions/conv-77/docs").json()["docs"][-1]
    assert last["text"] == "Your refund was re-issued today."
    assert last["metadata"]["author"] == "ana" and last["metadata"]["role"] == "agent"

    # Hand back (its button opens its form): the status the API reports changes.
    page.locator("summary", has_text="Hand back to a bot").click()
    page.get_by_label("Bot", exact=True).fill("chat-bot")
    page.get_by_label("Note for the bot").fill("Refund re-issued; confirm with the customer.")
    page.get_by_role("button", name="Hand back", exact=True).click()
    page.wait_for_url(f"{live_server_url}/console/")
    expect(page.locator(".messages")).to_contain_text("handed back")
    assert bot.get("/sessions/conv-77").json()["status"] == "bot"
