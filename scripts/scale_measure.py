"""The scale benchmark's measurements, run against one bench database (see bench_scale.py).

Each call's figure is the median of up to RUNS timed runs after one warm-up
(fewer when a call takes seconds). Pages go through Django's test client in
this process, logged in as the bench supervisor; the REST calls go through
the SDK to a uvicorn server started here.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from moss_client import MossClientSync
from moss_client.sync import Session as SdkSession
from sessions_app import embeddings
from sessions_app.models import DashboardDay, Project, Session
from sessions_app.selectors import session_list
from sessions_app.services.dashboard import dashboard_days_refresh
from sessions_app.services.search import turns_search
from tests.servers import server_process

RUNS = 7
SLOW_MS = 2_000  # a call slower than this is timed twice, not RUNS times
QUERIES = [
    "status of the refund",
    "customer was charged twice",
    "tracking number for the delayed package",
    "reset password and two-factor code",
    "app crashes when syncing",
]
SIZES = {"1k": "big-1k", "10k": "big-10k", "50k": "big-50k"}


def timed(action: Callable[[int], object]) -> list[float]:
    action(0)
    samples: list[float] = []
    for run in range(RUNS):
        started = time.perf_counter()
        action(run)
        samples.append((time.perf_counter() - started) * 1000)
        if samples[0] > SLOW_MS and len(samples) >= 2:
            break
    return samples


def figure(samples: list[float], detail: str = "") -> dict[str, Any]:
    return {"ms": statistics.median(samples), "max": max(samples), "detail": detail}


def slowest_plan(action: Callable[[int], object]) -> str:
    with CaptureQueriesContext(connection) as captured:
        action(0)
    if not captured.captured_queries:
        return "(no SQL in this process)"
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return f"{float(slowest['time']) * 1000:.1f} ms: {slowest['sql'][:600]}\n{plan}"


def streamed(client: Client, url: str) -> tuple[float, float, int]:
    """Milliseconds to the first chunk and to the last, and bytes."""
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    body = getattr(response, "streaming_content", None) or [response.content]
    chunks = iter(body)
    size = len(next(chunks, b""))
    first = (time.perf_counter() - started) * 1000
    for chunk in chunks:
        size += len(chunk)
    return first, (time.perf_counter() - started) * 1000, size


def searcher(
    session_id: int, alpha: float, vectors: dict[str, list[float]]
) -> Callable[[int], object]:
    def search(run: int) -> object:
        query = QUERIES[run % len(QUERIES)]
        # The SQL ranking itself: what a query past the in-process index's budget costs.
        with override_settings(MOSS_SEARCH_INDEX_MB=0):
            return turns_search(
                session_ids=[session_id], query=query, alpha=alpha, embedding=vectors[query]
            )

    return search


def lister(project: Project, prefix: str | None) -> Callable[[int], object]:
    return lambda _run: list(session_list(project=project, name_prefix=prefix)[:51])


def opener(sdk: MossClientSync, name: str) -> Callable[[int], object]:
    return lambda _run: sdk.session(name)


def querier(session: SdkSession) -> Callable[[int], object]:
    return lambda run: session.query(QUERIES[run % len(QUERIES)])


def measure_all(*, key: str, explain: bool) -> dict[str, Any]:
    project = Project.objects.get(name="bench-scale")
    pid = project.public_id
    figures: dict[str, dict[str, Any]] = {}
    plans: dict[str, str] = {}
    embeddings.model_get()
    vectors = {q: embeddings.query_embed(q).tolist() for q in QUERIES}

    def record(name: str, action: Callable[[int], object], detail: str = "") -> None:
        figures[name] = figure(timed(action), detail)
        if explain:
            plans[name] = slowest_plan(action)

    # The ranking SQL alone (the in-process index off), given the query's embedding.
    for label, name in SIZES.items():
        session_id = Session.objects.get(project=project, name=name).pk
        for alpha in (0.8, 0.0):
            record(f"search SQL {label} alpha={alpha}", searcher(session_id, alpha, vectors))
    # GET /sessions's default page of 50 (and one more, to know whether more follow):
    # without a status, and by a name prefix that 100 of the sessions have.
    for label, prefix in (("a page", None), ("name prefix", "s-0009")):
        record(f"API sessions list SQL, {label}", lister(project, prefix))

    with server_process() as base_url, MossClientSync(pid, key, base_url=base_url) as sdk:
        for label, name in SIZES.items():
            session = sdk.session(name)
            record(f"REST open/resume {label}", opener(sdk, name))
            samples = timed(querier(session)) + timed(querier(session))
            figures[f"REST query {label}"] = figure(
                samples, f"p95 {sorted(samples)[int(len(samples) * 0.95) - 1]:.1f}ms"
            )
        record(
            "REST customer query (10k session)",
            lambda run: sdk.query_customer("cust-big-10k", QUERIES[run % len(QUERIES)]),
        )

    client = Client()
    client.force_login(project.memberships.get(user__username="bench-sup").user)

    def page(name: str, url: str) -> None:
        sizes: list[int] = []

        def get(_run: int) -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            sizes.append(len(response.content))

        record(name, get)
        figures[name]["detail"] = f"{sizes[-1] / 1024:.0f} KB"

    page("console queue", "/console/")
    page("supervisor sessions list", f"/supervise/p/{pid}/")
    page("supervisor list, channel=sms", f"/supervise/p/{pid}/?channel=sms")
    page("supervisor list, status=waiting", f"/supervise/p/{pid}/?status=waiting")
    page("supervisor list, customer", f"/supervise/p/{pid}/?customer=cust-big-10k")
    page("supervisor search", f"/supervise/p/{pid}/?q=refund+charged+twice")
    page("dashboard 30d", f"/supervise/p/{pid}/dashboard/?window=30d")
    # The first view after the project's past days were dropped: it computes and stores them.
    unstored: list[float] = []
    for _ in range(5):
        DashboardDay.objects.filter(project=project).delete()
        started = time.perf_counter()
        assert client.get(f"/supervise/p/{pid}/dashboard/?window=30d").status_code == 200
        unstored.append((time.perf_counter() - started) * 1000)
    figures["dashboard 30d, days not stored"] = figure(unstored)
    # A change to handoffs of three past days drops them (the trigger); the worker's pass
    # computes them again before a view, which then reads stored days only.
    passes: list[float] = []
    viewed: list[float] = []
    for _ in range(5):
        recent = DashboardDay.objects.filter(project=project).order_by("-day")[:3]
        DashboardDay.objects.filter(pk__in=list(recent.values_list("pk", flat=True))).delete()
        started = time.perf_counter()
        assert dashboard_days_refresh().stored == 3
        passes.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        assert client.get(f"/supervise/p/{pid}/dashboard/?window=30d").status_code == 200
        viewed.append((time.perf_counter() - started) * 1000)
    figures["dashboard days pass, 3 days dropped"] = figure(passes)
    figures["dashboard 30d after the pass"] = figure(viewed)
    page("timeline 10k", f"/supervise/p/{pid}/s/big-10k/")
    page("console session page 10k", f"/console/p/{pid}/s/big-10k/")
    for fmt in ("csv", "jsonl"):
        url = f"/supervise/p/{pid}/s/big-10k/export.{fmt}"
        runs = [streamed(client, url) for _ in range(2)]
        tracemalloc.start()
        streamed(client, url)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        figures[f"export {fmt} 10k, first byte"] = figure([r[0] for r in runs])
        figures[f"export {fmt} 10k, whole"] = figure(
            [r[1] for r in runs],
            f"{runs[-1][2] / 2**20:.1f} MB, peak Python heap {peak / 2**20:.1f} MB",
        )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM sessions_app_turn),"
            " (SELECT count(*) FROM sessions_app_session),"
            " pg_size_pretty(pg_total_relation_size('sessions_app_turn'))"
        )
        turns, sessions, size = cursor.fetchone()
    return {
        "figures": figures,
        "plans": plans,
        "turns": turns,
        "sessions": sessions,
        "table_size": size,
    }
