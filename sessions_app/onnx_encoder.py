"""all-MiniLM-L6-v2 served by ONNX Runtime and the `tokenizers` library: no torch here.

The graph is exported once from the packaged model (sessions_app/onnx_export.py,
`manage.py encoder_export`, run by `make setup`) with mean pooling and L2
normalisation inside it, so it returns the same vectors as sentence-transformers
(tests/test_encoder_parity.py holds it to cosine >= 0.9999). The export lives in
MOSS_ENCODER_DIR (default $MOSS_DATA_DIR/encoder), in a folder named after the
model files it was made from: other model files get an export of their own.
ContextEncoder reads context windows (sessions_app/context_windows.py) with the export's
context graph: token states out, pooled here per turn.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from sessions_app.context_windows import PREVIOUS_CHARS, ContextWindow, Said

# Bump when the exported graphs change (inputs, outputs, pooling, files): older exports
# are redone.
EXPORT_FORMAT = 6
ONNX_FILE = "model.onnx"
# Written last: an export folder that has it is whole. It says whether the int8 twin was made.
EXPORT_JSON = "export.json"
# The context graph (the transformer with a block-causal mask input and token states out,
# ContextEncoder), and its twin with int8 weights, which encodes context windows unless
# EMBEDDING_CONTEXT_INT8 is off or the export found it not close enough.
CONTEXT_FP32_FILE = "context.onnx"
CONTEXT_ONNX_FILE = "context_int8.onnx"
# The model's own files that decide the vectors: a change to any of them means a new export.
SOURCE_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
# sentence-transformers' default when the model folder does not say.
DEFAULT_MAX_SEQ_LENGTH = 256
# Tokens per encoder run (texts x the longest's tokens): 64 short turns fit, 16 texts of 256
# tokens. Attention's intermediates grow with texts x tokens squared: 64 texts of 256 tokens
# peaked at about 1.1 GB. Per token, batches this size cost the same CPU as larger ones.
MAX_BATCH_TOKENS = 4096
# Runs up to this many tokens (one text of the model's longest) keep their arena memory.
KEEP_ARENA_TOKENS = 256


def export_dir(model_dir: Path) -> Path:
    """Where the export of the model in `model_dir` lives: named after its files' names,
    sizes and modification times, which is cheap to compute at every start."""
    digest = hashlib.sha256(f"format {EXPORT_FORMAT}\n".encode())
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return Path(settings.MOSS_ENCODER_DIR) / f"minilm-{digest.hexdigest()[:16]}"


def max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
    return DEFAULT_MAX_SEQ_LENGTH


def _session_open(onnx_file: Path, *, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # The arena stays on: without it every intermediate tensor is a fresh malloc, which
    # moss_web/memory.py makes an mmap plus page faults plus munmap (64 KiB and up), and
    # the server spent as much CPU in the kernel as in the model.
    options.enable_cpu_mem_arena = True
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(
        str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"]
    )


class OnnxEncoder:
    """Normalised sentence embeddings from the exported graph. Thread-safe: ONNX Runtime
    sessions run concurrently, and the tokenizer's settings are fixed here, once."""

    def __init__(
        self,
        *,
        model_dir: Path,
        onnx_file: Path,
        threads: int,
        texts_per_run: int = 64,
        open_now: bool = True,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The model folder's tokenizer.json pads and truncates at 128; sentence-transformers
        # truncates at max_seq_length and pads each batch to its longest text (done here,
        # in encode, once the batches are known).
        self.tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        self.tokenizer.no_padding()
        self.onnx_file, self.threads = onnx_file, threads
        self._session: Any = None
        self._dimensions: int | None = None
        self._opening = threading.Lock()
        if open_now:
            self.session  # noqa: B018  (opened here, not by the first encode)
        # The arena is shrunk back after each run larger than one long text, so a large
        # batch's peak is not kept for good; a query's run keeps its few MB (shrinking each
        # time cost a query about 1 ms).
        self.shrink_after = onnxruntime.RunOptions()
        self.shrink_after.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.texts_per_run = texts_per_run

    @property
    def session(self) -> Any:
        """The ONNX Runtime session. Opened on first use when open_now is false: where the
        int8 twin encodes queries and stored text, this graph serves neither, and unopened
        it takes none of the worker's memory (about 90 MB)."""
        if self._session is None:
            with self._opening:
                if self._session is None:
                    self._session = _session_open(self.onnx_file, threads=self.threads)
        return self._session

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = int(self.session.get_outputs()[0].shape[-1])
        return self._dimensions

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """One row per text, in order. Texts are batched by token count, longest first, so
        a batch pads to texts of about its own length (sentence-transformers sorts by
        characters); a batch of long texts holds fewer of them, to bound its memory."""
        encoded = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encoded]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = lengths[order[start]]
            size = max(1, min(batch_size, self.texts_per_run, MAX_BATCH_TOKENS // max(longest, 1)))
            chosen = order[start : start + size]
            input_ids = np.zeros((len(chosen), longest), dtype=np.int64)  # 0 is [PAD]
            attention_mask = np.zeros((len(chosen), longest), dtype=np.int64)
            for row, i in enumerate(chosen):
                input_ids[row, : lengths[i]] = encoded[i].ids
                attention_mask[row, : lengths[i]] = 1
            (batch,) = self.session.run(
                None,
                {"input_ids": input_ids, "attention_mask": attention_mask},
                self.shrink_after if input_ids.size > KEEP_ARENA_TOKENS else None,
            )
            vectors[chosen] = batch
            start += size
        return vectors


# The model's special tokens (all-MiniLM-L6-v2's vocabulary: BERT's uncased one).
CLS_ID, SEP_ID = 101, 102


@dataclass(frozen=True)
class PackedSequence:
    """One encoder run of context windows (sessions_app/context_windows.py): token ids, the
    block-causal mask, and where each window's last turn sits in it."""

    ids: list[int]
    mask: np.ndarray  # tokens x tokens, 1 where a token (row) attends to another (column)
    spans: list[tuple[int, int, int]]  # (window index, first token, end)


def windows_pack(
    windows: list[ContextWindow],
    *,
    tokenize: Callable[[list[str]], list[list[int]]],
    max_tokens: int,
) -> list[PackedSequence]:
    """The runs that give every window's vector. Windows that are prefixes of a longer one
    (a run's turns: (a), (a, b), (a, b, c)) share its run: with the block-causal mask a
    turn's states do not depend on the turns after it. A window longer than the model's
    max_tokens is read from its end: the turn before it goes first, then its earliest
    turns, and a turn alone is cut at its end, as the model cuts any text."""
    texts = sorted(
        {_said_text(s) for w in windows for s in w.turns}
        | {_said_text(w.previous, cut=True) for w in windows if w.previous is not None}
    )
    tokens = dict(zip(texts, tokenize(texts), strict=True))
    # Longest first, so a window finds the run of a longer one it begins.
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i].turns))
    runs: dict[tuple[Said | None, tuple[Said, ...]], list[int]] = {}
    # Runs by the turn before them and their first turn: where a window may find its run.
    starting: dict[tuple[Said | None, Said], list[tuple[Said, ...]]] = {}
    for index in order:
        window = windows[index]
        begun = starting.setdefault((window.previous, window.turns[0]), [])
        size = len(window.turns)
        run = next((turns for turns in begun if turns[:size] == window.turns), None)
        if run is None:
            run = window.turns
            begun.append(run)
            runs[(window.previous, run)] = []
        runs[(window.previous, run)].append(index)
    packed = []
    for (previous, turns), members in runs.items():
        ids = [CLS_ID]
        if previous is not None:
            ids += tokens[_said_text(previous, cut=True)] + [SEP_ID]
        warm_end = len(ids)
        starts = []
        for said in turns:
            own = tokens[_said_text(said)]
            if len(ids) + len(own) + 1 > max_tokens:
                break
            starts.append(len(ids))
            ids += [*own, SEP_ID]
        spans, too_long = [], []
        for index in members:
            last = len(windows[index].turns) - 1
            if last < len(starts):
                end = starts[last + 1] if last + 1 < len(starts) else len(ids)
                spans.append((index, starts[last], end))
            else:
                too_long.append(index)
        if spans:
            packed.append(_sequence(ids, warm_end, starts, spans))
        packed += [_alone(index, windows[index], tokens, max_tokens) for index in too_long]
    return packed


