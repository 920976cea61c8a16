"""The handoff brief against the labelled set: fact recall, promise recall, build time.

Part of `make eval` (scripts/eval.py calls it on the sessions it stored); run alone
with `.venv/bin/python scripts/eval_brief.py [--misses]`, which stores the set in a
throw-away project of its own.

- Fact recall: a labelled fact (kind, value as written, turn) is found when the
  brief has a fact of that kind whose value matches (the same words, one within the
  other, or the same normalised key: "$18 per seat" is USD 18.00) and that cites the
  labelled turn among its mentions. Identifiers count as found under any of the four
  id kinds (order, case, ticket, invoice; a "reference" may be labelled either way);
  the strict figure, kind for kind, is printed beside it.
- Promise recall: the labelled promise turns the brief lists among its promises;
  precision is the share of the brief's promises that are labelled.
- Build time: `brief_build` (uncached) on a session of N turns made from the set's
  turns with their roles and channels (fresh ids, random unit embeddings), escalated
  with a reason; and `session_brief` served from the cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402

from sessions_app.actors import Actor  # noqa: E402
from sessions_app.models import HandoffTarget, Project, Session  # noqa: E402
from sessions_app.services.brief import Brief, BriefFact, brief_build, session_brief  # noqa: E402
from sessions_app.services.brief_extract import facts_extract  # noqa: E402
from sessions_app.services.handoffs import session_push  # noqa: E402
from sessions_app.services.sessions import session_open  # noqa: E402
from sessions_app.services.turns import DocInput, turns_upsert  # noqa: E402

ID_KINDS = frozenset({"order", "case", "ticket", "invoice"})
BUILD_RUNS = 30


def _norm(value: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9@.+:]+", " ", value.lower()).split())


def _keys(value: str, kind: str) -> set[str]:
    return {fact.key for fact in facts_extract(value) if fact.kind == kind}


def fact_matches(label: dict[str, Any], fact: BriefFact, *, strict: bool) -> bool:
    kind = label["kind"]
    if strict and fact.kind != kind:
        return False
    if not strict and fact.kind != kind and not {kind, fact.kind} <= ID_KINDS:
        return False
    if label["turn"] not in fact.turns:
        return False
    wanted, found = _norm(label["value"]), _norm(fact.value)
    if wanted == found or wanted in found or (len(found) >= 3 and found in wanted):
        return True
    return fact.key in _keys(label["value"], fact.kind)


@dataclass
class BriefScores:
    facts: int = 0
    found: int = 0
    found_strict: int = 0
    brief_facts: int = 0
    promises: int = 0
    promises_found: int = 0
    brief_promises: int = 0
    brief_promises_labelled: int = 0

    def line(self, name: str) -> str:
        strict = self.found_strict / max(self.facts, 1)
        return (
            f"  {name:<6} fact recall {self.found / max(self.facts, 1):.3f} "
            f"({self.found}/{self.facts}; kind for kind {strict:.3f}), "
            f"facts shown {self.brief_facts}; promise recall "
            f"{self.promises_found / max(self.promises, 1):.3f} "
            f"({self.promises_found}/{self.promises}), precision "
            f"{self.brief_promises_labelled / max(self.brief_promises, 1):.3f} "
            f"({self.brief_promises_labelled}/{self.brief_promises})"
        )


def brief_scores(
    *, stored: dict[str, Session], sessions: list[Any], misses: bool = False
) -> dict[str, BriefScores]:
    """Scores by split, and "all"."""
    scores: dict[str, BriefScores] = {}
    for item in sessions:
        brief = session_brief(session=stored[item.name])
        for split in (item.split, "all"):
            score = scores.setdefault(split, BriefScores())
            _score(score, item.data, brief, misses=misses and split == "all", name=item.name)
    return scores


def _score(
    score: BriefScores, data: dict[str, Any], brief: Brief, *, misses: bool, name: str
) -> None:
    texts = {turn["id"]: turn["text"] for turn in data["turns"]}
    for label in data["facts"]:
        score.facts += 1
        found = any(fact_matches(label, fact, strict=False) for fact in brief.facts)
        score.found += found
        score.found_strict += any(fact_matches(label, fact, strict=True) for fact in brief.facts)
        if misses and not found:
            print(f"  missed fact {name} {label['turn']} {label['kind']} {label['value']!r}")
            print(f"    in: {texts[label['turn']]!r}")
    score.brief_facts += len(brief.facts)
    if misses:
        for fact in brief.facts:
            if not any(fact_matches(label, fact, strict=False) for label in data["facts"]):
                print(f"  unlabelled fact {name} {fact.turn} {fact.kind} {fact.value!r}")
    labelled = set(data["promises"])
    shown = {promise.turn for promise in brief.promises}
    score.promises += len(labelled)
    score.promises_found += len(labelled & shown)
    score.brief_promises += len(shown)
    score.brief_promises_labelled += len(labelled & shown)
    if misses:
        for turn in sorted(labelled - shown):
            print(f"  missed promise {name} {turn}: {texts[turn]!r}")
        for turn in sorted(shown - labelled):
            print(f"  unlabelled promise {name} {turn}: {texts[turn]!r}")


def build_cost(*, project: Project, sessions: list[Any], turns: int) -> dict[str, float]:
    """brief_build p50/p95 (ms, uncached) and the cached read on one session of `turns` turns."""
    rng = np.random.default_rng(11)
    source = [turn for item in sessions for turn in item.data["turns"]]
    actor = Actor.system(label="eval:brief-cost")
    session, _ = session_open(project=project, name=f"brief-cost-{turns}", actor=actor)
    for start in range(0, turns, 500):
        vectors = rng.normal(size=(min(500, turns - start), settings.EMBEDDING_DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = [
            DocInput(
                f"t{start + i}",
                source[(start + i) % len(source)]["text"],
                dict(source[(start + i) % len(source)]["metadata"]),
                vector.tolist(),
            )
            for i, vector in enumerate(vectors)
        ]
        turns_upsert(session=session, docs=docs, actor=actor)
    session_push(
        session=session,
        actor=actor,
        to_kind=HandoffTarget.HUMANS,
        reason=sessions[0].data["escalation"]["reason"],
    )
    session.refresh_from_db()
    brief_build(session=session)  # the reason's vector is encoded once and cached
    builds = []
    for _ in range(BUILD_RUNS):
        started = time.perf_counter()
        brief_build(session=session)
        builds.append((time.perf_counter() - started) * 1000)
    cached = []
    for _ in range(BUILD_RUNS):
        started = time.perf_counter()
        session_brief(session=session)
        cached.append((time.perf_counter() - started) * 1000)
    builds.sort()
    return {
        "turns": turns,
        "build_p50_ms": statistics.median(builds),
        "build_p95_ms": builds[int(0.95 * len(builds))],
        "cached_p50_ms": statistics.median(cached),
    }


def brief_report(
    *,
    project: Project,
    stored: dict[str, Session],
    sessions: list[Any],
    cost_turns: list[int],
    misses: bool = False,
) -> dict[str, Any]:
    scores = brief_scores(stored=stored, sessions=sessions, misses=misses)
    print("\nHandoff brief (targets: fact recall >= 0.9; build <= 50 ms at 1,000 turns)")
    for split in ("tune", "test", "all"):
        if split in scores:
            print(scores[split].line(split))
    costs = []
    for turns in cost_turns:
        cost = build_cost(project=project, sessions=sessions, turns=turns)
        costs.append(cost)
        print(
            f"  build at {turns:,} turns: p50 {cost['build_p50_ms']:.1f} ms, "
            f"p95 {cost['build_p95_ms']:.1f} ms (ratio to the 50 ms target "
            f"{cost['build_p50_ms'] / 50:.2f}); cached read p50 {cost['cached_p50_ms']:.2f} ms; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    return {
        "scores": {split: vars(score) for split, score in scores.items()},
        "build": costs,
    }


def _harness() -> Any:
    """scripts/eval.py (the set and how it is stored), by path: eval/ is the data's folder."""
    spec = importlib.util.spec_from_file_location(
        "eval_harness", Path(__file__).with_name("eval.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    harness = _harness()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="print every fact and promise missed")
    parser.add_argument(
        "--cost-turns", default="1000", help="session sizes to time, e.g. 1000,10000"
    )
    args = parser.parse_args()
    from sessions_app.services.projects import project_create

    sessions = harness.eval_set_load()
    project, _ = project_create(name="brief eval (throw-away)")
    try:
        stored = harness.eval_set_store(project=project, sessions=sessions)
        brief_report(
            project=project,
            stored=stored,
            sessions=sessions,
            cost_turns=[int(n) for n in args.cost_turns.split(",") if n],
            misses=args.misses,
        )
    finally:
        project.delete()


if __name__ == "__main__":
    main()
