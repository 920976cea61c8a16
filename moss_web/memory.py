"""glibc's allocator, told to give memory back: one server worker stays near 250 MB.

By default glibc gives each thread that allocates an arena of its own (up to 8
per core) and keeps what is freed in each; a worker that served 16 bots at once
grew from 270 MB to 640 MB that way and stayed there. Two arenas, and blocks of
64 KiB and more (request bodies, the encoder's tensors) mapped on their own so
that freeing them returns them to the system: 256 MB after the same load
(docs/benchmark-history.md). Freed blocks below that stay in the arenas until
malloc_trim hands their pages back, which a thread of each server process does
every MOSS_HEAP_TRIM_SECONDS (it takes well under a millisecond). Elsewhere than
glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD_BYTES = 64 * 1024


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def malloc_tune() -> bool:
    """Call before the process starts its threads. Whether glibc took the settings."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    )


def heap_trim_start(*, every_seconds: float) -> bool:
    """A daemon thread that hands freed heap pages back every `every_seconds`: a search
    index loaded, a large add parsed and stored, leave freed blocks all over the arenas,
    which would otherwise stay counted in the process's memory. Whether it started."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None or every_seconds <= 0:
        return False
    trim.argtypes = [ctypes.c_size_t]

    def run() -> None:
        while True:
            time.sleep(every_seconds)
            trim(0)

    threading.Thread(target=run, name="heap-trim", daemon=True).start()
    return True
