"""The session page in real Chromium: private notes, canned responses, the reply limit,
a supervisor's take-over seen live by the holder, live turns after a socket reopens as a poll
lands, and layout at 400 px with a 300-character word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings

from sessions_app.actors import Actor
from sessions_app.models import CannedResponse, Project, Session
from sessions_app.services.handoffs import session_claim, session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert
from tests.test_console_browser import sign_in

pytestmark = pytest.mark.browser

LONG_WORD = "https://example.com/" + "a" * 280


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield browser.new_page()


def escalated(
    project: Project, name: str = "conv-9", text: str = "My refund never came"
) -> Session:
    bot = Actor.for_key(project.api_keys.get(), agent="chat-bot")
    session, _ = session_open(
        project=project,
        name=name,
        actor=bot,
        metadata={"customer_name": "Dana", "customer_id": "cus-1"},
    )
    turns_upsert(
        session=session,
        docs=[
            DocInput(
                id="t1",
                text=text,
                metadata={"role": "customer", "channel": "chat", "author": "Dana"},
            )
        ],
        actor=bot,
    )
    session_push(session=session, actor=bot, to_kind="humans", reason="refund " + text[:200])
    return session


def bot_client(base_url: str, project: Project, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=30,
    )


def session_page(base_url: str, project: Project, name: str = "conv-9") -> str:
    return f"{base_url}/console/p/{project.public_id}/s/{name}/"


def held_session_opened(page: Any, base_url: str, project: Project, user: Any) -> None:
    """An escalation `user` holds, open on their session page with its socket live."""
    from playwright.sync_api import expect

    session_claim(session=escalated(project), user=user)
    sign_in(page, base_url, user.username)
    page.goto(session_page(base_url, project))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)


def test_a_private_note_is_shown_marked_and_invisible_to_the_api_by_default(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    page: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    held_session_opened(page, live_server_url, project, make_user("ana", project))

    page.locator("#note-box summary").click()
    page.get_by_label("Note for specialists").fill("Depot 7 lost it; refund without asking")
    page.get_by_role("button", name="Add note").click()

    note = page.locator("#thread li.turn.internal")
    expect(note).to_contain_text("Depot 7", timeout=15_000)
    expect(note).to_contain_text("Private note")
    bot = bot_client(live_server_url, project, key)
    by_default = bot.get("/sessions/conv-9/docs").json()["docs"]
    asked = bot.get("/sessions/conv-9/docs", params={"include_internal": "true"}).json()["docs"]
    assert [d["text"] for d in by_default] == ["My refund never came"]
    assert asked[-1]["internal"] is True and "Depot 7" in asked[-1]["text"]
    query = bot.post("/sessions/conv-9/query", json={"query": "depot lost"}).json()
    assert all("Depot" not in d["text"] for d in query["docs"])


def test_a_canned_response_is_inserted_with_slash_and_the_limit_refuses_a_long_paste(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    page: Any,
) -> None:
    from playwright.sync_api import expect

    project, _ = make_project("Acme")
    ana = make_user("ana", project)
    CannedResponse.objects.create(
        project=project, shortcut="greet", title="Greeting", text="Hello {{customer_name}}!"
    )
    CannedResponse.objects.create(
        project=project,
        shortcut="refund",
        title="Refund on its way",
        text="Hi {{customer_name}}, your refund <b>is</b> on its way.",
    )
    session_claim(session=escalated(project), user=ana)
    sign_in(page, live_server_url, "ana")
    page.goto(session_page(live_server_url, project))

    box = page.get_by_label("Message to the customer")
    box.click()
    box.press_sequentially("Thanks. /ref")
    picker = page.locator("#canned-picker")
    expect(picker).to_be_visible()
    expect(picker.locator("li:visible")).to_have_count(1)
    box.press("Enter")
    expect(picker).to_be_hidden()
    expect(box).to_have_value("Thanks. Hi Dana, your refund <b>is</b> on its way.")

    # Keyboard only: "/" alone lists all, arrows move, Enter inserts.
    box.fill("")
    box.press_sequentially("/")
    expect(picker.locator("li:visible")).to_have_count(2)
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value("Hi Dana, your refund <b>is</b> on its way.")

    # A paste over the limit is kept whole, counted and refused, not cut.
    limit = settings.MOSS_MAX_TEXT_CHARS
    box.fill("x" * (limit + 4000))
    expect(box).to_have_value("x" * (limit + 4000))
    counter = page.locator('[data-char-count-for="id_text"]').first
    expect(counter).to_contain_text("over the limit")
    expect(page.get_by_role("button", name="Send reply")).to_be_disabled()


def test_a_supervisor_take_over_is_seen_live_by_the_holder(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    browser: Any,
) -> None:
    from playwright.sync_api import expect

    project, _ = make_project("Acme")
    ana = make_user("ana", project)
    make_user("sue", project, role="supervisor")
    session_claim(session=escalated(project), user=ana)
    holder = browser.new_context().new_page()
    supervisor = browser.new_context().new_page()
    sign_in(holder, live_server_url, "ana")
    holder.goto(session_page(live_server_url, project))
    expect(holder.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    expect(holder.get_by_role("button", name="Send reply")).to_be_visible()

    sign_in(supervisor, live_server_url, "sue")
    supervisor.goto(session_page(live_server_url, project))
    supervisor.locator("summary", has_text="Take over").click()
    supervisor.locator("#take-over-note").fill("ana's shift ended")
    supervisor.get_by_role("button", name="Take over from ana").click()
    expect(supervisor.locator("#session-status")).to_contain_text("by sue", timeout=15_000)

    expect(holder.locator("#session-notice")).to_contain_text(
        "sue took this session over", timeout=15_000
    )
    expect(holder.locator("#session-notice")).to_contain_text("ana's shift ended")
    expect(holder.locator("#reply")).to_contain_text("Claim this session to reply")
    expect(holder.locator("#session-status")).to_contain_text("by sue")


# Closes the page's socket, then reopens it with the thread cursor just swapped in by a poll
# and not yet wired by htmx (it wires a swapped element only when it settles, 20 ms later).
REOPEN_BEFORE_THE_CURSOR_IS_WIRED = """() => new Promise((resolve) => {
  const ws = document.querySelector("[ws-connect]")["htmx-internal-data"].webSocket;
  ws.socket.addEventListener("close", () => {
    const cursor = document.getElementById("thread-cursor");
    cursor.replaceWith(cursor.cloneNode(true));
    document.body.addEventListener("htmx:wsOpen", () => resolve(true), { once: true });
    ws.init();
  }, { once: true });
  ws.socket.close();
})"""


def test_a_socket_reopening_as_a_poll_swaps_the_cursor_still_gets_live_turns(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    page: Any,
) -> None:
    from playwright.sync_api import expect

    project, key = make_project("Acme")
    held_session_opened(page, live_server_url, project, make_user("ana", project))
    status = page.locator("#live-status")

    assert page.evaluate(REOPEN_BEFORE_THE_CURSOR_IS_WIRED) is True
    expect(status).to_have_attribute("data-state", "open")
    turn = {"id": "t2", "text": "Refund reference RF-7731.", "metadata": {"role": "bot"}}
    with bot_client(live_server_url, project, key) as bot:
        assert bot.post("/sessions/conv-9/docs", json={"docs": [turn]}).status_code == 200
    # Live, not by polling: the page still says it is connected.
    expect(page.locator("#turn-2")).to_contain_text("RF-7731", timeout=10_000)
    expect(status).to_have_attribute("data-state", "open")


# What sticks out, for the failure message: the outermost elements past the right edge.
WIDEST = """() => {
  const limit = document.documentElement.clientWidth + 0.5;
  const past = (el) => el && el.getBoundingClientRect().right > limit;
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "");
  return Array.from(document.querySelectorAll("body *"))
    .filter((el) => past(el) && !past(el.parentElement))
    .slice(0, 5)
    .map((el) => name(el) + " " + Math.round(el.getBoundingClientRect().right));
}"""


def _no_horizontal_overflow(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = page.evaluate(WIDEST)
    assert widths[0] <= widths[1], (
        f"{url}: scrollWidth {widths[0]} > clientWidth {widths[1]}; widest: {wide}"
    )


def test_no_horizontal_overflow_at_400px_with_a_300_character_word(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    browser: Any,
) -> None:
    project, _ = make_project("Acme")
    make_user("sue", project, role="supervisor")
    held = escalated(project, name="conv-held", text=f"See {LONG_WORD} please")
    session_claim(session=held, user=project.memberships.get().user)
    escalated(project, name="conv-wait", text=f"Look at {LONG_WORD} now")
    page = browser.new_context(viewport={"width": 400, "height": 800}).new_page()
    sign_in(page, live_server_url, "sue")

    base = f"{live_server_url}"
    for url in (
        f"{base}/console/",
        session_page(base, project, "conv-held"),
        session_page(base, project, "conv-wait"),
        f"{base}/supervise/p/{project.public_id}/",
        f"{base}/supervise/p/{project.public_id}/dashboard/",
        f"{base}/supervise/p/{project.public_id}/s/conv-held/",
    ):
        _no_horizontal_overflow(page, url)
    # The nav bar spans the width and its links are reachable.
    page.goto(f"{base}/console/")
    bar = page.evaluate(
        "() => [document.querySelector('.topbar').getBoundingClientRect().width,"
        " document.documentElement.clientWidth]"
    )
    assert bar[0] == bar[1]
    page.get_by_role("link", name="Supervise").click()
    page.wait_for_url("**/supervise/**")


def test_a_link_to_a_turn_four_pages_back_loads_until_it_is_there(
    live_server_url: str,
    make_project: Callable[..., tuple[Project, str]],
    make_user: Callable[..., Any],
    page: Any,
) -> None:
    """The page opens on the newest 100 turns. A citation of turn 1 of 350 pressed "Load
    earlier turns" once per settled element and gave up after the second load."""
    from playwright.sync_api import expect

    project, _ = make_project("Acme")
    ana = make_user("ana", project)
    session = escalated(project)
    vector = [1.0] + [0.0] * 383  # the text is beside the point: no model work for 350 turns
    turns_upsert(
        session=session,
        docs=[
            DocInput(id=f"b{n}", text=f"Bot line {n}.", metadata={"role": "bot"}, embedding=vector)
            for n in range(2, 351)
        ],
        actor=Actor.system("chat-bot"),
    )
    session_claim(session=session, user=ana)
    sign_in(page, live_server_url, "ana")
    page.goto(session_page(live_server_url, project))
    expect(page.locator("#turn-350")).to_be_visible()
    expect(page.locator("#turn-1")).to_have_count(0)
    page.evaluate(
        """() => {
            const link = document.createElement("a");
            link.href = "#turn-1"; link.id = "cite-probe"; link.textContent = "#1";
            document.querySelector("main").prepend(link);
        }"""
    )
    page.locator("#cite-probe").click()
    # The last load can bring turn 1 into view before cite.js goes to it: wait for that.
    expect(page).to_have_url(re.compile(r"#turn-1$"), timeout=20_000)
    expect(page.locator("#turn-1")).to_be_in_viewport()
    expect(page.locator("#turn-1")).to_be_focused()
