"""`toolkit.allocator.keep_freed_memory`: glibc keeps a batch's freed memory for the next batch."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from toolkit.allocator import keep_freed_memory
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
warm = [np.ones(131072) for _ in range(20)]
del warm
before = faults()
for _ in range(20):
    arrays = [np.ones(131072) for _ in range(20)]  # a batch: 20 arrays of 1 MiB, then all freed
    del arrays
print(faults() - before)
"""


def page_faults(mode: str) -> int:
    """Page faults of 20 batches of 20 MiB allocated and freed, in a fresh process."""
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_freed_batches_are_kept_instead_of_faulted_in_again():
    """By default glibc gives each batch's 20 MiB back and faults it in again (5,120 pages a
    batch); kept, the later batches reuse the first's pages."""
    default, kept = page_faults("default"), page_faults("keep")
    assert default > 19 * 5000
    assert kept < 1000


def test_it_does_nothing_without_glibc_and_says_so(monkeypatch):
    import toolkit.allocator as allocator

    allocator.keep_freed_memory.cache_clear()
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    try:
        assert allocator.keep_freed_memory() is False
    finally:
        allocator.keep_freed_memory.cache_clear()
