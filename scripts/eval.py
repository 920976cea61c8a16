"""Retrieval eval: the labelled set in eval/sessions/ against the real search service.

Loads every session of the set into a throw-away project of the configured
database (the embedded PostgreSQL unless DATABASE_URL is set) through the
services, with the real model: the turns of each channel segment in one
add call, the escalation recorded as a handoff to humans after its turn. Then
asks every question of the set through `turns_search` with each method and
alpha, and prints recall@1, recall@3, MRR@10, nDCG@10 and the service's
latency for the tune and test splits (query vectors are encoded once and
cached, so the latency is the search service's ranking, in its in-process index
or in SQL, and reading the hits; the cost of encoding one query is printed
apart). The project is
deleted at the end. Run with `make eval`; `--json PATH` also writes the
figures, `--alphas 0.5,0.7` picks the hybrid alphas.

Metrics, per question, averaged over the questions of a split (relevant =
the question's labelled turn ids, ranked = the top 10 ids returned):
- recall@k = |relevant ∩ top k| / min(|relevant|, k), so 1.0 is reachable at k=1;
- MRR@10 = 1 / rank of the first relevant turn in the top 10 (0 if none);
- nDCG@10 with binary gains.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, whatever is installed
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402
from eval_brief import brief_report  # noqa: E402  (scripts/eval_brief.py, beside this file)

from sessions_app import embeddings  # noqa: E402
from sessions_app.actors import Actor  # noqa: E402
from sessions_app.models import HandoffTarget, Project, Session  # noqa: E402
from sessions_app.services.handoffs import session_push  # noqa: E402
from sessions_app.services.projects import project_create  # noqa: E402
from sessions_app.services.search import (  # noqa: E402
    DEFAULT_ALPHA,
    Ranking,
    SearchResult,
    turns_search,
)
from sessions_app.services.sessions import session_open  # noqa: E402
from sessions_app.services.turns import DocInput, turns_upsert  # noqa: E402

EVAL_DIR = ROOT / "eval" / "sessions"
SPLITS = ("tune", "test")
TOP_K = 10
DEFAULT_ALPHAS = (0.5, 0.7, 0.8, 0.9, 0.95)
DEFAULT_CONTEXT_WEIGHTS = (0.0, 0.5, 0.7)


@dataclass(frozen=True)
class Question:
    session: str
    split: str
    text: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class EvalSession:
    name: str
    split: str
    data: dict[str, Any]  # the session's JSON, as eval/README.md describes it

    @property
    def questions(self) -> list[Question]:
        return [
            Question(self.name, self.split, q["q"], frozenset(q["relevant"]))
            for q in self.data["questions"]
        ]


@dataclass(frozen=True)
class Method:
    """One way of ranking: a label, the API's alpha, and any further search options."""

    label: str
    alpha: float
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scores:
    recall_1: list[float] = field(default_factory=list)
    recall_3: list[float] = field(default_factory=list)
    mrr_10: list[float] = field(default_factory=list)
    ndcg_10: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    def add(self, ranked: list[str], relevant: frozenset[str], latency_ms: float) -> None:
        self.recall_1.append(recall_at(ranked, relevant, 1))
        self.recall_3.append(recall_at(ranked, relevant, 3))
        self.mrr_10.append(reciprocal_rank(ranked[:TOP_K], relevant))
        self.ndcg_10.append(ndcg_at(ranked, relevant, TOP_K))
        self.latency_ms.append(latency_ms)

    def summary(self) -> dict[str, float]:
        latencies = sorted(self.latency_ms)
        return {
            "questions": len(self.recall_1),
            "recall@1": statistics.fmean(self.recall_1),
            "recall@3": statistics.fmean(self.recall_3),
            "mrr@10": statistics.fmean(self.mrr_10),
            "ndcg@10": statistics.fmean(self.ndcg_10),
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        }


