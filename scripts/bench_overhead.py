"""Per-call overhead of the REST API (issue 9): open, get, query and add, through the SDK
against a uvicorn process this script starts, one call at a time.

Queries and adds are timed twice: with the client sending the embedding (the API's own
cost: no model work on the server) and with the server embedding the text (what a bot
sees). `--runs N` sets the calls per figure (default 200), `--turns N` the session size.
Run: `.venv/bin/python scripts/bench_overhead.py`.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
os.environ.setdefault("MOSS_API_KEY_RATE", "off")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from moss_client import DocumentInfo, MossClientSync, QueryOptions  # noqa: E402
from scripts.bench import QUERIES, bench_project, text_pool, turn_metadata  # noqa: E402
from tests.servers import server_process  # noqa: E402


def arg(name: str, default: int) -> int:
    args = sys.argv[1:]
    return int(args[args.index(name) + 1]) if name in args else default


RUNS = arg("--runs", 200)
TURNS = arg("--turns", 1_000)
WARM_UP = 20


def unit_vector(rng: np.random.Generator) -> list[float]:
    vector = rng.standard_normal(384).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def timed(action: Callable[[int], object]) -> list[float]:
    for run in range(WARM_UP):
        action(run)
    samples = []
    for run in range(RUNS):
        started = time.perf_counter()
        action(run)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    rng = np.random.default_rng(3)
    texts = text_pool(TURNS)
    with (
        bench_project() as (project, key),
        server_process() as base_url,
        MossClientSync(project.public_id, key, base_url=base_url) as client,
    ):
        session = client.session("overhead")
        for start in range(0, TURNS, 500):
            session.add_docs(
                [
                    DocumentInfo(
                        id=f"turn-{i}",
                        text=texts[i],
                        metadata=turn_metadata(i),
                        embedding=unit_vector(rng),
                    )
                    for i in range(start, min(start + 500, TURNS))
                ]
            )
        vectors = [unit_vector(rng) for _ in range(16)]
        picks = random.Random(5)
        counter = iter(range(10**9))

        def add_one(embedded: bool) -> Callable[[int], object]:
            def call(run: int) -> object:
                n = next(counter)
                text = texts[picks.randrange(TURNS)]
                return session.add_docs(
                    [
                        DocumentInfo(
                            id=f"added-{n}",
                            text=text,
                            metadata={"role": "customer"},
                            embedding=None if embedded else vectors[n % 16],
                        )
                    ]
                )

            return call

        rows = {
            "open (POST /sessions, existing)": lambda run: client.session("overhead"),
            "get (GET /sessions/{name})": lambda run: client.get_session("overhead"),
            "query, client embedding": lambda run: session.query(
                QUERIES[run % len(QUERIES)],
                QueryOptions(top_k=5, embedding=vectors[run % 16]),
            ),
            "query, server embeds": lambda run: session.query(
                QUERIES[run % len(QUERIES)], QueryOptions(top_k=5)
            ),
            "add 1 turn, client embedding": add_one(False),
            "add 1 turn, server embeds": add_one(True),
        }
        print(
            f"API per-call latency, {RUNS} calls each after {WARM_UP} warm-up, "
            f"session of {TURNS:,} turns; load average before "
            f"{' '.join(f'{n:.1f}' for n in os.getloadavg())}"
        )
        for label, action in rows.items():
            samples = np.asarray(timed(action))
            print(
                f"  {label:<34} p50 {np.percentile(samples, 50):6.2f} ms  "
                f"p95 {np.percentile(samples, 95):6.2f} ms  "
                f"(load {os.getloadavg()[0]:.1f})"
            )


if __name__ == "__main__":
    main()
