"""Benchmark: query, ingest and open-session figures for sessions of 100, 1,000 and 10,000 turns,
and the return path's latency: push -> long-poll wake and push -> webhook receipt.

Prints figures and ratios; nothing here passes or fails. Run with `make bench`;
`scripts/bench.py --events-only` runs only the event-stream part (under a minute),
`--no-events` all but the webhook and event-stream parts, `--ingest-only` only the
server-embedded ingest figures (a minute or two),
`scripts/bench.py webhooks` only the webhook figure.
It starts its own uvicorn process against the configured database (the embedded
PostgreSQL unless DATABASE_URL is set), works in a throw-away project, and
deletes that project at the end.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, whatever is installed
# The raw-model figures run under the server's allocator settings, as its encoder does.
from moss_web.memory import malloc_tune  # noqa: E402

malloc_tune()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
# The benchmark measures latency, not the per-key throttle (its server inherits this).
os.environ.setdefault("MOSS_API_KEY_RATE", "off")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from moss_client import DocumentInfo, MossClient, MossClientSync, QueryOptions  # noqa: E402
from moss_client.sync import Session  # noqa: E402
from scripts.bench_load import (  # noqa: E402
    BOT_SECONDS,
    BOTS,
    PUSH_EVERY,
    BotFigures,
    bots_run,
    load_average,
    loaded_libraries,
    rss_mb,
    server_pids,
)
from sessions_app import embeddings  # noqa: E402
from sessions_app.actors import Actor  # noqa: E402
from sessions_app.context_windows import (  # noqa: E402
    ContextWindow,
    context_windows,
    said_of,
)
from sessions_app.models import Project  # noqa: E402
from sessions_app.selectors import session_get  # noqa: E402
from sessions_app.services.handoffs import session_push  # noqa: E402
from sessions_app.services.projects import project_create  # noqa: E402
from sessions_app.services.search import DEFAULT_ALPHA, turns_search  # noqa: E402
from sessions_app.webhooks.services import webhook_create  # noqa: E402
from tests.servers import server_process, worker_process  # noqa: E402
from tests.webhook_receiver import Received, receiver_running  # noqa: E402

SIZES = (100, 1_000, 10_000)
POOL_SIZE = 2_000  # distinct texts, embedded once in this process
API_BATCH = 250  # add_docs batch for the server-embedded ingest figure
BULK_BATCH = 500  # a full add_docs call with client embeddings
QUERY_RUNS = 100
WEBHOOK_RUNS = 100
OPEN_RUNS = 30
WAKE_RUNS = 60
FAN_OUT_FOLLOWERS = 50
FAN_OUT_RUNS = 15
PARKED = 0.2  # seconds for a follower's next long-poll to be waiting on the server
WARM_UP = 5
QUERIES = [
    "status of the refund",
    "customer was charged twice",
    "tracking number for the delayed package",
    "reset password and two-factor code",
    "upgrade to the annual plan",
    "app crashes when syncing",
    "cancel the subscription and get money back",
    "invoice for last month",
    "which email address is on the account",
    "escalate to a supervisor",
]

CUSTOMER_LINES = [
    "I was charged {amount} twice for my {product} subscription this month.",
    "My order {order} still hasn't arrived, the tracking page says it's stuck in {city}.",
    "I can't log in to {product}; the password reset email never comes.",
    "The {product} app crashes every time I try to sync my {thing}.",
    "Can I upgrade to the {plan} plan without losing my {thing}?",
    "I'd like to cancel {product} and get a refund for the last {amount}.",
    "Where can I download the invoice for order {order}?",
    "I changed my email to {email} but the receipts still go to the old one.",
    "Two-factor codes by SMS stopped arriving after I moved to {city}.",
    "This is the third time I'm calling about {order}, I want a supervisor.",
    "The {plan} plan was supposed to include {thing}, but I don't see it.",
    "Your {product} update deleted my {thing}, can you restore them?",
]
AGENT_LINES = [
    "I can see the duplicate {amount} charge on {product}; I've started a refund.",
    "The refund of {amount} was approved and should post in 3-5 business days.",
    "Order {order} is delayed at the {city} depot; a new tracking number is on its way.",
    "I've sent a fresh password reset link to {email}, valid for 30 minutes.",
    "Please update {product} to the latest version and sync your {thing} again.",
    "Your account is now on the {plan} plan; your {thing} carried over.",
    "The invoice for order {order} is attached and also available under Billing.",
    "I've updated the billing email to {email} for future receipts.",
    "I've reset two-factor on your account; you can enrol a new phone now.",
    "I'm escalating this to a supervisor with the full history of {order}.",
    "Engineering confirmed the {product} sync bug; a fix ships this week.",
    "I've restored your {thing} from last night's backup.",
]
FILLERS = {
    "amount": ["$49.99", "$12.00", "$199.00", "$7.50", "$89.90", "$24.99", "$320.00"],
    "product": ["Moss Notes", "Moss Drive", "Moss Mail", "Moss Calendar", "Moss Photos"],
    "order": [f"#{n}" for n in range(48_100, 48_190, 7)],
    "city": ["Leeds", "Denver", "Lyon", "Osaka", "Porto", "Austin", "Graz"],
    "thing": ["notes", "contacts", "photos", "calendars", "playlists", "files"],
    "plan": ["Pro", "Team", "Family", "annual", "Business"],
    "email": ["dana@example.com", "luis.o@example.org", "priya@example.net", "sam@example.io"],
}
CHANNELS = ["voice", "chat", "email", "sms"]


CUSTOMER_OPENERS = ["", "Hi, ", "Hello again. ", "Dana here: ", "Quick question: ", "Sorry, "]
CUSTOMER_CLOSERS = [
    "",
    " It's urgent, I travel on Friday.",
    " I already tried twice.",
    " Thanks for your help.",
    " My account number is {order}.",
    " I'm on the {plan} plan.",
]
AGENT_OPENERS = ["", "Thanks for waiting. ", "Understood. ", "I checked your account: "]
AGENT_CLOSERS = [
    "",
    " Is there anything else I can help with?",
    " You'll get an email confirmation shortly.",
    " Your reference is {order}.",
    " I've added a note for the next agent.",
]


def text_pool(size: int, *, seed: int = 7) -> list[str]:
    """Distinct, realistic support turns from templated combinations (tens of thousands)."""
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    for _ in range(size * 50):
        customer = rng.random() < 0.5
        opener = rng.choice(CUSTOMER_OPENERS if customer else AGENT_OPENERS)
        line = rng.choice(CUSTOMER_LINES if customer else AGENT_LINES)
        if opener.endswith((", ", ": ")) and not line.startswith("I"):
            line = line[0].lower() + line[1:]
        template = opener + line + rng.choice(CUSTOMER_CLOSERS if customer else AGENT_CLOSERS)
        fills = {key: rng.choice(values) for key, values in FILLERS.items()}
        texts[template.format(**fills)] = None
        if len(texts) == size:
            return list(texts)
    raise RuntimeError(f"the templates give fewer than {size} distinct texts")


def turn_metadata(index: int) -> dict[str, str]:
    return {
        "channel": CHANNELS[index % len(CHANNELS)],
        "role": "customer" if index % 2 == 0 else "agent",
    }


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def timed_ms(action: Callable[[str], object], runs: int) -> list[float]:
    """Milliseconds per call of action(query), cycling through QUERIES, after a warm-up."""
    queries = cycling(QUERIES)
    for _ in range(WARM_UP):
        action(next(queries))
    samples = []
    for _ in range(runs):
        query = next(queries)
        started = time.perf_counter()
        action(query)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def cycling(items: list[str]) -> Iterator[str]:
    while True:
        yield from items


def query_row(size: int, session: Session, session_id: int) -> tuple[str, list[float]]:
    """One line of the query table: HTTP through the SDK, then the same search in-process;
    and the HTTP samples."""
    vectors = {q: embeddings.query_embed(q).tolist() for q in QUERIES}
    http = timed_ms(lambda q: session.query(q, QueryOptions(top_k=5)), QUERY_RUNS)
    local = timed_ms(
        lambda q: turns_search(session_ids=[session_id], query=q, top_k=5, alpha=DEFAULT_ALPHA),
        QUERY_RUNS,
    )
    encode = timed_ms(embeddings.query_embed, QUERY_RUNS)
    sql = timed_ms(
        lambda q: turns_search(
            session_ids=[session_id], query=q, top_k=5, alpha=DEFAULT_ALPHA, embedding=vectors[q]
        ),
        QUERY_RUNS,
    )
    http50, http95 = percentile(http, 50), percentile(http, 95)
    local50, local95 = percentile(local, 50), percentile(local, 95)
    return (
        f"{size:>7,} | {http50:>7.1f}ms {http95:>5.1f}ms | {local50:>9.1f}ms "
        f"{local95:>5.1f}ms | {http50 / local50:>16.2f} {http95 / local95:>5.2f} | "
        f"{percentile(encode, 50):>8.1f}ms | {percentile(sql, 50):>6.1f}ms "
        f"{percentile(sql, 95):>4.1f}ms"
    ), http


def open_row(size: int, client: MossClientSync, name: str) -> tuple[str, list[float]]:
    samples = timed_ms(lambda _query: client.session(name), OPEN_RUNS)
    line = f"{size:>7,} | {percentile(samples, 50):>5.1f}ms | {percentile(samples, 95):>5.1f}ms"
    return line, samples


def stamp_into(times: list[float]) -> Callable[[object], None]:
    """A done-callback that records when it ran."""
    return lambda _done: times.append(time.perf_counter())


def push_committed(project: Project, name: str, target: str) -> float:
    """A push through the service in this process; returns the moment it committed."""
    committed: list[float] = []
    with transaction.atomic():
        session_push(
            session=session_get(project=project, name=name),
            actor=Actor.system("bench"),
            to_target=target,
        )
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
    return committed[0]


async def wake_samples(
    project: Project, key: str, base_url: str, *, followers: int, runs: int, by_commit: bool
) -> tuple[list[float], list[float]]:
    """Milliseconds until the last follower's stream yields the pushed event, and of the
    push itself. Followers are SDK streams parked in a long-poll. The push is an SDK
    call timed from sending it, or (by_commit) a service call timed from its commit."""
    project_id = project.public_id
    async with MossClient(project_id, key, base_url=base_url, agent="bench-bot") as pusher:
        session = await pusher.session(f"bench-wake-{followers}-{by_commit}")
        start = await pusher.latest_event_cursor()
        clients = [MossClient(project_id, key, base_url=base_url) for _ in range(followers)]
        streams = [
            client.events(after=start, session=session.name, types=["session.pushed"])
            for client in clients
        ]
        commit_push = sync_to_async(push_committed)
        wakes, pushes = [], []
        try:
            for run in range(WARM_UP + runs):
                woken: list[float] = []
                waiting = [asyncio.create_task(anext(stream)) for stream in streams]
                for task in waiting:
                    task.add_done_callback(stamp_into(woken))
                await asyncio.sleep(PARKED)
                sent = time.perf_counter()
                if by_commit:
                    sent = await commit_push(project, session.name, f"bot-{run}")
                else:
                    await session.push_index(target=f"bot-{run}")
                pushed = time.perf_counter()
                await asyncio.gather(*waiting)
                if run >= WARM_UP:
                    wakes.append((max(woken) - sent) * 1000)
                    pushes.append((pushed - sent) * 1000)
        finally:
            for client in clients:
                await client.aclose()
    return wakes, pushes


def wake_rows(project: Project, key: str, base_url: str) -> None:
    print("Event stream: push -> long-poll wake (until the SDK stream yields the event)")
    print(
        f"{'push':<22} | {'followers':>9} | {'runs':>4} | {'wake p50':>8} | {'p95':>7} | "
        f"{'push call p50':>13}"
    )
    rows = (
        ("SDK call, from sending", 1, WAKE_RUNS, False),
        ("SDK call, from sending", FAN_OUT_FOLLOWERS, FAN_OUT_RUNS, False),
        ("service, from commit", 1, WAKE_RUNS, True),
    )
    for label, followers, runs, by_commit in rows:
        wakes, pushes = asyncio.run(
            wake_samples(
                project, key, base_url, followers=followers, runs=runs, by_commit=by_commit
            )
        )
        push_call = "" if by_commit else f"{percentile(pushes, 50):>11.1f}ms"
        print(
            f"{label:<22} | {followers:>9} | {runs:>4} | {percentile(wakes, 50):>6.1f}ms | "
            f"{percentile(wakes, 95):>5.1f}ms | {push_call:>13}"
        )
    print(
        f"  with {FAN_OUT_FOLLOWERS} followers, wake = until the last of them has its event;"
        "\n  the push call includes the SDK's re-read of the session after the handoff;"
        "\n  'from commit' = NOTIFY, the listener, the re-read, the HTTP reply, the SDK."
    )


@contextmanager
def bench_project() -> Iterator[tuple[Project, str]]:
    project, key = project_create(name=f"bench-{int(time.time())}")
    try:
        yield project, key
    finally:
        project.delete()


def ingest_with_server_embedding(session: Session, texts: list[str], batch: int) -> float:
    """turns/s through the API, the server computing every embedding."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        session.add_docs(
            [
                DocumentInfo(id=f"turn-{i}", text=texts[i], metadata=turn_metadata(i))
                for i in range(start, min(start + batch, len(texts)))
            ]
        )
    return len(texts) / (time.perf_counter() - started)


