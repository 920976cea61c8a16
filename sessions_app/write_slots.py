"""At most MOSS_WRITE_SLOTS calls store turns at once in a server process (default: one
per core); the others wait their turn before doing anything, holding no database
connection.

Why: a call that stores turns is the dearest request there is (its texts encoded,
then written under the session's lock), and its encode already runs on one thread per
core (embeddings.passages_embed). Sixteen of them at once only share the same cores
with the queries and opens around them. Under `make bench`'s 16 busy bots on 2 cores,
two slots took the query p95 from 75-95 ms to 32-37 ms for 5-8% of the throughput
(README, "Embedding model").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from sessions_app.embeddings import cores

_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def _slots_get() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.MOSS_WRITE_SLOTS or cores())
        return _slots


@contextmanager
def write_slot() -> Iterator[None]:
    """Held while a call stores turns. A caller's transaction goes straight in: it may
    hold row locks that a slot's holder waits for, so it must not wait for that slot."""
    if connection.in_atomic_block:
        yield
        return
    slots = _slots_get()
    if not slots.acquire(blocking=False):
        connection.close()  # back to the pool while waiting
        slots.acquire()
    try:
        yield
    finally:
        slots.release()
