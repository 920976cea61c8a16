"""Debian's Chromium driven by Playwright (Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out of a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium(executable_path: str = CHROMIUM) -> Iterator[Any]:
    """A Playwright Browser on Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django's own
    # calls around it are plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