def context_windows_of(texts: list[str], batch: int) -> list[list[ContextWindow]]:
    """The context windows the server encodes beside the plain texts when these texts are
    appended, in calls of `batch`, to an empty session (sessions_app/context_windows.py)."""
    said = [said_of(text, turn_metadata(i)) for i, text in enumerate(texts)]
    return [
        context_windows(
            previous=said[start - 1] if start else None, turns=said[start : start + batch]
        )
        for start in range(0, len(said), batch)
    ]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time these processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stored_encoder() -> str:
    """Which encoder gives stored text its vectors."""
    model = embeddings.passage_model_get()
    return "the int8 twin" if model is not embeddings.model_get() else "the model itself"


@dataclass(frozen=True)
class RawModel:
    """The encoder alone, in this process, on the work the 1,000-turn API ingest gives it."""

    pool_rate: float  # texts/s over the whole pool, batches of 64
    same_batches_rate: float  # texts/s, the 1,000 plain texts in calls of API_BATCH
    stored_batches_rate: float  # the same, by the encoder stored text gets (the int8 twin)
    same_work_rate: float  # turns/s, each turn's plain text and context window, calls of API_BATCH
    same_work_cpu_ms: float  # CPU per turn of that


def ingest_report(
    *, raw: RawModel, ingest: dict[str, float], server_cpu_ms: float, with_client: bool
) -> None:
    api_rate = ingest["1000"]
    print("Ingest")
    print(
        f"  API add_docs, server embeds (1,000 turns, batches of {API_BATCH}): "
        f"{api_rate:>7.1f} turns/s, server CPU {server_cpu_ms:.1f} ms/turn"
    )
    print(
        f"  API add_docs, server embeds (100 turns, one batch):       {ingest['100']:>7.1f} turns/s"
    )
    print(
        f"  raw model, embeddings.texts_embed ({POOL_SIZE:,} texts, batch 64): "
        f"{raw.pool_rate:>7.1f} texts/s"
    )
    print(
        f"  raw model, the same 1,000 texts in calls of {API_BATCH} (as the API ingest): "
        f"{raw.same_batches_rate:>7.1f} texts/s"
    )
    print(
        "  raw model, the same 1,000 turns' texts and context windows (the API's encode work): "
        f"{raw.same_work_rate:>7.1f} turns/s, CPU {raw.same_work_cpu_ms:.1f} ms/turn"
    )
    print(
        f"  stored-text encoder ({stored_encoder()}), the same calls: "
        f"{raw.stored_batches_rate:>7.1f} texts/s"
    )
    print(f"  ratio API / raw model (same batches): {api_rate / raw.same_batches_rate:.2f}")
    print(
        "  ratio API / stored-text encoder (same batches): "
        f"{api_rate / raw.stored_batches_rate:.2f}"
    )
    print(
        f"  ratio API / raw model (same work):    {api_rate / raw.same_work_rate:.2f}"
        "  (the rest: storing, extraction, HTTP)"
    )
    print(f"  load average: {load_average()}")
    if with_client:
        print(
            f"  API add_docs, client-supplied embeddings (10,000 turns, batches of {BULK_BATCH}): "
            f"{ingest['client']:>7.1f} turns/s"
        )
        print(
            f"  (the 10,000-turn session is built that way: {POOL_SIZE:,} distinct texts embedded"
            " once in this process,\n   each turn a random pick among them, sent with its"
            " embedding through the API)"
        )


