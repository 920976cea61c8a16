"""Text being stored is encoded on threads of lower CPU priority than a query's encode, so
that under load queries do not wait behind the adds (README, "Embedding model")."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from sessions_app import embeddings


def _thread_and_nice() -> tuple[str, int]:
    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return threading.current_thread().name, nice


def test_stored_text_is_encoded_at_a_lower_priority_with_the_same_vectors(settings: Any) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 10
    _, own = _thread_and_nice()
    name, nice = embeddings.bulk_run(_thread_and_nice)
    assert name.startswith("moss-bulk-encode")
    assert nice == min(own + 10, 19)
    assert _thread_and_nice()[1] == own  # the caller's priority is its own

    texts = ["It ends in 4417.", "Refund of $64.99 approved; it lands in 3-5 days."]
    np.testing.assert_allclose(
        embeddings.passages_embed(texts), embeddings.texts_embed(texts), atol=1e-6
    )


def test_with_no_added_nice_stored_text_is_encoded_by_the_caller(settings: Any) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 0
    assert embeddings.bulk_run(threading.get_native_id) == threading.get_native_id()
