"""Experiment: context vectors by late chunking, against the stored context texts' vectors.

Not part of the product. It answers one question for issues 9 and 10: could each turn's
context vector come from one encode of the thread, instead of a second encode of the
turn with its predecessor (services/turn_context.py)? Each add call's turns are read
in one sequence, in thread order, after the turn before the call:

    [CLS] Bot: Can you confirm the last four digits? [SEP] Customer: It ends in 4417. [SEP] …

with a block-causal attention mask (each turn's tokens attend to [CLS], to themselves
and to the turns before them in the sequence, never to later ones), and a turn's vector
is the mean of its own tokens' final states, normalised ("late chunking"). A sequence
holds up to --budgets tokens; the next one starts again with the turn before its first.
So every token is encoded once, plus one turn per sequence, instead of about 2.2 times.

It loads the eval set through the services as `make eval` does (the turns of each
channel segment in one add call), prints the default ranking with the stored context
vectors, then overwrites every turn's context vector with the late-chunked one and
prints the same rows again, per budget: in full precision (torch, the reference) and
with the int8 twin of a graph exported here with the mask as an input (ONNX Runtime's
dynamic quantisation, as model_int8.onnx). `--cost` also times one thread encoding a
250-turn add both ways. The eval project is deleted at the end.

    .venv/bin/python scripts/eval_late_chunking.py --budgets 128,192 --cost
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, whatever is installed

# scripts/eval.py sets Django up.
import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402

from scripts.eval import (  # noqa: E402
    SPLITS,
    Method,
    _segments,
    eval_set_load,
    eval_set_store,
    query_vectors_cache,
    retrieval_run,
)
from sessions_app import embeddings  # noqa: E402
from sessions_app.models import Session, Turn  # noqa: E402
from sessions_app.services.projects import project_create  # noqa: E402
from sessions_app.services.search import DEFAULT_ALPHA, Ranking  # noqa: E402
from sessions_app.services.turn_context import said_of  # noqa: E402

# Runs a (tokens, block-causal mask) sequence; returns its final token states.
Runner = Callable[[list[int], np.ndarray], np.ndarray]

METHODS = [
    Method("default", DEFAULT_ALPHA),
    Method("default, context weight 0.6", DEFAULT_ALPHA, {"ranking": Ranking(context_weight=0.6)}),
    Method("semantic, plain + context", 1.0),
]


def sequences(runs: list[list[list[int]]], budget: int) -> list[tuple[list[int], list[Any]]]:
    """Each run is a call's turns as token ids, its first the turn before the call (or
    none: []). The sequences that encode them: (tokens, [(turn, start, end)])."""
    cls, sep = 101, 102
    out = []
    for run_index, run in enumerate(runs):
        i = 1  # run[0] is the warm-up turn
        while i < len(run):
            start = i - 1
            seq, spans = [cls], []
            j = start
            while j < len(run) and (j <= i or len(seq) + len(run[j]) + 1 <= budget):
                if j < i and not run[j]:  # no turn before the session's first
                    j += 1
                    continue
                # A turn alone may be long; the model reads 256 tokens at most.
                tokens = run[j][: max(1, 254 - len(seq))]
                if j >= i:
                    spans.append(((run_index, j), len(seq), len(seq) + len(tokens) + 1))
                seq += [*tokens, sep]
                j += 1
            out.append((seq[:256], spans))
            i = j
    return out


def block_causal(length: int, spans: list[Any], warm_end: int) -> np.ndarray:
    """Who attends to whom: [CLS] to itself, the warm-up turn to [CLS] and itself, each
    turn to everything up to its own end."""
    mask = np.zeros((length, length), dtype=np.int64)
    mask[0, 0] = 1
    mask[1:warm_end, :warm_end] = 1
    for _, start, end in spans:
        mask[start:end, :end] = 1
    return mask


def late_vectors(runs: list[list[list[int]]], budget: int, run: Runner) -> dict[Any, np.ndarray]:
    vectors = {}
    for seq, spans in sequences(runs, budget):
        warm_end = spans[0][1] if spans else len(seq)
        states = run(seq, block_causal(len(seq), spans, warm_end))
        for key, start, end in spans:
            pooled = states[start : min(end, len(seq))].mean(axis=0)
            vectors[key] = pooled / np.linalg.norm(pooled)
    return vectors


def torch_runner() -> Runner:
    import torch
    from sentence_transformers import SentenceTransformer

    bert: Any = SentenceTransformer(str(embeddings.model_path()), device="cpu")[0].auto_model
    bert.eval()

    def run(seq: list[int], mask: np.ndarray) -> np.ndarray:
        ids = torch.tensor([seq])
        additive = (1.0 - torch.tensor(mask, dtype=torch.float32)) * torch.finfo(torch.float32).min
        with torch.no_grad():
            out = bert(input_ids=ids, attention_mask=additive[None, None], token_type_ids=ids * 0)
        return out.last_hidden_state[0].numpy()  # type: ignore[no-any-return]

    return run


def int8_runner(folder: Path) -> Runner:
    """The transformer exported with a (batch x tokens x tokens) mask input and its token
    states as the output, then quantised as onnx_export.py quantises model_int8.onnx."""
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    bert: Any = SentenceTransformer(str(embeddings.model_path()), device="cpu")[0].auto_model

    class Tokens(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            additive = (1.0 - attention_mask[:, None].float()) * torch.finfo(torch.float32).min
            return self.bert(
                input_ids=input_ids, attention_mask=additive, token_type_ids=input_ids * 0
            )[0]

    ids = torch.tensor([[101, 2023, 2003, 102, 2178, 102]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Tokens().eval(),
            (ids, torch.ones(1, 6, 6, dtype=torch.int64)),
            str(folder / "tokens.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["token_states"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens", 2: "keys"},
                "token_states": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(
        folder / "tokens.onnx",
        folder / "tokens_int8.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(folder / "tokens_int8.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )

    def run(seq: list[int], mask: np.ndarray) -> np.ndarray:
        inputs = {"input_ids": np.array([seq], dtype=np.int64), "attention_mask": mask[None]}
        return session.run(None, inputs)[0][0]  # type: ignore[no-any-return]

    return run


def turn_tokens(text: str, metadata: dict[str, Any]) -> list[int]:
    said = said_of(text, metadata)
    encoder: Any = embeddings.model_get(context=True)
    return list(encoder.tokenizer.encode(f"{said.role}: {said.text}", add_special_tokens=False).ids)


def calls_of(item: Any) -> list[list[dict[str, Any]]]:
    """The add calls eval_set_store made for this session, in order."""
    turns = item.data["turns"]
    after = item.data["escalation"]["after_turn"]
    cut = next(index for index, turn in enumerate(turns) if turn["id"] == after) + 1
    return [*_segments(turns[:cut]), *_segments(turns[cut:])]


def runs_of(item: Any) -> tuple[list[list[list[int]]], list[list[str]]]:
    """Token runs (each call's turns after the turn before it) and their doc ids."""
    runs, ids = [], []
    previous: list[int] = []
    for call in calls_of(item):
        tokens = [turn_tokens(t["text"], t["metadata"]) for t in call]
        runs.append([previous, *tokens])
        ids.append(["", *(t["id"] for t in call)])
        previous = tokens[-1]
    return runs, ids


def vectors_store(
    stored: dict[str, Session], sessions: list[Any], budget: int, run: Runner
) -> None:
    for item in sessions:
        runs, ids = runs_of(item)
        session = stored[item.name]
        pks = dict(Turn.objects.filter(session=session).values_list("doc_id", "pk"))
        with connection.cursor() as cursor:
            for (run_index, turn_index), vector in late_vectors(runs, budget, run).items():
                cursor.execute(
                    "UPDATE sessions_app_turn SET context_embedding = %s::vector WHERE id = %s",
                    [
                        "[" + ",".join(f"{x:.9g}" for x in vector) + "]",
                        pks[ids[run_index][turn_index]],
                    ],
                )


def report(label: str, stored: dict[str, Session], questions: list[Any]) -> None:
    rows = retrieval_run(stored=stored, questions=questions, methods=METHODS)
    for method in METHODS:
        figures = []
        for split in SPLITS:
            row = rows[(method.label, method.alpha, split)]
            figures.append(f"{row['recall@3']:.3f} / {row['mrr@10']:.3f}")
        print(f"  {label:<34} {method.label:<28} {figures[0]:>15} {figures[1]:>15}", flush=True)


def cost(budgets: list[int], run: Runner) -> None:
    """One thread: a 250-turn add's texts, their context texts, and late chunking."""
    from scripts.bench import context_texts, text_pool, turn_metadata

    texts = text_pool(250)
    contexts = context_texts(texts)
    tokens = [turn_tokens(text, turn_metadata(i)) for i, text in enumerate(texts)]
    plain, context = embeddings.model_get(), embeddings.model_get(context=True)

    def seconds(work: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        return best

    print("\nOne thread, a 250-turn add (best of 3):")
    raw = seconds(lambda: plain.encode(texts, batch_size=64))
    print(f"  plain texts (the raw model): {raw:.2f} s")
    print(
        f"  context texts, int8 twin (today): "
        f"{seconds(lambda: context.encode(contexts, batch_size=64)):.2f} s"
    )
    for budget in budgets:
        runs = [[[], *tokens]]
        encoded = sum(len(seq) for seq, _ in sequences(runs, budget))
        took = seconds(lambda: late_vectors(runs, budget, run))  # noqa: B023
        print(f"  late chunking, {budget} tokens a sequence, int8: {took:.2f} s ({encoded} tokens)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="128,192", help="tokens per sequence, comma-separated")
    parser.add_argument("--cost", action="store_true", help="also time a 250-turn add")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",") if b]
    sessions = eval_set_load()
    questions = [q for s in sessions for q in s.questions]
    embeddings.model_load()
    project, _ = project_create(name="late chunking experiment (throw-away)")
    try:
        stored = eval_set_store(project=project, sessions=sessions)
        query_vectors_cache(questions)
        print(f"recall@3 / MRR@10 by split: {' | '.join(SPLITS)}")
        report("stored context texts (today)", stored, questions)
        with tempfile.TemporaryDirectory() as folder:
            runners = {"full precision": torch_runner(), "int8": int8_runner(Path(folder))}
            for budget in budgets:
                for name, run in runners.items():
                    vectors_store(stored, sessions, budget, run)
                    report(f"late chunking, {budget} tokens, {name}", stored, questions)
            if args.cost:
                cost(budgets, runners["int8"])
    finally:
        project.delete()


if __name__ == "__main__":
    main()
