"""moss_web/memory.py: the allocator settings and the heap trim each server process runs."""

from __future__ import annotations

import json

from tests.servers import python_run

FRAGMENTED_HEAP = """
import ctypes, json, time
from moss_web.memory import heap_trim_start, malloc_tune

assert malloc_tune()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

# 80 MB of 16 KiB blocks (under the mmap threshold: they live in the heap), written to,
# then all but every tenth freed: the survivors keep the heap from shrinking at its top.
blocks = [libc.malloc(16 * 1024) for _ in range(5_000)]
for block in blocks:
    ctypes.memset(block, 1, 16 * 1024)
for index, block in enumerate(blocks):
    if index % 10:
        libc.free(block)
freed = rss_mb()
time.sleep(0.3)
untrimmed = rss_mb()
assert heap_trim_start(every_seconds=0.05)
time.sleep(0.5)
print(json.dumps({"freed": freed, "untrimmed": untrimmed, "trimmed": rss_mb()}))
"""


def test_the_heap_trim_hands_freed_blocks_back() -> None:
    mb = json.loads(python_run(FRAGMENTED_HEAP, timeout=60))
    assert mb["untrimmed"] > mb["freed"] - 5, mb  # freeing alone gave next to nothing back
    assert mb["trimmed"] < mb["untrimmed"] - 50, mb
