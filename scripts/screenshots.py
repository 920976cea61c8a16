"""Screenshots of the console (queue and session view) from the demo data, for the README.

Usage: make screenshots  (or .venv/bin/python scripts/screenshots.py)
Writes docs/screenshots/console-queue.png and docs/screenshots/console-session.png.
It only reads: nobody claims anything, so the demo queue stays as it was.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
USERNAME = "ben"  # in both demo teams, so the queue shows every demo escalation


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from sessions_app import demo
    from sessions_app.models import Project
    from tests.browsers import chromium as chromium_browser
    from tests.servers import server_process

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    project = Project.objects.get(name=demo.DEMO_PROJECT_NAME)
    OUT.mkdir(parents=True, exist_ok=True)

    with server_process() as base_url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base_url}/accounts/login/?next=/console/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/console/")
        page.wait_for_selector('#live-status[data-state="open"]')
        page.wait_for_selector(".queue-row")
        page.screenshot(path=str(OUT / "console-queue.png"), full_page=True)

        session_url = f"{base_url}/console/p/{project.public_id}/s/conv-123/?q=refund"
        page.goto(session_url)
        page.wait_for_selector('#live-status[data-state="open"]')
        page.wait_for_selector("#relevant a.hit")
        page.screenshot(path=str(OUT / "console-session.png"), full_page=True)
        browser.close()
    for name in ("console-queue.png", "console-session.png"):
        print(OUT / name)


if __name__ == "__main__":
    main()