def ingest_with_client_embeddings(
    session: Session, texts: list[str], vectors: dict[str, list[float]], count: int, batch: int
) -> float:
    """turns/s through the API with embeddings supplied (no model on the server side)."""
    rng = random.Random(11)
    picks = [rng.choice(texts) for _ in range(count)]
    started = time.perf_counter()
    for start in range(0, count, batch):
        session.add_docs(
            [
                DocumentInfo(
                    id=f"turn-{i}",
                    text=picks[i],
                    metadata=turn_metadata(i),
                    embedding=vectors[picks[i]],
                )
                for i in range(start, min(start + batch, count))
            ]
        )
    return count / (time.perf_counter() - started)


def arrived_after(count: int) -> Callable[[list[Received]], bool]:
    return lambda received: len(received) > count


def webhook_latency_ms(client: MossClientSync, project: Project) -> dict[str, list[float]]:
    """From the start of a push (the SDK call) to the receiver reading its webhook, the
    push call alone, and from a push's commit (a service call in this process) to its
    receipt; one push at a time, deliver_webhooks as its own process."""
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    with (
        receiver_running() as receiver,
        worker_process(env={"MOSS_WEBHOOK_ALLOW_PRIVATE": "true"}),
    ):
        webhook_create(
            project=project, actor=Actor.system("bench"), url=receiver.url, types=["session.pushed"]
        )
        session = client.session("bench-webhooks")
        figures: dict[str, list[float]] = {"receipt": [], "push": [], "commit": []}
        for run in range(WARM_UP + WEBHOOK_RUNS):
            before = len(receiver.received)
            started = time.monotonic()
            session.push_index(to="bot", target="bench-bot")
            answered = time.monotonic()
            received = receiver.wait_for(arrived_after(before))[before]
            if run >= WARM_UP:
                figures["receipt"].append((received.at - started) * 1000)
                figures["push"].append((answered - started) * 1000)
        stored = session_get(project=project, name=session.name)
        for run in range(WARM_UP + WEBHOOK_RUNS):
            before = len(receiver.received)
            session_push(session=stored, actor=Actor.system("bench"), to_target="bench-bot")
            committed = time.monotonic()
            received = receiver.wait_for(arrived_after(before))[before]
            if run >= WARM_UP:
                figures["commit"].append((received.at - committed) * 1000)
    return figures


