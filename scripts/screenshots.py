"""Screenshots of the console (queue and session view) from the demo data, for the README.

Usage: make screenshots  (or .venv/bin/python scripts/screenshots.py)
Writes the console's queue and session view (as a supervisor: the customer panel, marked
hits, a private note in the customer's earlier session; at 400 px too), the canned-response
and a supervisor's timeline and dashboard, to docs/screenshots/.
It only reads: nobody claims anything, so the demo queue stays as it was.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
USERNAME = "ben"  # in both demo teams, so the queue shows every demo escalation
SUPERVISOR = "sam"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from sessions_app.services.demo import demo_seed
    from tests.browsers import chromium as chromium_browser
    from tests.servers import server_process

    call_command("migrate", verbosity=0)
    # The demo's generated passwords, as `make run` prints them.
    seeded = demo_seed(data_dir=settings.DATA_DIR)
    project = seeded.project
    passwords = {login.username: login.password or "" for login in seeded.logins}
    OUT.mkdir(parents=True, exist_ok=True)

    with server_process() as base_url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        sign_in(page, base_url, USERNAME, passwords[USERNAME], next_url="/console/")
        page.wait_for_selector('#live-status[data-state="open"]')
        page.wait_for_selector(".queue-row")
        page.screenshot(path=str(OUT / "console-queue.png"), full_page=True)

        supervisor = browser.new_page(viewport={"width": 1280, "height": 800})
        sign_in(supervisor, base_url, SUPERVISOR, passwords[SUPERVISOR], next_url="/supervise/")
        session_url = f"{base_url}/console/p/{project.public_id}/s/conv-123/?q=refund"
        supervisor.goto(session_url)
        supervisor.wait_for_selector('#live-status[data-state="open"]')
        supervisor.wait_for_selector("#relevant a.hit")
        supervisor.wait_for_selector("#customer a.hit")
        supervisor.screenshot(path=str(OUT / "console-session.png"), full_page=True)

        # The earlier session, resolved: its thread holds a private note. The reply box's
        # picker is shown by typing "/" (nothing is sent: the session is not held).
        supervisor.goto(f"{base_url}/console/p/{project.public_id}/s/conv-098/")
        supervisor.wait_for_selector("#thread li.turn.internal")
        supervisor.screenshot(path=str(OUT / "console-note.png"), full_page=True)

        narrow = browser.new_page(viewport={"width": 400, "height": 800})
        sign_in(narrow, base_url, SUPERVISOR, passwords[SUPERVISOR], next_url="/supervise/")
        narrow.goto(session_url)
        narrow.wait_for_selector("#relevant a.hit")
        narrow.screenshot(path=str(OUT / "console-session-400px.png"))
        pages = {
            "supervise-timeline.png": f"/supervise/p/{project.public_id}/s/ticket-9034/",
            "supervise-dashboard.png": f"/supervise/p/{project.public_id}/dashboard/?window=7d",
        }
        for filename, path in pages.items():
            supervisor.goto(base_url + path)
            supervisor.wait_for_selector("svg")
            supervisor.screenshot(path=str(OUT / filename), full_page=True)
    shots = ("console-queue.png", "console-session.png", "console-note.png")
    for name in (*shots, "console-session-400px.png", *pages):
        print(OUT / name)


def sign_in(page: Any, base_url: str, username: str, password: str, *, next_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{next_url}**")


if __name__ == "__main__":
    main()
