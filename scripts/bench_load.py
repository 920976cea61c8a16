"""Pieces of `make bench` for issue 9's load targets: 16 concurrent bots, and a server's memory.

Imported by scripts/bench.py (which sets Django up first).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moss_client import DocumentInfo, MossClient, QueryOptions

BOTS = 16
BOT_SECONDS = 20.0
PUSH_EVERY = 4  # one round in four ends with a push


@dataclass
class BotFigures:
    requests: int = 0
    seconds: float = 0.0
    query_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _bot(
    number: int, client: MossClient, texts: list[str], until: float, figures: BotFigures
) -> None:
    """One bot's rounds: open its session, add 2 turns, query, and sometimes push."""
    rng = random.Random(number)
    round_ = 0
    while time.perf_counter() < until:
        try:
            session = await client.session(f"bench-bot-{number}")
            base = session.doc_count
            await session.add_docs(
                [
                    DocumentInfo(id=f"t{base + i}", text=rng.choice(texts), metadata={"role": role})
                    for i, role in enumerate(("customer", "agent"))
                ]
            )
            started = time.perf_counter()
            await session.query(rng.choice(texts)[:80], QueryOptions(top_k=5))
            figures.query_ms.append((time.perf_counter() - started) * 1000)
            figures.requests += 3
            if round_ % PUSH_EVERY == PUSH_EVERY - 1:
                await session.push_index(target=f"bot-{number}")
                figures.requests += 1
        except Exception:
            figures.errors += 1
        round_ += 1


async def _bots(project_id: str, key: str, base_url: str, texts: list[str]) -> BotFigures:
    figures = BotFigures()
    clients = [MossClient(project_id, key, base_url=base_url, timeout=60) for _ in range(BOTS)]
    try:
        # A warm-up round, not counted.
        await asyncio.gather(
            *(
                _bot(n, c, texts, time.perf_counter() + 0.5, BotFigures())
                for n, c in enumerate(clients)
            )
        )
        started = time.perf_counter()
        until = started + BOT_SECONDS
        await asyncio.gather(*(_bot(n, c, texts, until, figures) for n, c in enumerate(clients)))
        figures.seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return figures


def bots_run(project_id: str, key: str, base_url: str, texts: list[str]) -> BotFigures:
    """BOTS bots, each over its own connection, for BOT_SECONDS."""
    return asyncio.run(_bots(project_id, key, base_url, texts))


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) if samples else float("nan")


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def server_pids(port: int) -> list[int]:
    """The processes that serve `port`: uvicorn itself, or the workers it spawned."""
    servers = [
        int(proc.name)
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit()
        and any(b"uvicorn" in arg for arg in _cmdline(int(proc.name)))
        and str(port).encode() in _cmdline(int(proc.name))
    ]
    workers = [
        int(child)
        for pid in servers
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if any(b"spawn_main" in arg for arg in _cmdline(int(child)))
    ]
    return workers or servers


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loaded_libraries(pid: int, names: tuple[str, ...] = ("libtorch",)) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted({line.split()[-1] for line in maps.splitlines() if any(n in line for n in names)})


def load_average() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())
