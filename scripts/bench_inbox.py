"""Inbox benchmark: the console's queue page with few and with many open sessions.

Usage: .venv/bin/python scripts/bench_inbox.py [--small 200] [--big 5000] [--runs 15]
Loads (through the ORM), in a throwaway project of the configured database, `--small` and
then `--big` open sessions (two thirds waiting, routed to anyone, a team or a specialist;
one third held, half of those by the measured specialist, each with a customer turn he has
not seen), and times the inbox as a supervisor and as a specialist: the whole page over
Django's test client, its tab counts, and the attention list the websocket sends after
each event. Prints p50 for each size and the ratio big/small. The project is deleted
afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(project_id: int, team_id: int, agent_id: int, start: int, count: int) -> None:
    """`count` more open sessions, each with an escalation handoff and two turns."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from sessions_app.models import Handoff, Session, Turn

    now = timezone.now()
    sessions = []
    for i in range(start, start + count):
        held = i % 3 == 0
        sessions.append(
            Session(
                project_id=project_id,
                name=f"inbox-{i}",
                model_id="bench",
                metadata={"customer_name": f"C{i}"},
                status="held" if held else "waiting",
                holder_id=agent_id if held and i % 2 == 0 else None,
                holder_label="someone" if held else "",
                queue_team_id=team_id if i % 3 == 1 and i % 2 == 0 else None,
                queue_user_id=agent_id if i % 3 == 2 and i % 5 == 0 else None,
                waiting_since=None if held else now - timedelta(seconds=i),
                version=1,
                doc_count=2,
                last_seq=2,
            )
        )
    Session.objects.bulk_create(sessions, batch_size=1000)
    handoffs = [
        Handoff(
            session=s,
            project_id=project_id,
            version=1,
            doc_count=2,
            last_seq=1,
            from_agent="bench-bot",
            from_channel=("chat", "email", "sms", "voice")[s.pk % 4],
            to_kind="humans",
            reason="Refund not received",
            claimed_at=now - timedelta(minutes=5) if s.status == "held" else None,
        )
        for s in sessions
    ]
    Handoff.objects.bulk_create(handoffs, batch_size=1000)
    for s, h in zip(sessions, handoffs, strict=True):
        s.last_handoff = h
    Session.objects.bulk_update(sessions, ["last_handoff"], batch_size=1000)
    turns = [
        Turn(
            session=s,
            doc_id=f"d{n}",
            seq=n,
            text="The refund has not arrived yet.",
            metadata={"role": "bot" if n == 1 else "customer"},
            model_id="bench",
        )
        for s in sessions
        for n in (1, 2)
    ]
    Turn.objects.bulk_create(turns, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sessions_app_session")
        cursor.execute("ANALYZE sessions_app_turn")


def p50(action: Callable[[], object], runs: int) -> float:
    action()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    from sessions_app.console.selectors import InboxQuery, attention_of, inbox_counts
    from sessions_app.models import Membership, Project, Role, Team

    tag = uuid.uuid4().hex[:8]
    project = Project.objects.create(name=f"bench-inbox-{tag}")
    users: list[User] = []
    try:
        agent = User.objects.create_user(f"bench-agent-{tag}")
        supervisor = User.objects.create_user(f"bench-sup-{tag}")
        users = [agent, supervisor]
        Membership.objects.create(user=agent, project=project, role=Role.AGENT)
        Membership.objects.create(user=supervisor, project=project, role=Role.SUPERVISOR)
        team = Team.objects.create(project=project, name="billing")
        team.members.add(agent)
        clients = {}
        for user in users:
            clients[user.username] = Client()
            clients[user.username].force_login(user)

        results: dict[str, dict[int, float]] = {}
        loaded = 0
        for size in (args.small, args.big):
            load(project.pk, team.pk, agent.pk, loaded, size - loaded)
            loaded = size
            for who, user in (("supervisor", supervisor), ("specialist", agent)):
                client = clients[user.username]

                def page(client: Client = client) -> None:
                    assert client.get("/console/").status_code == 200

                figures: dict[str, Callable[[], object]] = {
                    f"{who}: inbox page (All, 50 rows)": page,
                    f"{who}: tab counts": partial(inbox_counts, user=user, query=InboxQuery()),
                    f"{who}: attention list": partial(attention_of, user=user),
                }
                for name, action in figures.items():
                    results.setdefault(name, {})[size] = p50(action, args.runs)

        load_avg = os.getloadavg()
        print(
            f"open sessions: {args.small} vs {args.big}; p50 of {args.runs} runs; "
            f"load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}"
        )
        print(f"{'':44} {args.small:>9} {args.big:>9}  ratio")
        for name, by_size in results.items():
            small, big = by_size[args.small], by_size[args.big]
            print(f"{name:44} {small:7.1f}ms {big:7.1f}ms  {big / small:4.2f}")
    finally:
        project.delete()
        for user in users:
            user.delete()


if __name__ == "__main__":
    main()
