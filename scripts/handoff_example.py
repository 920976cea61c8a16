"""The product note's handoff, run against this service: agent A and agent B in two processes.

    make run                                    # in another terminal
    .venv/bin/python scripts/handoff_example.py            # A, then B, fresh session
    .venv/bin/python scripts/handoff_example.py agent-a conv-123
    .venv/bin/python scripts/handoff_example.py agent-b conv-123

Credentials come from MOSS_PROJECT_ID / MOSS_PROJECT_KEY (and MOSS_BASE_URL), or else
from the demo key file that `make run` (manage.py seed_demo) writes to .moss/demo-key.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's moss_client, whatever is installed

from moss_client import DocumentInfo, MossClient, MossError, QueryOptions  # noqa: E402


def credentials() -> tuple[str, str, str]:
    base_url = os.environ.get("MOSS_BASE_URL", "http://127.0.0.1:8000")
    project_id = os.environ.get("MOSS_PROJECT_ID")
    project_key = os.environ.get("MOSS_PROJECT_KEY")
    if project_id and project_key:
        return project_id, project_key, base_url
    key_file = Path(os.environ.get("MOSS_DATA_DIR") or ROOT / ".moss") / "demo-key.json"
    if not key_file.exists():
        sys.exit(
            f"No credentials: set MOSS_PROJECT_ID and MOSS_PROJECT_KEY, or run `make run` "
            f"first so that {key_file} exists."
        )
    saved = json.loads(key_file.read_text())
    return saved["project_id"], saved["project_key"], base_url


async def agent_a(name: str) -> None:
    """Agent A, voice channel: builds context during the call, then hands off."""
    project_id, project_key, base_url = credentials()
    async with MossClient(project_id, project_key, base_url=base_url) as client:
        session = await client.session(index_name=name)
        await session.add_docs(
            [
                DocumentInfo(id="turn-1", text="Customer reported a duplicate $49.99 charge."),
                DocumentInfo(id="turn-2", text="Agent confirmed a refund in 3-5 business days."),
            ]
        )
        await session.push_index()  # hand off
        print(f"Agent A: session {session.name} has {session.doc_count} turns; handed off")


async def agent_b(name: str) -> None:
    """Agent B, chat channel, later: resumes with everything agent A had."""
    project_id, project_key, base_url = credentials()
    async with MossClient(project_id, project_key, base_url=base_url) as client:
        session = await client.session(index_name=name)
        print(f"Resumed with {session.doc_count} turns of prior context")
        # Ground the next reply in the full cross-channel history.
        results = await session.query("status of the refund", QueryOptions(top_k=3))
        for doc in results.docs:
            print(f"{doc.id} score={doc.score:.3f} {doc.text}")
        # Continue the conversation and hand off again.
        await session.add_docs(
            [
                DocumentInfo(
                    id="turn-3", text="Customer confirmed the refund posted to their statement."
                ),
            ]
        )
        await session.push_index()
        print(f"Agent B: session {session.name} has {session.doc_count} turns; handed off")


def run_both(name: str) -> int:
    """Each agent in its own process, B started only after A has exited."""
    for agent in ("agent-a", "agent-b"):
        finished = subprocess.run([sys.executable, __file__, agent, name], check=False)
        if finished.returncode != 0:
            return finished.returncode
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", nargs="?", default="all", choices=["all", "agent-a", "agent-b"])
    parser.add_argument(
        "session", nargs="?", help="session name (default: a fresh conv-<random> for `all`)"
    )
    args = parser.parse_args()
    if args.agent == "all":
        return run_both(args.session or f"conv-{secrets.token_hex(4)}")
    if not args.session:
        parser.error(f"{args.agent} needs a session name")
    try:
        asyncio.run(agent_a(args.session) if args.agent == "agent-a" else agent_b(args.session))
    except MossError as exc:
        print(f"{args.agent}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
