"""scripts/relay_bot.py against the real server, a specialist acting through the services."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessions_app.selectors import session_get
from sessions_app.services.console import console_reply
from sessions_app.services.handoffs import session_claim, session_hand_back

ROOT = Path(__file__).resolve().parent.parent


class Output:
    """The script's stdout, line by line, as it prints."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)

    def until(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} in {self.lines}"
            try:
                line = self._queue.get(timeout=remaining).rstrip("\n")
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return line


def test_the_relay_bot_relays_replies_and_takes_the_conversation_back(
    live_server_url: str, make_project: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    project, key = make_project("Acme")
    ana = make_user("ana", project)
    env = {
        **os.environ,
        "MOSS_PROJECT_ID": project.public_id,
        "MOSS_PROJECT_KEY": key,
        "MOSS_BASE_URL": live_server_url,
    }
    process = subprocess.Popen(
        [sys.executable, "scripts/relay_bot.py", "--session", "relay-1", "--timeout", "300"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = Output(process)
        output.until("waiting for a specialist")
        session = session_get(project=project, name="relay-1")
        assert (session.status, session.doc_count) == ("waiting", 3)

        session_claim(session=session, user=ana)
        output.until("claimed by ana")
        for text in ("Hi, this is Ana from billing.", "I've reversed the $35 fee."):
            console_reply(session=session, user=ana, text=text, channel="sms")
            assert output.until("relay to customer:") == f"relay to customer: {text}"
        session_hand_back(session=session, user=ana, bot="sms-bot", note="Fee reversed")
        output.until("bot (taking the conversation back)")
        output.until("bot: done")
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()

    assert "hand-back from ana: note 'Fee reversed'" in output.lines
    assert output.lines[:4] == [
        "bot: opened session relay-1 (0 turns so far)",
        "customer: Hi, you charged me a $35 overdraft fee but I had money in my account.",
        "bot: Sorry about that! I can see the fee from Tuesday. Let me check what happened.",
        "customer: I want it reversed, and I'd like to talk to a person please.",
    ]
    # Only the specialist's replies were relayed, each once; the bot's own turns were not.
    assert [line for line in output.lines if line.startswith("relay to customer")] == [
        "relay to customer: Hi, this is Ana from billing.",
        "relay to customer: I've reversed the $35 fee.",
    ]
    session.refresh_from_db()
    assert (session.status, session.holder_label, session.doc_count) == ("bot", "sms-bot", 6)
