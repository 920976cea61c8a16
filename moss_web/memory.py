"""glibc's allocator, told to give memory back: one server worker stays near 250 MB.

By default glibc gives each thread that allocates an arena of its own (up to 8
per core) and keeps what is freed in each; a worker that served 16 bots at once
grew from 270 MB to 640 MB that way and stayed there. Two arenas, and blocks of
64 KiB and more (request bodies, the encoder's tensors) mapped on their own so
that freeing them returns them to the system: 256 MB after the same load
(README, "Benchmarks"). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD_BYTES = 64 * 1024


def malloc_tune() -> bool:
    """Call before the process starts its threads. Whether glibc took the settings."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    )