def webhook_report(client: MossClientSync, project: Project) -> None:
    figures = webhook_latency_ms(client, project)
    print()
    print(
        f"Push → webhook receipt: {WEBHOOK_RUNS} pushes one at a time, worker process "
        f"(LISTEN/NOTIFY), receiver on 127.0.0.1; load average {os.getloadavg()[0]:.1f}"
    )
    rows = (
        ("push → receipt", figures["receipt"]),
        ("the push call alone", figures["push"]),
        ("commit → receipt", figures["commit"]),
    )
    for label, samples in rows:
        print(
            f"  {label:<20} p50 {percentile(samples, 50):>6.1f} ms, "
            f"p95 {percentile(samples, 95):>6.1f} ms, max {max(samples):>6.1f} ms"
        )


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def bots_report(
    project: Project, key: str, base_url: str, pool: list[str], *, workers: int
) -> BotFigures:
    figures = bots_run(project.public_id, key, base_url, pool)
    print()
    print(
        f"{BOTS} concurrent bots, {workers} server worker(s), {BOT_SECONDS:.0f} s: each opens its "
        f"session, adds 2 turns, queries, and every {PUSH_EVERY}th round pushes"
    )
    print(
        f"  {figures.throughput:.1f} requests/s; query p50 "
        f"{percentile(figures.query_ms, 50):.1f} ms, "
        f"p95 {percentile(figures.query_ms, 95):.1f} ms; "
        f"{figures.errors} failed rounds; load average {load_average()}"
    )
    return figures


