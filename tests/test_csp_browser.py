"""Real Chromium under the Content-Security-Policy: every page works and the browser refuses
nothing. htmx (with its indicator style moved to app.css), the console's live marker, the
supervisor filters (including a 422 swap), the admin and the Swagger UI page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessions_app.actors import Actor
from sessions_app.models import Project
from sessions_app.services.handoffs import session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert

pytestmark = pytest.mark.browser

# Also caught in the page, in case a refusal is not logged to the console.
VIOLATIONS_RECORDED = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


class Watched:
    """A page whose CSP refusals and requests are recorded."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.page = browser.new_page()
        self.refused: list[str] = []
        self.requests: list[str] = []
        self.page.add_init_script(VIOLATIONS_RECORDED)
        self.page.on("console", self._console)
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.refused.append(message.text)

    def sign_in(self, username: str, next_path: str) -> None:
        self.page.goto(f"{self.base_url}/accounts/login/?next={next_path}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", f"pw-{username}")
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base_url}{next_path}**")

    def assert_nothing_refused(self) -> None:
        in_page = self.page.evaluate("window.__cspViolations || []")
        assert not self.refused and not in_page, (self.refused, in_page)


@pytest.fixture
def watched(browser: Any, live_server_url: str) -> Iterator[Callable[[], Watched]]:
    pages: list[Watched] = []

    def open_page() -> Watched:
        pages.append(Watched(browser, live_server_url))
        return pages[-1]

    yield open_page
    for page in pages:
        page.page.close()


@pytest.fixture
def project(make_project: Callable[..., tuple[Project, str]], make_user: Any) -> Project:
    project, _ = make_project("Acme")
    make_user("ana", project)
    make_user("sam", project, role="supervisor")
    root = make_user("root", project, role="admin")
    root.is_staff = root.is_superuser = True
    root.save()
    bot = Actor.system("chat-bot")
    session, _ = session_open(project=project, name="conv-1", actor=bot)
    meta = {"channel": "chat", "role": "customer", "author": "Dana", "device": "phone"}
    turns_upsert(
        session=session,
        docs=[
            DocInput(id="t1", text="I was charged twice for $49.99.", metadata=meta),
            DocInput(id="t2", text="The refund never arrived.", metadata=meta),
        ],
        actor=bot,
    )
    session_push(session=session, actor=bot, to_kind="humans", reason="Refund not received")
    return project


def test_the_console_works_under_the_policy(watched: Any, project: Project) -> None:
    from playwright.sync_api import expect

    ana = watched()
    ana.sign_in("ana", "/console/")
    page = ana.page
    # The live marker is driven by static/js/console.js now, not by hx-on attributes.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    expect(page.locator('tr[data-session="conv-1"]')).to_contain_text("Refund not received")

    page.goto(f"{ana.base_url}/console/p/{project.public_id}/s/conv-1/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=15_000)
    page.get_by_label("Words or a question").fill("duplicate charge")
    expect(page.locator("#search-results a.hit").first).to_contain_text("charged twice")

    # htmx added no <style> of its own; app.css hides an indicator until a request runs.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    opacity = page.evaluate(
        "() => { const e = document.createElement('span'); e.className = 'htmx-indicator';"
        " document.body.append(e); return getComputedStyle(e).opacity; }"
    )
    assert opacity == "0"
    ana.assert_nothing_refused()


def test_the_supervisor_pages_work_under_the_policy(watched: Any, project: Project) -> None:
    from playwright.sync_api import expect

    sam = watched()
    p = project.public_id
    sam.sign_in("sam", f"/supervise/p/{p}/")
    page = sam.page
    page.select_option("#id_status", "waiting")
    page.wait_for_url("**status=waiting**")
    expect(page.locator("table.sessions tbody tr")).to_contain_text("conv-1")
    # A 422 is swapped in with the form's errors (htmx-config, no hx-on handler).
    page.fill("#id_date_to", "2026-02-01")
    page.fill("#id_date_from", "2026-02-03")
    expect(page.locator("#results .form-errors")).to_contain_text("date_to")

    page.goto(f"{sam.base_url}/supervise/p/{p}/s/conv-1/")
    hue = page.eval_on_selector(
        ".tl-entry", "e => getComputedStyle(e).getPropertyValue('--agent-hue')"
    )
    assert hue.strip().isdigit()
    page.goto(f"{sam.base_url}/supervise/p/{p}/dashboard/")
    expect(page.locator("svg.bar-chart").first).to_be_visible()
    sam.assert_nothing_refused()


def test_the_admin_and_the_api_docs_work_under_the_policy(watched: Any, project: Project) -> None:
    from playwright.sync_api import expect

    root = watched()
    root.sign_in("root", "/admin/")
    expect(root.page.locator("#site-name")).to_be_visible()
    root.page.goto(f"{root.base_url}/admin/sessions_app/session/")
    expect(root.page.locator("#result_list")).to_contain_text("conv-1")

    root.requests.clear()
    root.page.goto(f"{root.base_url}/api/v1/docs")
    expect(root.page.locator(".swagger-ui .info .title")).to_contain_text("moss-web API")
    expect(root.page.locator(".opblock").first).to_be_visible()
    served_here = urlsplit(root.base_url).netloc
    assert {urlsplit(url).netloc for url in root.requests if url.startswith("http")} == {
        served_here
    }
    root.assert_nothing_refused()
