"""The inbox in real Chromium: the Mine tab and its live count, a routed escalation raising the
title count and a desktop notification, ticking timers and service levels, and "Reconnecting"
when the connection goes silent without closing."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sessions_app.models import Project
from tests.test_console_browser import TURNS, docs, sign_in

pytestmark = pytest.mark.browser

# Records each desktop notification the page shows, still showing it through the real API.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title: title, body: options && options.body });
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def bot_client(live_server_url: str, project: Project, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{live_server_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=30,
    )


def escalate(bot: httpx.Client, name: str, **push: str) -> None:
    bot.post("/sessions", json={"name": name, "metadata": {"customer_name": f"Dana {name}"}})
    assert bot.post(f"/sessions/{name}/docs", json=docs(*TURNS)).status_code == 200
    body = {"to": "humans", "reason": "Refund not received", "from_channel": "chat", **push}
    assert bot.post(f"/sessions/{name}/push", json=body).json()["status"] == "waiting"


@pytest.fixture
def context(browser: Any, live_server_url: str) -> Iterator[Any]:
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=live_server_url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    yield context
    context.close()


def test_the_mine_tab_lists_a_claimed_session_and_counts_it_live(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    bot = bot_client(live_server_url, project, key)
    escalate(bot, "conv-a")
    escalate(bot, "conv-b")

    mine = context.new_page()
    sign_in(mine, live_server_url, "ana")
    mine.goto(f"{live_server_url}/console/?tab=mine")
    expect(mine.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    mine_count = mine.locator('#inbox-tabs a[data-tab="mine"] .count')
    expect(mine_count).to_have_text("0")
    expect(mine.locator("#queue")).to_contain_text("You hold no sessions")
    expect(mine.locator('#inbox-tabs a[data-tab="unassigned"] .count')).to_have_text("2")

    # In another tab she claims one; the Mine tab lists it and counts it without a reload.
    other = context.new_page()
    other.goto(f"{live_server_url}/console/?tab=unassigned")
    other.locator('tr[data-session="conv-a"]').get_by_role("button", name="Claim").click()
    other.wait_for_url(f"**/console/p/{project.public_id}/s/conv-a/")
    # The session page's handling timer ticks too.
    handling = other.locator("#session-status time[data-since]")
    expect(handling).to_have_text(re.compile(r"^\d+s$"))
    expect(handling).not_to_have_text(handling.inner_text(), timeout=5_000)

    row = mine.locator('tr[data-session="conv-a"]')
    expect(row).to_contain_text("held by you", timeout=15_000)
    expect(row).to_contain_text("Handling")
    expect(mine_count).to_have_text("1")
    expect(mine.locator('#inbox-tabs a[data-tab="unassigned"] .count')).to_have_text("1")
    expect(mine.locator('tr[data-session="conv-b"]')).to_have_count(0)


def test_a_routed_escalation_raises_the_title_count_and_notifies(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project, teams=("billing",))
    bot = bot_client(live_server_url, project, key)

    page = context.new_page()
    sign_in(page, live_server_url, "ana")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    expect(page).to_have_title("Queue · moss")
    toggle = page.locator("[data-notify-desktop]")
    toggle.click()
    expect(toggle).to_have_text("Desktop notifications: on")

    escalate(bot, "conv-routed", to="user", target="ana", reason="Card blocked abroad")
    expect(page).to_have_title("(1) Queue · moss", timeout=15_000)
    page.wait_for_function("window.__notifications.length > 0", timeout=5_000)
    notes = page.evaluate("window.__notifications")
    assert notes == [
        {"title": "Escalation routed to you: Dana conv-routed", "body": "Card blocked abroad"}
    ]

    # One for her team counts too; an escalation for anyone does not need her in particular.
    escalate(bot, "conv-team", to="team", target="billing")
    expect(page).to_have_title("(2) Queue · moss", timeout=15_000)
    escalate(bot, "conv-anyone")
    expect(page.locator('tr[data-session="conv-anyone"]')).to_be_visible(timeout=15_000)
    expect(page).to_have_title("(2) Queue · moss")
    assert len(page.evaluate("window.__notifications")) == 2


def test_timers_tick_and_a_breach_is_marked_live(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    project.sla_waiting_warn_seconds = 2
    project.sla_waiting_breach_seconds = 4
    project.save()
    make_user("ana", project)
    bot = bot_client(live_server_url, project, key)
    escalate(bot, "conv-slow")

    page = context.new_page()
    sign_in(page, live_server_url, "ana")
    row = page.locator('tr[data-session="conv-slow"]')
    timer = row.locator("time[data-since]")
    expect(timer).to_have_text(re.compile(r"^\d+s$"))
    first = timer.inner_text()
    expect(timer).not_to_have_text(first, timeout=5_000)
    expect(row).to_have_class("queue-row sla-breach", timeout=10_000)
    expect(row.locator(".sla-mark")).to_be_visible()
    expect(row.locator(".sla-mark")).to_have_text("SLA breached")


class SilentProxy:
    """A TCP proxy that can go silent: it stops passing bytes but keeps every connection open,
    as a dead network path does (no close, no error on either side)."""

    def __init__(self, target: str) -> None:
        self.target = (urlsplit(target).hostname or "127.0.0.1", urlsplit(target).port or 80)
        self.flowing = threading.Event()
        self.flowing.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with a, b, contextlib.suppress(ConnectionError):  # either side may hang up hard
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for source in readable:
                    self.flowing.wait()
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_live_turns_to_reconnecting_when_the_connection_goes_silent(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, _ = make_project("Acme")
    make_user("ana", project)
    proxy = SilentProxy(live_server_url)
    try:
        page = context.new_page()
        sign_in(page, proxy.url, "ana")
        status = page.locator("#live-status")
        expect(status).to_have_attribute("data-state", "open", timeout=15_000)
        proxy.flowing.clear()
        # Three heartbeats (3 s each) without an answer: "Reconnecting…" within seconds.
        expect(status).to_have_attribute("data-state", "closed", timeout=15_000)
        proxy.flowing.set()
        expect(status).to_have_attribute("data-state", "open", timeout=30_000)
    finally:
        proxy.flowing.set()
        proxy.close()


def test_a_customer_writing_in_a_held_session_notifies_and_marks_it_unread(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    bot = bot_client(live_server_url, project, key)
    escalate(bot, "conv-held")

    page = context.new_page()
    sign_in(page, live_server_url, "ana")
    page.locator("[data-notify-desktop]").click()
    # Keyboard only: `?` lists the shortcuts, j selects the first row, c claims it.
    page.keyboard.press("?")
    expect(page.locator("dialog#shortcuts")).to_be_visible()
    expect(page.locator("dialog#shortcuts")).to_contain_text("Claim the selected escalation")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()
    page.keyboard.press("j")
    expect(page.locator('tr[data-session="conv-held"]')).to_have_class(re.compile("selected"))
    page.keyboard.press("c")
    page.wait_for_url(f"**/console/p/{project.public_id}/s/conv-held/")

    page.goto(f"{live_server_url}/console/?tab=mine")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    expect(page).to_have_title("Queue · moss")
    customer = {"id": "late-1", "text": "Any news?", "metadata": {"role": "customer"}}
    assert bot.post("/sessions/conv-held/docs", json={"docs": [customer]}).status_code == 200
    expect(page).to_have_title("(1) Queue · moss", timeout=15_000)
    row = page.locator('tr[data-session="conv-held"]')
    expect(row.locator(".unread-mark")).to_have_text("New")
    page.wait_for_function("window.__notifications.length > 0", timeout=5_000)
    assert page.evaluate("window.__notifications") == [
        {"title": "Dana conv-held wrote", "body": "conv-held"}
    ]

    # Opening it clears the mark and the count.
    row.locator("a.customer").click()
    page.wait_for_url(f"**/console/p/{project.public_id}/s/conv-held/")
    expect(page).to_have_title("conv-held · moss")
    page.go_back()
    expect(page.locator('tr[data-session="conv-held"] .unread-mark')).to_have_count(0)


def test_reply_hand_back_and_resolve_shortcuts_open_their_forms(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    context: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    escalate(bot_client(live_server_url, project, key), "conv-keys")
    page = context.new_page()
    sign_in(page, live_server_url, "ana")
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.wait_for_url(f"**/console/p/{project.public_id}/s/conv-keys/")

    # From the inbox, r opens the held session at its reply box.
    page.goto(f"{live_server_url}/console/?tab=mine")
    page.keyboard.press("j")
    page.keyboard.press("r")
    page.wait_for_url("**/s/conv-keys/#do-reply")
    expect(page.get_by_label("Message to the customer")).to_be_focused()

    # On the session page the keys act on it.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("h")
    expect(page.get_by_label("Bot", exact=True)).to_be_focused()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("e")
    expect(page.get_by_label("Resolution note")).to_be_visible()
    expect(page.get_by_label("Resolution note")).to_be_focused()


def test_a_supervisor_sees_who_is_online_and_their_load(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    browser: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    make_user("ana", project)
    make_user("ben", project)
    make_user("sam", project, role="supervisor")
    escalate(bot_client(live_server_url, project, key), "conv-load")

    ana = browser.new_context().new_page()
    sign_in(ana, live_server_url, "ana")
    ana.locator('tr[data-session="conv-load"]').get_by_role("button", name="Claim").click()
    ana.wait_for_url("**/s/conv-load/")
    expect(ana.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)

    sam = browser.new_context().new_page()
    sign_in(sam, live_server_url, "sam")
    row = sam.locator('#presence tr[data-user="ana"]')
    expect(row.locator("[data-presence]")).to_have_attribute(
        "data-presence", "online", timeout=15_000
    )
    expect(row.locator(".load")).to_have_text("1")
    expect(sam.locator('#presence tr[data-user="ben"] [data-presence]')).to_have_text("offline")
