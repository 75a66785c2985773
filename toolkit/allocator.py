"""Keeping freed memory in the process between prediction batches (glibc's malloc).

A batch's arrays (the encoded texts, the probabilities, their rankings) are allocated and freed
once per batch. glibc gives the freed memory at the top of its heap back to the operating
system past a threshold it adjusts by itself, and the next batch faults those pages in again:
on 1,000,000 names, `toolkit predict` with a `scratch-rnn` run took 250,000 page faults and a
tenth of its time doing so. `keep_freed_memory` fixes the thresholds so the process keeps up to
`KEPT_BYTES` of freed memory for its next batch. It sets the whole process's allocator, so the
commands that own their process call it (`toolkit predict`, `toolkit serve`); a Python program
predicting many batches may call it too. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Freed memory kept at the top of the heap before any is given back.
KEPT_BYTES = 256 << 20
#: Allocations from this size on get pages of their own, given back when freed: glibc's upper
#: bound for the threshold it adjusts by itself (64-bit), so only the adjusting stops.
OWN_PAGES_FROM = 32 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Keep up to `KEPT_BYTES` of freed memory in this process (glibc); whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's returns 0 and changes nothing.
    return mallopt(M_MMAP_THRESHOLD, OWN_PAGES_FROM) == 1 and mallopt(M_TRIM_THRESHOLD, KEPT_BYTES) == 1
