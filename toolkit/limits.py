"""Limits on what comes from outside: files, parameters, requests. Documented in the README
("Limits"); each is checked where the input enters, with a one-line error.

Where a user may need more, the limit is a parameter (`train.max_length`, `serve
--max-length`); the others are far above any sensible run and exist so that a typo or a
hostile file cannot make the toolkit allocate memory or time without end.
"""

from __future__ import annotations

import os

from toolkit.errors import ToolkitError

#: Longest text, in characters, fed to a model (the `train.max_length` default): longer texts
#: are cut to it, at training and at prediction alike, and the cuts are counted.
MAX_TEXT_LENGTH = 256
#: The largest `train.max_length` accepted.
MAX_TEXT_LENGTH_LIMIT = 10_000
MAX_EPOCHS = 10_000
MAX_EXAMPLES = 1_000_000_000
MAX_BATCH_SIZE = 4096
#: Hidden units, embedding sizes and layers of the built-in models.
MAX_MODEL_WIDTH = 4096
MAX_MODEL_LAYERS = 16
#: Seeds are what numpy and torch accept: 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Files read from a run folder: JSON and CSV files at most this large, JSON at most this deep.
MAX_RUN_FILE_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64


def cpu_count() -> int:
    """The CPUs this process may use: the most threads a run may ask for."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: What one more toolkit process (a `--nproc` rank, a local Dask worker) holds in memory with
#: Python, torch and a small model loaded: about 450-470 MB as measured in issue 26, rounded up.
PROCESS_MEMORY = 512 * 2**20


def available_memory() -> int | None:
    """The bytes the processes started here may still take: the machine's available memory
    (MemAvailable), or less when this process's cgroup caps it; None where neither is known."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            import psutil  # macOS and others: psutil when it is installed (Dask brings it)

            found.append(int(psutil.virtual_memory().available))
        except ImportError:
            pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as file:
            limit = file.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as file:
            used = int(file.read().strip())
        if limit != "max":
            found.append(max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"


def check_processes(option: str, wanted: int) -> None:
    """Refuse `wanted` processes (`option` N) when this machine's CPUs or memory cannot run
    them: at most one a CPU, and `PROCESS_MEMORY` each within the memory available."""
    cpus, memory = cpu_count(), available_memory()
    by_memory = max(memory // PROCESS_MEMORY, 1) if memory is not None else wanted
    allowed = min(cpus, by_memory)
    if wanted > allowed:
        held = f"{gib(memory)} of available memory" if memory is not None else "its memory"
        raise ToolkitError(
            f"{option} {wanted} is more than this machine runs: {cpus} CPU{'s' if cpus != 1 else ''} and "
            f"{held} (about {gib(PROCESS_MEMORY)} a process) allow at most {allowed}; give {option} "
            f"{allowed} or fewer."
        )
