"""The brief card in real Chromium: citations reach turns the page has not loaded, and a new
turn refreshes the card live."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sessions_app.models import Project
from tests.test_console_browser import sign_in

pytestmark = pytest.mark.browser


def unit_vector(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(384)]
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


def test_a_citation_loads_earlier_turns_and_the_card_follows_new_turns(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    browser: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project, role="supervisor")
    bot = httpx.Client(
        base_url=f"{live_server_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=60,
    )
    rng = random.Random(3)
    bot.post("/sessions", json={"name": "long-1"})
    first = "My order ORD-55120 arrived broken."
    texts = [first] + [f"Still waiting, message {n}." for n in range(2, 251)]
    docs = [
        {
            "id": f"t{n}",
            "text": text,
            "metadata": {"role": "customer", "channel": "chat", "author": "Dana"},
            "embedding": unit_vector(rng),
        }
        for n, text in enumerate(texts, 1)
    ]
    assert bot.post("/sessions/long-1/docs", json={"docs": docs}).status_code == 200
    bot.post("/sessions/long-1/push", json={"to": "humans", "reason": "broken order"})

    page = browser.new_page()
    sign_in(page, live_server_url, "ana")
    page.goto(f"{live_server_url}/console/p/{project.public_id}/s/long-1/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    # The page opens on the newest turns; the order's first mention is older.
    assert page.locator("#turn-1").count() == 0
    page.locator('#brief a.fact[data-kind="order"]').click()
    expect(page.locator("#turn-1")).to_be_in_viewport(timeout=15_000)
    expect(page.locator("#turn-1")).to_contain_text("ORD-55120")

    # A bot's turn with a phone number: the card shows it without a reload.
    note = {
        "id": "t251",
        "text": "I'll call you back on (415) 555-0134 tomorrow.",
        "metadata": {"role": "bot", "channel": "sms", "author": "sms-bot"},
        "embedding": unit_vector(rng),
    }
    assert bot.post("/sessions/long-1/docs", json={"docs": [note]}).status_code == 200
    expect(page.locator('#brief a.fact[data-kind="phone"]')).to_have_text(
        "(415) 555-0134", timeout=15_000
    )
    expect(page.locator("#brief .brief-promises")).to_contain_text("I'll call you back")
