"""At most MOSS_WRITE_SLOTS calls store turns at once in a server process (default: one
per core), and as many large ones; the others wait their turn before doing anything,
holding no database connection.

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

from sessions_app.embeddings import LARGE_CALL_TEXTS, cores

# Large calls (LARGE_CALL_TEXTS docs or more: an import) have slots of their own, as they
# have their own encode pool: a chat's add never waits for an import's.
_slots: dict[bool, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slots_get(*, large: bool = False) -> threading.BoundedSemaphore:
    with _slots_lock:
        if large not in _slots:
            _slots[large] = threading.BoundedSemaphore(settings.MOSS_WRITE_SLOTS or cores())
        return _slots[large]


@contextmanager
def write_slot(*, docs: int) -> Iterator[None]:
    """Held while a call of `docs` turns stores them. A caller's transaction goes straight
    in: it may hold row locks that a slot's holder waits for, so it must not wait for one."""
    if connection.in_atomic_block:
        yield
        return
    slots = _slots_get(large=docs >= LARGE_CALL_TEXTS)
    if not slots.acquire(blocking=False):
        connection.close()  # back to the pool while waiting
        slots.acquire()
    try:
        yield
    finally:
        slots.release()
