"""The product note end to end: agent A in one OS process, agent B in another started
after A has exited, both through scripts/handoff_example.py against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moss_client import MossClientSync

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "scripts" / "handoff_example.py"


@pytest.fixture
def agent_env(live_server_url: str, make_project: Callable[..., Any]) -> dict[str, str]:
    project, key = make_project("Acme")
    return {
        **os.environ,
        "MOSS_PROJECT_ID": project.public_id,
        "MOSS_PROJECT_KEY": key,
        "MOSS_BASE_URL": live_server_url,
    }


def run_example(env: dict[str, str], *args: str) -> list[str]:
    finished = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    print(finished.stdout)  # the scores, for `pytest -s`
    return finished.stdout.splitlines()


def test_agent_b_in_a_later_process_resumes_agent_a_s_context(agent_env: dict[str, str]) -> None:
    run_example(agent_env, "agent-a", "conv-123")  # returns only once process A has exited

    lines = run_example(agent_env, "agent-b", "conv-123")

    assert lines[0] == "Resumed with 2 turns of prior context"
    results = [line for line in lines if line.startswith("turn-")]
    assert [line.split()[0] for line in results] == ["turn-2", "turn-1"]
    assert results[0].endswith("Agent confirmed a refund in 3-5 business days.")
    scores = [float(line.split()[1].removeprefix("score=")) for line in results]
    assert scores == sorted(scores, reverse=True)

    with MossClientSync(
        agent_env["MOSS_PROJECT_ID"],
        agent_env["MOSS_PROJECT_KEY"],
        base_url=agent_env["MOSS_BASE_URL"],
    ) as client:
        session = client.get_session("conv-123")
        assert (session.doc_count, session.version, session.status) == (3, 2, "bot")
        assert [doc.id for doc in session.get_docs()] == ["turn-1", "turn-2", "turn-3"]


def test_the_sample_script_runs_both_agents_on_a_fresh_session_each_time(
    agent_env: dict[str, str],
) -> None:
    for _ in range(2):
        lines = run_example(agent_env)
        assert "Resumed with 2 turns of prior context" in lines
        first_result = next(line for line in lines if line.startswith("turn-"))
        assert first_result.startswith("turn-2 ")