# Issue 9's figures before this work (docs/benchmark-history.md): 16 bots gave 20 requests/s.
BOTS_BEFORE = 20.0


def targets_report(
    *,
    query_http: dict[int, list[float]],
    open_samples: dict[int, list[float]],
    ingest_ratio: float,
    stored_ingest_ratio: float,
    bots_one: BotFigures,
    bots_two: BotFigures,
    worker_rss: float,
) -> None:
    """Each target of issue 9 this bench measures, the figure, and figure / target."""
    rows = [
        ("query p50, 1,000 turns (ms)", percentile(query_http[1_000], 50), 8.0, "<="),
        ("query p50, 10,000 turns (ms)", percentile(query_http[10_000], 50), 10.0, "<="),
        ("query p99, 10,000 turns (ms)", percentile(query_http[10_000], 99), 25.0, "<="),
        # "At any session size": the slowest size's p50, not the p50 of all sizes' calls.
        (
            "open p50, slowest size (ms)",
            max(percentile(samples, 50) for samples in open_samples.values()),
            4.0,
            "<=",
        ),
        ("ingest / full model, same batches", ingest_ratio, 0.9, ">="),
        ("16 bots, requests/s (3x 20)", bots_one.throughput, 3 * BOTS_BEFORE, ">="),
        ("16 bots, query p95 (ms)", percentile(bots_one.query_ms, 95), 100.0, "<="),
        ("16 bots, 2 workers / 1 worker", bots_two.throughput / bots_one.throughput, 1.0, ">"),
        ("serving memory per worker (MB)", worker_rss, 350.0, "<="),
    ]
    print()
    print(f"Issue 9 targets (load average now {load_average()})")
    print(f"  {'target':<34} {'measured':>9} {'target':>9} {'ratio':>6}  met")
    for label, measured, target, sense in rows:
        met = {"<=": measured <= target, ">=": measured >= target, ">": measured > target}[sense]
        print(
            f"  {label:<34} {measured:>9.2f} {sense:>2}{target:>7.2f} "
            f"{measured / target:>6.2f}  {'yes' if met else 'NO'}"
        )
    print(
        f"  (ingest / the stored-text encoder, {stored_encoder()}, same batches:"
        f" {stored_ingest_ratio:.2f}; Chroma side by side: not measured here.)"
    )


