"""Scale benchmark: the same calls and pages on a small and on a big table.

`make bench-scale` (or `scripts/bench.py --scale`) loads two databases beside
the configured one, generated in SQL by scripts/scale_data.py:
  moss_bench_small: the long sessions (1k, 10k, 50k turns) and --small-sessions
                    ordinary ones (default 1,000: about 80k turns);
  moss_bench_big:   the same, and --sessions ordinary ones (default 50,000:
                    about 1M turns in all).
Each database is loaded once and reused while its parameters are unchanged
(`--reload` starts again). Then each is measured in its own process: REST
query through the SDK and open/resume at 1k/10k/50k turns, the hybrid SQL
alone, and every page that could grow with the table; the table prints each
figure on both and the ratio big/small. `--explain` prints the plan of each
call's slowest SQL statement on the big table. `--sessions 10000` gives a
smaller scale for a busy machine. Demo data is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
SMALL, BIG = "moss_bench_small", "moss_bench_big"
KEY_FILE = "bench-scale-key.json"


def base_database_url() -> str:
    from moss_web import embedded_pg

    return os.environ.get("DATABASE_URL") or embedded_pg.database_url(
        embedded_pg.default_data_dir()
    )


def database_url(name: str) -> str:
    parts = urlsplit(base_database_url())
    return urlunsplit(parts._replace(path="/" + name))


def database_ensure(name: str) -> None:
    import psycopg

    with psycopg.connect(base_database_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(base_database_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child(args: list[str], database: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(database),
        "DB_STATEMENT_TIMEOUT": "0",
        "MOSS_API_KEY_RATE": "off",
        "DJANGO_SETTINGS_MODULE": "moss_web.settings",
    }
    return subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )


# --- in the child process: Django set up against one bench database ---------------------


def django_setup() -> None:
    import django

    django.setup()


def load(sessions: int) -> None:
    """Migrate, and load unless this database already holds this scale."""
    django_setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from scale_data import scale_load

    from sessions_app.models import ApiKey, Membership, Role, Team
    from sessions_app.services.projects import project_create

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_scale_meta (sessions int, key text, loaded boolean)"
        )
        cursor.execute("SELECT sessions, key, loaded FROM bench_scale_meta")
        row = cursor.fetchone()
    if row is not None and row[0] == sessions and row[2]:
        print(json.dumps({"loaded": False, "key": row[1]}))
        return
    if row is not None:
        raise SystemExit("this bench database holds another scale: run with --reload")
    started = time.perf_counter()
    project, key = project_create(name="bench-scale")
    api_key = ApiKey.objects.get(project=project)
    supervisor = User.objects.create_user("bench-sup", password=None)
    Membership.objects.create(user=supervisor, project=project, role=Role.SUPERVISOR)
    agents = []
    team = Team.objects.create(project=project, name="tier2")
    for index in range(8):
        agent = User.objects.create_user(f"bench-agent-{index}", password=None)
        Membership.objects.create(user=agent, project=project, role=Role.AGENT)
        team.members.add(agent)
        agents.append(agent.pk)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_scale_meta VALUES (%s, %s, false)", [sessions, key])
    scale_load(
        project_id=project.pk,
        key_id=api_key.pk,
        key_prefix=api_key.prefix,
        agents=agents,
        sessions=sessions,
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_scale_meta SET loaded = true")
    print(f"  loaded in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    print(json.dumps({"loaded": True, "key": key}))


def measure(key: str, explain: bool) -> None:
    django_setup()
    from scale_measure import measure_all

    print(json.dumps(measure_all(key=key, explain=explain)))


# --- the parent: load both, measure both, print -------------------------------------


def disk_report() -> None:
    data_dir = Path(os.environ.get("MOSS_DATA_DIR") or ROOT / ".moss")
    usage = shutil.disk_usage(data_dir if data_dir.exists() else ROOT)
    print(f"  disk free where the database lives: {usage.free / 2**30:.0f} GiB")
    print(f"  load average: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")


def table_print(small: dict, big: dict) -> None:  # type: ignore[type-arg]
    print()
    print(f"{'call':<44} | {'small':>10} | {'big':>10} | {'big/small':>9} | {'detail (big)'}")
    print("-" * 100)
    for name, figure in small["figures"].items():
        other = big["figures"].get(name)
        if other is None:
            continue
        ratio = other["ms"] / figure["ms"] if figure["ms"] else float("nan")
        print(
            f"{name:<44} | {figure['ms']:>8.1f}ms | {other['ms']:>8.1f}ms | {ratio:>8.2f}x | "
            f"{other.get('detail', '')}"
        )
    for label, result in (("small", small), ("big", big)):
        print(
            f"  {label}: {result['turns']:,} turns, {result['sessions']:,} sessions, "
            f"table {result['table_size']}"
        )
    if big.get("plans"):
        print()
        print("EXPLAIN (ANALYZE, BUFFERS) of each call's slowest statement, big table")
        for name, plan in big["plans"].items():
            print(f"\n--- {name}\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000, help="ordinary sessions, big db")
    parser.add_argument("--small-sessions", type=int, default=1_000)
    parser.add_argument("--reload", action="store_true", help="drop and load both again")
    parser.add_argument("--explain", action="store_true", help="print the big table's plans")
    parser.add_argument("--only", choices=["small", "big"], help="load and measure one")
    args = parser.parse_args()
    print("moss-web scale benchmark")
    disk_report()
    results = {}
    for database, sessions in ((SMALL, args.small_sessions), (BIG, args.sessions)):
        if args.only and not database.endswith(args.only):
            continue
        if args.reload:
            database_drop(database)
        database_ensure(database)
        print(f"{database}: {sessions:,} ordinary sessions", flush=True)
        loaded = json.loads(child(["load", str(sessions)], database).stdout.splitlines()[-1])
        measured = child(
            ["measure", loaded["key"], "1" if args.explain and database == BIG else "0"],
            database,
        )
        results[database] = json.loads(measured.stdout.splitlines()[-1])
    if len(results) == 2:
        table_print(results[SMALL], results[BIG])
    else:
        (only,) = results.values()
        table_print(only, only)
    print(f"  load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        load(int(sys.argv[2]))
    elif sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2], sys.argv[3] == "1")
    else:
        main()
