"""`make bench-peer`: moss-web beside Chroma's HTTP server, same model, same data, same machine.

Chroma runs from its own virtualenv (.bench/chroma-venv, made by `make bench-peer`)
as `chroma run`, storing in a throw-away folder. Both get the same turns (the
texts of scripts/bench.py) in sessions / collections of 1,000 and 10,000 turns,
in batches of 250:
- moss-web: the SDK's add_docs, the server embedding each text; queries through
  the SDK, hybrid at the default alpha, the server embedding the query;
- Chroma: all-MiniLM-L6-v2 run in this process in full precision (the same ONNX
  graph, as Chroma's own default client-side embedding runs it), the vectors
  added and queried over Chroma's REST API (cosine space, top 5). Our server
  encodes queries with the model's int8 twin (EMBEDDING_QUERY_INT8, README
  "Embedding model"); each side's encode is timed alone as well and printed.
So both columns include the model's work. The ingest figure is the 1,000-turn
load; the 10,000-turn session and collection get vectors computed once in this
process (as scripts/bench.py builds its 10,000-turn session), so that the run
takes minutes, not an hour, on a busy machine. Prints figures side by side and the
ratios issue 9 sets as targets. The two answer queries in turn, query by query, so
that both meet the same load on a shared machine. Nothing passes or fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
os.environ.setdefault("MOSS_API_KEY_RATE", "off")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from moss_client import DocumentInfo, MossClientSync, QueryOptions  # noqa: E402
from moss_client.sync import Session  # noqa: E402
from scripts.bench import (  # noqa: E402
    QUERIES,
    WARM_UP,
    bench_project,
    percentile,
    text_pool,
    turn_metadata,
)
from scripts.bench_load import load_average  # noqa: E402
from sessions_app import embeddings  # noqa: E402
from tests.servers import free_port, server_process  # noqa: E402

CHROMA = ROOT / ".bench" / "chroma-venv" / "bin" / "chroma"
SIZES = (1_000, 10_000)
TIMED_INGEST = 1_000  # the size whose load is timed; larger ones get precomputed vectors
BATCH = 250
QUERY_RUNS = 100
CHROMA_API = "/api/v2/tenants/default_tenant/databases/default_database"


@contextmanager
def chroma_server() -> Iterator[str]:
    if not CHROMA.exists():
        sys.exit(f"no Chroma at {CHROMA}: run `make bench-peer`, which installs it")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="chroma-") as data:
        log = open(Path(data) / "chroma.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [str(CHROMA), "run", "--path", data, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base_url}/api/v2/heartbeat", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Chroma did not start: " + Path(log.name).read_text())
                time.sleep(0.3)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=20)
            log.close()


def timed_side_by_side(*actions: Callable[[str], object], runs: int) -> tuple[list[float], ...]:
    """Milliseconds per query for each action, taking turns query by query, so that all
    meet the same load on a shared machine."""
    samples: tuple[list[float], ...] = tuple([] for _ in actions)
    for i in range(WARM_UP + runs):
        for action, into in zip(actions, samples, strict=True):
            started = time.perf_counter()
            action(QUERIES[i % len(QUERIES)])
            if i >= WARM_UP:
                into.append((time.perf_counter() - started) * 1000)
    return samples


def turns_for(size: int, pool: list[str]) -> list[tuple[str, str, dict[str, str]]]:
    return [(f"turn-{i}", pool[i % len(pool)], turn_metadata(i)) for i in range(size)]


def _query(session: Session, text: str) -> None:
    session.query(text, QueryOptions(top_k=5))


def moss_figures(
    client: MossClientSync, pool: list[str], vectors: dict[str, list[float]]
) -> dict[int, dict[str, Any]]:
    figures: dict[int, dict[str, Any]] = {}
    for size in SIZES:
        session = client.session(f"peer-{size}")
        turns = turns_for(size, pool)
        timed_load = size == TIMED_INGEST
        started = time.perf_counter()
        for start in range(0, size, BATCH):
            session.add_docs(
                [
                    DocumentInfo(
                        id=i, text=t, metadata=m, embedding=None if timed_load else vectors[t]
                    )
                    for i, t, m in turns[start : start + BATCH]
                ]
            )
        ingest = size / (time.perf_counter() - started) if timed_load else None
        figures[size] = {"ingest": ingest, "query": partial(_query, session)}
    return figures


def client_query_embed(text: str) -> Any:
    """A query's vector as Chroma's default client embeds it: the full-precision graph."""
    return embeddings.model_get().encode([text], batch_size=1)[0]


def chroma_figures(
    chroma: httpx.Client, pool: list[str], vectors: dict[str, list[float]]
) -> dict[int, dict[str, Any]]:
    figures: dict[int, dict[str, Any]] = {}
    for size in SIZES:
        created = chroma.post(
            "/collections",
            json={
                "name": f"peer-{size}",
                "configuration": {"hnsw": {"space": "cosine"}},
                "get_or_create": True,
            },
        )
        created.raise_for_status()
        collection = created.json()["id"]
        turns = turns_for(size, pool)
        timed_load = size == TIMED_INGEST
        started = time.perf_counter()
        for start in range(0, size, BATCH):
            batch = turns[start : start + BATCH]
            texts = [t for _, t, _ in batch]
            batch_vectors = (
                embeddings.texts_embed(texts).tolist()
                if timed_load
                else [vectors[t] for t in texts]
            )
            chroma.post(
                f"/collections/{collection}/add",
                json={
                    "ids": [i for i, _, _ in batch],
                    "documents": [t for _, t, _ in batch],
                    "metadatas": [m for _, _, m in batch],
                    "embeddings": batch_vectors,
                },
            ).raise_for_status()
        ingest = size / (time.perf_counter() - started) if timed_load else None

        def query(text: str, collection: str = collection) -> None:
            vector = client_query_embed(text).tolist()
            chroma.post(
                f"/collections/{collection}/query",
                json={
                    "query_embeddings": [vector],
                    "n_results": 5,
                    "include": ["documents", "metadatas", "distances"],
                },
            ).raise_for_status()

        figures[size] = {"ingest": ingest, "query": query}
    return figures


def main() -> None:
    print("moss-web beside Chroma's HTTP server (all-MiniLM-L6-v2 for both)")
    print(f"  load average before the run: {load_average()}")
    pool = text_pool(2_000)
    vectors = dict(zip(pool, embeddings.texts_embed(pool).tolist(), strict=True))
    with (
        chroma_server() as chroma_url,
        httpx.Client(base_url=chroma_url + CHROMA_API, timeout=300) as chroma_client,
        bench_project() as (project, key),
        server_process() as base_url,
        MossClientSync(project.public_id, key, base_url=base_url, timeout=300) as moss_client,
    ):
        chroma = chroma_figures(chroma_client, pool, vectors)
        moss = moss_figures(moss_client, pool, vectors)
        ours_encode: list[float] = []
        client_encode: list[float] = []
        for size in SIZES:
            moss[size]["query"], chroma[size]["query"] = timed_side_by_side(
                moss[size]["query"], chroma[size]["query"], runs=QUERY_RUNS
            )
            # Each side's query encode alone in this process: ours (the server's, run
            # here) and Chroma's client's. In a rotation of their own: run between the
            # queries, they took the server's model out of the CPU's caches before each
            # of its queries (about 2 ms more a query here), and not the client's.
            encoded, client = timed_side_by_side(
                embeddings.query_embed, client_query_embed, runs=QUERY_RUNS
            )
            ours_encode += encoded
            client_encode += client

    print()
    print(f"{'':<28} {'moss-web':>10} {'Chroma':>10} {'ratio':>7} {'target':>8}")
    for size in SIZES:
        ours, theirs = percentile(moss[size]["query"], 50), percentile(chroma[size]["query"], 50)
        print(
            f"{f'query p50, {size:,} turns (ms)':<28} {ours:>10.1f} {theirs:>10.1f} "
            f"{ours / theirs:>7.2f} {'<= 0.50':>8}"
        )
        ours, theirs = percentile(moss[size]["query"], 95), percentile(chroma[size]["query"], 95)
        print(
            f"{f'query p95, {size:,} turns (ms)':<28} {ours:>10.1f} {theirs:>10.1f} "
            f"{ours / theirs:>7.2f}"
        )
    floors = percentile(ours_encode, 50), percentile(client_encode, 50)
    print(f"{'encode one query, p50 (ms)':<28} {floors[0]:>10.1f} {floors[1]:>10.1f}")
    for size in SIZES:
        ours = percentile(moss[size]["query"], 50) - floors[0]
        theirs = percentile(chroma[size]["query"], 50) - floors[1]
        print(
            f"{f'query p50 beyond it, {size:,}':<28} {ours:>10.1f} {theirs:>10.1f} "
            f"{ours / theirs:>7.2f}"
        )
    ours, theirs = moss[TIMED_INGEST]["ingest"], chroma[TIMED_INGEST]["ingest"]
    print(
        f"{f'ingest, {TIMED_INGEST:,} turns (turns/s)':<28} {ours:>10.1f} {theirs:>10.1f} "
        f"{ours / theirs:>7.2f} {'>= 1.20':>8}"
    )
    print(
        "  moss-web: hybrid (the default alpha) over HTTP through the SDK, the server embedding;"
        "\n  Chroma: pure vector search over HTTP, the query embedded in this process."
        "\n  Queries encoded by the int8 twin (ours) and the full-precision graph (Chroma's)."
        f"\n  load average after the run: {load_average()}"
    )


if __name__ == "__main__":
    main()
