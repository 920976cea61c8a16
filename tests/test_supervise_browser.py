"""Real Chromium: the timeline and dashboard charts are drawn, and filters update in place."""

import pytest
from playwright.sync_api import Browser, Page

from tests.supervise_history import PASSWORD, History, history_build, times_set

pytestmark = pytest.mark.browser


@pytest.fixture
def history(live_server_url: str) -> History:
    built = history_build()
    times_set(built)
    return built


def sign_in(page: Page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def drawn(page: Page, selector: str) -> list[dict[str, float]]:
    """Bounding boxes of the matching elements, as the browser laid them out."""
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {width: r.width, height: r.height}; })",
    )


def test_timeline_chart_is_drawn(live_server_url: str, history: History, browser: Browser) -> None:
    page = browser.new_page()
    path = f"/supervise/p/{history.project.public_id}/s/conv-1/"
    sign_in(page, live_server_url, "sam", path)
    strip = drawn(page, "svg.timeline-strip")
    assert len(strip) == 1 and strip[0]["width"] > 0 and strip[0]["height"] > 0
    dots = drawn(page, "svg.timeline-strip circle")
    assert len(dots) == 18 and all(d["width"] > 0 and d["height"] > 0 for d in dots)
    assert page.locator("#turn-4 .ch").inner_text() == "email"


def test_dashboard_charts_are_drawn(
    live_server_url: str, history: History, browser: Browser
) -> None:
    page = browser.new_page()
    path = f"/supervise/p/{history.project.public_id}/dashboard/?window=30d"
    sign_in(page, live_server_url, "sam", path)
    charts = drawn(page, "svg.bar-chart")
    assert len(charts) == 5
    assert all(c["width"] > 0 and c["height"] > 0 for c in charts)
    bars = drawn(page, "#time-to-claim svg rect.bar:not(.zero)")
    assert len(bars) == 2 and all(b["width"] > 0 for b in bars)
    assert page.locator("[data-figure=escalations]").inner_text() == "3"


def test_filters_update_the_list_in_place(
    live_server_url: str, history: History, browser: Browser
) -> None:
    page = browser.new_page()
    path = f"/supervise/p/{history.project.public_id}/"
    sign_in(page, live_server_url, "sam", path)
    page.select_option("#id_status", "waiting")
    page.wait_for_url("**status=waiting**")
    rows = page.locator("table.sessions tbody tr")
    assert rows.count() == 1 and "conv-2" in rows.inner_text()
    page.fill("#id_q", "refund")
    page.press("#id_q", "Enter")
    page.locator("a.hit-link").first.click()
    page.wait_for_url("**/s/conv-1/?seq=*#turn-*")


def test_back_to_a_filtered_list_shows_the_whole_page(
    live_server_url: str, history: History, browser: Browser
) -> None:
    """The filter's htmx request pushes its URL, whose answer is only the results; the
    full page from the same URL must not be taken from the browser's cache on Back."""
    page = browser.new_page()
    path = f"/supervise/p/{history.project.public_id}/"
    sign_in(page, live_server_url, "sam", path)
    page.select_option("#id_status", "waiting")
    page.wait_for_url("**status=waiting**")
    page.locator("table.sessions a").first.click()
    page.wait_for_url("**/s/conv-2/")
    page.go_back()
    page.wait_for_load_state("load")
    assert page.locator(".topbar").count() == 1
    assert page.locator("#id_status").input_value() == "waiting"