def webhooks_only() -> None:
    with (
        bench_project() as (project, key),
        server_process() as base_url,
        MossClientSync(project.public_id, key, base_url=base_url) as client,
    ):
        webhook_report(client, project)


def main() -> None:
    bench_started = time.perf_counter()
    print("moss-web benchmark")
    print(
        f"  machine: {os.cpu_count()} CPU cores ({platform.machine()}), shared; "
        f"database: {connection.vendor} {connection.settings_dict['HOST'] or 'localhost'}"
    )
    print(
        "  server: uvicorn, 1 worker, started by this script; model all-MiniLM-L6-v2 "
        f"({getattr(settings, 'EMBEDDING_BACKEND', 'torch')} backend, "
        f"{getattr(settings, 'EMBEDDING_THREADS', 0)} thread(s))"
    )
    print(f"  load average before the run: {' '.join(f'{n:.1f}' for n in os.getloadavg())}")
    if "--events-only" in sys.argv[1:]:
        with bench_project() as (project, key), server_process() as base_url:
            print()
            wake_rows(project, key, base_url)
        return

    pool = text_pool(POOL_SIZE)
    embeddings.model_get()
    embeddings.texts_embed(pool[:64])  # warm
    started = time.perf_counter()
    pool_vectors = embeddings.texts_embed(pool)
    raw_rate = len(pool) / (time.perf_counter() - started)
    # The raw model on exactly the work the 1,000-turn API ingest gives the server.
    started = time.perf_counter()
    for start in range(0, 1_000, API_BATCH):
        embeddings.texts_embed(pool[start : start + API_BATCH])
    raw_api_batch_rate = 1_000 / (time.perf_counter() - started)
    # ... by the encoder the server stores them with (the int8 twin unless
    # EMBEDDING_PASSAGE_INT8=false), and with the context windows it encodes beside them
    # (the second encode, by design; the int8 twin unless EMBEDDING_CONTEXT_INT8=false).
    embeddings.stored_texts_embed(pool[:64])  # warm
    started = time.perf_counter()
    for start in range(0, 1_000, API_BATCH):
        embeddings.stored_texts_embed(pool[start : start + API_BATCH])
    stored_batches_rate = 1_000 / (time.perf_counter() - started)
    windows = context_windows_of(pool[:1_000], API_BATCH)
    started, cpu_started = time.perf_counter(), time.process_time()
    for number, start in enumerate(range(0, 1_000, API_BATCH)):
        embeddings.stored_texts_embed(pool[start : start + API_BATCH])
        embeddings.windows_embed(windows[number])
    raw = RawModel(
        pool_rate=raw_rate,
        same_batches_rate=raw_api_batch_rate,
        stored_batches_rate=stored_batches_rate,
        same_work_rate=1_000 / (time.perf_counter() - started),
        same_work_cpu_ms=(time.process_time() - cpu_started) * 1_000 / 1_000,  # ms per turn
    )
    ingest_only = "--ingest-only" in sys.argv[1:]
    vectors = {text: vector.tolist() for text, vector in zip(pool, pool_vectors, strict=True)}

    with bench_project() as (project, key), server_process() as base_url:
        client = MossClientSync(project.public_id, key, base_url=base_url, timeout=300)
        sessions: dict[int, Session] = {}
        ingest: dict[str, float] = {}
        server = server_pids(port_of(base_url))
        server_cpu_ms = 0.0
        for size in SIZES[:2] if ingest_only else SIZES:
            session = client.session(f"bench-{size}", metadata={"customer_id": "bench"})
            if size <= 1_000:
                cpu_started = cpu_seconds(server)
                rate = ingest_with_server_embedding(session, pool[:size], min(size, API_BATCH))
                ingest[f"{size}"] = rate
                server_cpu_ms = (cpu_seconds(server) - cpu_started) * 1_000 / size
            else:
                rate = ingest_with_client_embeddings(session, pool, vectors, size, BULK_BATCH)
                ingest["client"] = rate
            assert session.doc_count == size, (session.name, session.doc_count)
            sessions[size] = session
        server_mb = {"the ingest": rss_mb(server[0])}
        if ingest_only:
            print()
            ingest_report(raw=raw, ingest=ingest, server_cpu_ms=server_cpu_ms, with_client=False)
            client.close()
            return

        print()
        print(
            f"Query latency: top_k=5, alpha={DEFAULT_ALPHA} (the default), "
            f"{QUERY_RUNS} queries per size ({len(QUERIES)} distinct support questions), "
            f"after {WARM_UP} warm-up queries"
        )
        header = (
            f"{'turns':>7} | {'HTTP p50':>9} {'p95':>7} | {'in-proc p50':>11} {'p95':>7} | "
            f"{'HTTP/in-proc p50':>16} {'p95':>5} | {'encode p50':>10} | {'rank p50':>8} {'p95':>6}"
        )
        print(header)
        print("-" * len(header))
        query_http: dict[int, list[float]] = {}
        for size, session in sessions.items():
            session_id = session_get(project=project, name=session.name).pk
            line, query_http[size] = query_row(size, session, session_id)
            print(line)
        server_mb["the queries (their sessions' search indexes loaded)"] = rss_mb(server[0])
        print(
            "  in-proc = sessions_app.services.search.turns_search in this process (model encode"
            " + ranking);\n  encode = the model alone; rank = turns_search given the query's"
            " vector (as a client may send it: no encode)."
        )

        print()
        ingest_report(raw=raw, ingest=ingest, server_cpu_ms=server_cpu_ms, with_client=True)
        api_rate = ingest["1000"]

        print()
        print(f"Open session: POST /api/v1/sessions on an existing session, {OPEN_RUNS} calls")
        print(f"{'turns':>7} | {'p50':>7} | {'p95':>7}")
        open_samples: dict[int, list[float]] = {}
        for size, session in sessions.items():
            line, open_samples[size] = open_row(size, client, session.name)
            print(line)
        bots_one = bots_report(project, key, base_url, pool, workers=1)
        server_rss = {pid: rss_mb(pid) for pid in server_pids(port_of(base_url))}
        print(
            "  server memory (RSS) after it: "
            + ", ".join(f"{mb:.0f} MB (pid {pid})" for pid, mb in server_rss.items())
            + "; torch libraries mapped: "
            + (", ".join(lib for pid in server_rss for lib in loaded_libraries(pid)) or "none")
        )
        print(
            "  earlier: " + "; ".join(f"after {part} {mb:.0f} MB" for part, mb in server_mb.items())
        )
        if "--no-events" not in sys.argv[1:]:
            webhook_report(client, project)
            print()
            wake_rows(project, key, base_url)
        client.close()

    with (
        bench_project() as (project, key),
        server_process(env={**os.environ, "WEB_CONCURRENCY": "2"}) as base_url,
    ):
        bots_two = bots_report(project, key, base_url, pool, workers=2)
        two_rss = [rss_mb(pid) for pid in server_pids(port_of(base_url))]
        print("  worker memory (RSS): " + ", ".join(f"{mb:.0f} MB" for mb in two_rss))

    targets_report(
        query_http=query_http,
        open_samples=open_samples,
        ingest_ratio=api_rate / raw_api_batch_rate,
        stored_ingest_ratio=api_rate / raw.stored_batches_rate,
        bots_one=bots_one,
        bots_two=bots_two,
        worker_rss=max([*server_rss.values(), *two_rss]),
    )
    print()
    print(f"Bench project deleted. Total time {time.perf_counter() - bench_started:.0f}s.")


if __name__ == "__main__":
    if "--scale" in sys.argv[1:]:  # scripts/bench_scale.py: the 1M-turn databases
        args = [a for a in sys.argv[1:] if a != "--scale"]
        os.execv(sys.executable, [sys.executable, str(ROOT / "scripts/bench_scale.py"), *args])
    if sys.argv[1:] == ["webhooks"]:
        webhooks_only()
    else:
        main()