def _said_text(said: Said, *, cut: bool = False) -> str:
    return f"{said.role}: {said.text[:PREVIOUS_CHARS] if cut else said.text}"


def _sequence(
    ids: list[int], warm_end: int, starts: list[int], spans: list[tuple[int, int, int]]
) -> PackedSequence:
    mask = np.zeros((len(ids), len(ids)), dtype=np.int64)
    mask[0, 0] = 1
    mask[1:warm_end, :warm_end] = 1
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(ids)
        mask[start:end, :end] = 1
    return PackedSequence(ids=ids, mask=mask, spans=spans)


def _alone(
    index: int, window: ContextWindow, tokens: dict[str, list[int]], max_tokens: int
) -> PackedSequence:
    """A window too long for one run, read from its end."""
    own = tokens[_said_text(window.turns[-1])][: max_tokens - 2]
    ids = [*own, SEP_ID]
    earlier: list[list[int]] = []
    for said in reversed(window.turns[:-1]):
        more = tokens[_said_text(said)] + [SEP_ID]
        if 1 + len(ids) + sum(map(len, earlier)) + len(more) > max_tokens:
            break
        earlier.insert(0, more)
    warm: list[int] = []
    if window.previous is not None and len(earlier) == len(window.turns) - 1:
        candidate = tokens[_said_text(window.previous, cut=True)] + [SEP_ID]
        if 1 + len(ids) + sum(map(len, earlier)) + len(candidate) <= max_tokens:
            warm = candidate
    sequence = [CLS_ID, *warm]
    starts = []
    for part in [*earlier, ids]:
        starts.append(len(sequence))
        sequence += part
    return _sequence(sequence, 1 + len(warm), starts, [(index, starts[-1], len(sequence))])