def recall_at(ranked: list[str], relevant: frozenset[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / min(len(relevant), k)


def reciprocal_rank(ranked: list[str], relevant: frozenset[str]) -> float:
    return next((1.0 / rank for rank, doc in enumerate(ranked, 1) if doc in relevant), 0.0)


def ndcg_at(ranked: list[str], relevant: frozenset[str], k: int) -> float:
    dcg = sum(
        1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], 1) if doc in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def eval_set_load(directory: Path = EVAL_DIR) -> list[EvalSession]:
    sessions = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        sessions.append(EvalSession(name=data["name"], split=data.get("split", "tune"), data=data))
    return sessions


def _segments(turns: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """Consecutive turns of one channel: what one bot would add in one call."""
    segment: list[dict[str, Any]] = []
    for turn in turns:
        if segment and segment[-1]["metadata"]["channel"] != turn["metadata"]["channel"]:
            yield segment
            segment = []
        segment.append(turn)
    if segment:
        yield segment


def eval_set_store(*, project: Project, sessions: list[EvalSession]) -> dict[str, Session]:
    """Each session through the services, as bots would write it; the stored sessions by name."""
    stored = {}
    for item in sessions:
        actor = Actor.system(label=f"eval:{item.name}")
        session, _ = session_open(project=project, name=item.name, actor=actor)
        after = item.data["escalation"]["after_turn"]
        turns = item.data["turns"]
        cut = next(index for index, turn in enumerate(turns) if turn["id"] == after) + 1
        for part, escalate in ((turns[:cut], True), (turns[cut:], False)):
            for segment in _segments(part):
                docs = [DocInput(t["id"], t["text"], dict(t["metadata"])) for t in segment]
                turns_upsert(session=session, docs=docs, actor=actor)
            if escalate:
                session_push(
                    session=session,
                    actor=actor,
                    to_kind=HandoffTarget.HUMANS,
                    reason=item.data["escalation"]["reason"],
                    from_channel=turns[cut - 1]["metadata"]["channel"],
                )
        stored[item.name] = session
    return stored


# No query-intent signals (services/query_intent.py): the blend alone.
INTENT_BOOSTS = (
    "role_boost",
    "commitment_boost",
    "fact_boost",
    "why_boost",
    "reply_share",
)
_OFF: dict[str, Any] = {boost: 0.0 for boost in INTENT_BOOSTS}
NO_INTENT = Ranking(**_OFF)
# Today's ranking before this harness: ts_rank_cd and the plain embedding alone.
BASELINE = dataclasses.replace(NO_INTENT, keyword="ts_rank_cd", context_weight=0.0)


def methods_for(alphas: Iterable[float], context_weights: Iterable[float]) -> list[Method]:
    baseline = {"ranking": BASELINE}
    methods = [
        Method("semantic plain", 1.0, baseline),
        Method("keyword ts_rank_cd", 0.0, baseline),
        Method("keyword bm25", 0.0),
        Method("hybrid ts_rank_cd plain", 0.8, baseline),
    ]
    for weight in context_weights:
        ranking = {"ranking": Ranking(context_weight=weight)}
        label = f"ctx {weight:.2f}" if weight else "plain"
        if weight:  # the plain semantic row is the baseline's
            methods.append(Method(f"semantic {label}", 1.0, ranking))
        methods.extend(Method(f"hybrid bm25 {label}", alpha, ranking) for alpha in alphas)
    # The default blend without the query-intent signals, then with each one alone.
    default = Ranking()
    methods.append(Method("hybrid, no intent", DEFAULT_ALPHA, {"ranking": NO_INTENT}))
    for boost in INTENT_BOOSTS:
        alone = dataclasses.replace(NO_INTENT, **{boost: getattr(default, boost)})
        label = f"hybrid, {boost.removesuffix('_boost')} only"
        methods.append(Method(label, DEFAULT_ALPHA, {"ranking": alone}))
        # And the default less this one signal.
        less = dataclasses.replace(default, **{boost: _OFF[boost]})
        label = f"hybrid, all but {boost.removesuffix('_boost')}"
        methods.append(Method(label, DEFAULT_ALPHA, {"ranking": less}))
    return methods


def retrieval_run(
    *, stored: dict[str, Session], questions: list[Question], methods: list[Method]
) -> dict[tuple[str, float, str], dict[str, float]]:
    """Scores by (method label, alpha, split)."""
    scores: dict[tuple[str, float, str], Scores] = {}
    for method in methods:
        for question in questions:
            result = turns_search(
                session_ids=[stored[question.session].pk],
                query=question.text,
                top_k=TOP_K,
                alpha=method.alpha,
                **method.options,
            )
            key = (method.label, method.alpha, question.split)
            scores.setdefault(key, Scores()).add(
                [hit.id for hit in result.docs], question.relevant, result.time_taken_ms
            )
    return {key: value.summary() for key, value in scores.items()}


def misses_print(*, stored: dict[str, Session], questions: list[Question]) -> None:
    """Each question whose labelled turns are not all in the default's top 3, or not first:
    what ranked above them."""
    print("\nMisses at the default (* labelled; recall@3 < 1 or first relevant below 1)")
    for question in questions:
        ranked = turns_search(
            session_ids=[stored[question.session].pk], query=question.text, top_k=TOP_K
        ).docs
        ids = [hit.id for hit in ranked]
        recall = recall_at(ids, question.relevant, 3)
        if recall == 1.0 and ids[:1] and ids[0] in question.relevant:
            continue
        first = next((rank for rank, doc in enumerate(ids, 1) if doc in question.relevant), None)
        print(
            f"\n  [{question.split}] {question.session}: {question.text!r} -> "
            f"{sorted(question.relevant)}, first at {first or '>10'}, recall@3 {recall:.2f}"
        )
        last = max([3, *(ids.index(doc) + 1 for doc in question.relevant if doc in ids)])
        for rank, hit in enumerate(ranked[:last], 1):
            mark = "*" if hit.id in question.relevant else " "
            role = hit.metadata.get("role", "?")
            print(f"   {mark}{rank:2} {hit.id:<5} {hit.score:6.3f} {role:<8} {hit.text[:90]!r}")


def table_print(title: str, rows: dict[tuple[str, float, str], dict[str, float]]) -> None:
    print(f"\n{title}")
    for split in SPLITS:
        keyed = {key: row for key, row in rows.items() if key[2] == split}
        if not keyed:
            continue
        questions = next(iter(keyed.values()))["questions"]
        print(f"\n  split {split} ({questions:.0f} questions)")
        print(
            f"  {'method':<28} {'alpha':>5} {'R@1':>6} {'R@3':>6} {'MRR@10':>7} "
            f"{'nDCG@10':>7} {'p50 ms':>7} {'p95 ms':>7}"
        )
        for (label, alpha, _), row in keyed.items():
            print(
                f"  {label:<28} {alpha:>5.2f} {row['recall@1']:>6.3f} {row['recall@3']:>6.3f} "
                f"{row['mrr@10']:>7.3f} {row['ndcg@10']:>7.3f} "
                f"{row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f}"
            )


def ranking_cost(*, project: Project, sessions: list[EvalSession], turns: int) -> None:
    """The rankers' cost on one session of `turns` turns: the set's texts repeated with
    fresh ids and amounts, random unit embeddings (the keyword cost does not depend on
    them), every question of the set asked once per method with its cached vector."""
    rng = np.random.default_rng(7)
    texts = [t["text"] for s in sessions for t in s.data["turns"]]
    questions = [q.text for s in sessions for q in s.questions]
    session, _ = session_open(project=project, name=f"cost-{turns}", actor=Actor.system())
    for start in range(0, turns, 500):
        vectors = rng.normal(size=(min(500, turns - start), settings.EMBEDDING_DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = [
            DocInput(
                f"t{start + i}",
                f"{texts[(start + i) % len(texts)]} (ref {start + i}, ${(start + i) % 997}.50)",
                {"role": "customer", "channel": "chat"},
                vector.tolist(),
            )
            for i, vector in enumerate(vectors)
        ]
        turns_upsert(session=session, docs=docs, actor=Actor.system())
    with connection.cursor() as cursor:
        # Client-supplied embeddings get no context vector; give these turns one, so the
        # rows are as wide as the server's and the blended score reads both vectors.
        cursor.execute(
            "UPDATE sessions_app_turn SET context_embedding = embedding WHERE session_id = %s",
            [session.pk],
        )
        cursor.execute("ANALYZE sessions_app_turn")
    print(
        f"\nRanking cost, one session of {turns:,} turns ({len(questions)} queries; path: what"
        " scored them, the in-process index or the SQL, which the index's methods are also"
        " timed on with MOSS_SEARCH_INDEX_MB = 0)"
    )
    print(f"  {'method':<28} {'alpha':>5} {'path':<5} {'p50 ms':>7} {'p95 ms':>7}")
    baseline = {"ranking": BASELINE}
    plain = {"ranking": Ranking(context_weight=0.0)}
    for method in (
        Method("keyword ts_rank_cd", 0.0, baseline),
        Method("keyword bm25", 0.0),
        Method("semantic plain", 1.0, baseline),
        Method("semantic ctx (default)", 1.0),
        Method("hybrid ts_rank_cd plain", 0.8, baseline),
        Method("hybrid bm25 plain", DEFAULT_ALPHA, plain),
        Method("hybrid bm25 ctx, no intent", DEFAULT_ALPHA, {"ranking": NO_INTENT}),
        Method("hybrid bm25 ctx (default)", DEFAULT_ALPHA),
    ):
        if cost_row(session=session, questions=questions, method=method) != "sql":
            with override_settings(MOSS_SEARCH_INDEX_MB=0):
                cost_row(session=session, questions=questions, method=method)


def cost_row(*, session: Session, questions: list[str], method: Method) -> str:
    """Print one method's p50 / p95 over the questions; returns the path that served them."""

    def search(query: str) -> SearchResult:
        return turns_search(
            session_ids=[session.pk], query=query, top_k=TOP_K, alpha=method.alpha, **method.options
        )

    # Untimed: the index's first query of a session loads it (README, "The in-process index").
    paths = {search(questions[0]).served_by}
    latencies = []
    for query in questions:
        result = search(query)
        paths.add(result.served_by)
        latencies.append(result.time_taken_ms)
    latencies.sort()
    p95 = latencies[int(0.95 * len(latencies))]
    p50 = statistics.median(latencies)
    path = "/".join(sorted(paths))
    print(f"  {method.label:<28} {method.alpha:>5.2f} {path:<5} {p50:>7.1f} {p95:>7.1f}")
    return path


def timed(label: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = work()
    print(f"{label}: {time.perf_counter() - started:.1f} s")
    return value


def query_vectors_cache(questions: list[Question]) -> float:
    """Encode every question once and serve query_embed from that cache: the vectors are
    the server's own (the int8 twin unless EMBEDDING_QUERY_INT8=false), and every method
    then pays for ranking only. Returns the p50 of encoding
    one query alone (over the first 30), which a real query adds to the model's methods."""
    texts = sorted({q.text for q in questions})
    singles = []
    for text in texts[:30]:
        started = time.perf_counter()
        embeddings.query_embed(text)
        singles.append((time.perf_counter() - started) * 1000)
    cache = {text: embeddings.query_embed(text) for text in texts}  # as the server encodes
    uncached = embeddings.query_embed
    embeddings.query_embed = lambda text: cache[text] if text in cache else uncached(text)  # type: ignore[assignment]
    return statistics.median(singles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--alphas",
        default=",".join(str(a) for a in DEFAULT_ALPHAS),
        help="hybrid alphas, comma-separated",
    )
    parser.add_argument(
        "--context-weights",
        default=",".join(str(w) for w in DEFAULT_CONTEXT_WEIGHTS),
        help="weights of the context vector in the semantic score, comma-separated",
    )
    parser.add_argument(
        "--misses",
        action="store_true",
        help="print the questions the default ranking misses, and what ranked above",
    )
    parser.add_argument(
        "--cost-turns",
        type=int,
        default=10_000,
        help="session size for the ranking cost (0 skips it)",
    )
    parser.add_argument(
        "--brief-turns",
        default="1000,10000",
        help="session sizes at which to time building the handoff brief (scripts/eval_brief.py)",
    )
    args = parser.parse_args()
    alphas = [float(a) for a in args.alphas.split(",") if a]
    weights = [float(w) for w in args.context_weights.split(",") if w]

    sessions = eval_set_load()
    questions = [q for s in sessions for q in s.questions]
    print(
        f"eval set: {len(sessions)} sessions, {sum(len(s.data['turns']) for s in sessions)} "
        f"turns, {len(questions)} questions "
        + ", ".join(f"{sum(q.split == s for q in questions)} {s}" for s in SPLITS)
    )
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()}")
    timed("model load", embeddings.model_load)
    project, _ = project_create(name="eval harness (throw-away)")
    try:
        stored = timed("store the set", lambda: eval_set_store(project=project, sessions=sessions))
        encode_ms = query_vectors_cache(questions)
        rows = timed(
            "retrieval",
            lambda: retrieval_run(
                stored=stored, questions=questions, methods=methods_for(alphas, weights)
            ),
        )
        table_print("Retrieval (latency: the search service with query vectors cached)", rows)
        if args.misses:
            misses_print(stored=stored, questions=questions)
        print(f"\nencoding one query (model methods add it): p50 {encode_ms:.1f} ms")
        brief = brief_report(
            project=project,
            stored=stored,
            sessions=sessions,
            cost_turns=[int(n) for n in args.brief_turns.split(",") if n],
        )
        if args.json:
            figures = [
                {"method": label, "alpha": alpha, "split": split, **row}
                for (label, alpha, split), row in rows.items()
            ]
            args.json.write_text(
                json.dumps({"retrieval": figures, "encode_ms": encode_ms, "brief": brief}, indent=2)
                + "\n"
            )
        if args.cost_turns:
            ranking_cost(project=project, sessions=sessions, turns=args.cost_turns)
    finally:
        project.delete()


if __name__ == "__main__":
    main()