def windows_pool(packed: list[PackedSequence], states: list[np.ndarray], count: int) -> np.ndarray:
    """Each window's vector: the mean of its last turn's token states (with its [SEP]),
    normalised; `states` are the runs' outputs (tokens x dimensions), in order."""
    vectors = np.zeros((count, states[0].shape[-1] if states else 0), dtype=np.float32)
    for sequence, output in zip(packed, states, strict=True):
        for index, start, end in sequence.spans:
            pooled = output[start:end].astype(np.float64).mean(axis=0)
            vectors[index] = pooled / (np.linalg.norm(pooled) or 1.0)
    return vectors


class ContextEncoder:
    """Context vectors (sessions_app/context_windows.py) from the exported token graph: input
    ids and a block-causal mask in, each token's final state out. One run per packed
    sequence: the int8 graph quantises activations with one scale per run, so a
    window's vector would otherwise depend on the windows batched with it."""

    def __init__(
        self, *, model_dir: Path, onnx_file: Path, threads: int, quantized: bool = False
    ) -> None:
        from tokenizers import Tokenizer

        self.quantized = quantized  # the int8 twin (CONTEXT_ONNX_FILE)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_tokens = max_seq_length(model_dir)
        # Runs of one sequence, at most the model's 256 tokens: the arena keeps them.
        self.session = _session_open(onnx_file, threads=threads)
        self.dimensions = int(self.session.get_outputs()[0].shape[-1])

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        # A text alone is read up to the model's window; longer is never used.
        return [list(e.ids[: self.max_tokens]) for e in encoded]

    def encode_windows(self, windows: list[ContextWindow]) -> np.ndarray:
        packed = windows_pack(windows, tokenize=self.tokenize, max_tokens=self.max_tokens)
        states = [
            self.session.run(
                None,
                {
                    "input_ids": np.array([sequence.ids], dtype=np.int64),
                    "attention_mask": sequence.mask[None],
                },
            )[0][0]
            for sequence in packed
        ]
        return windows_pool(packed, states, len(windows))

    def encode(self, texts: list[str], *, batch_size: int = 1) -> np.ndarray:
        """Texts as the plain graph reads them: each alone, every token attending to every
        other, the mean of all its tokens' states, normalised (OnnxEncoder's vectors, when
        this is the full graph). One run per text, for the reason above; batch_size is
        the Encoder protocol's and unused."""
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, own in enumerate(self.tokenize(texts)):
            ids = [CLS_ID, *own[: self.max_tokens - 2], SEP_ID]
            states = self.session.run(
                None,
                {
                    "input_ids": np.array([ids], dtype=np.int64),
                    "attention_mask": np.ones((1, len(ids), len(ids)), dtype=np.int64),
                },
            )[0][0]
            pooled = states.astype(np.float64).mean(axis=0)
            vectors[row] = pooled / (np.linalg.norm(pooled) or 1.0)
        return vectors
