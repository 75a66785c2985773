"""Shared by the benchmarks: run a command and watch the memory of its whole process tree,
and write a section of docs/benchmarks.md or README.md."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds between two looks at the process tree's memory.
POLL = 0.2


@dataclass
class Measured:
    """A finished command: wall seconds, exit code, output, and the peak resident memory (MiB)
    of every process of its tree (by pid, with its command line)."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_mib: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    total_peak_mib: float = 0.0  # the largest sum of the tree's resident memory at one time

    def largest(self, containing: str = "") -> float:
        """The peak of the largest process whose command line contains `containing`."""
        found = [mib for pid, mib in self.peak_mib.items() if containing in self.names.get(pid, "")]
        return max(found, default=float("nan"))


def measure(command: list[str], env: dict[str, str] | None = None, cwd: str | Path | None = None) -> Measured:
    """Run `command`, polling the resident memory of it and every descendant (psutil)."""
    import threading

    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {})}, cwd=cwd)
    result = Measured(0.0, 0, "", "")
    root = psutil.Process(child.pid)
    outputs: list[str] = []

    def drain(stream, sink: list[str]) -> None:
        sink.append(stream.read())

    err: list[str] = []
    readers = [threading.Thread(target=drain, args=(child.stdout, outputs)),
               threading.Thread(target=drain, args=(child.stderr, err))]
    for reader in readers:
        reader.start()
    while child.poll() is None:
        total = 0.0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for process in tree:
            try:
                mib = process.memory_info().rss / 2**20
                if process.pid not in result.names:
                    result.names[process.pid] = " ".join(process.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += mib
            result.peak_mib[process.pid] = max(result.peak_mib.get(process.pid, 0.0), mib)
        result.total_peak_mib = max(result.total_peak_mib, total)
        time.sleep(POLL)
    for reader in readers:
        reader.join()
    result.seconds = time.perf_counter() - started
    result.returncode = child.returncode
    result.stdout, result.stderr = "".join(outputs), "".join(err)
    return result


def write_section(path: Path, section: str, text: str) -> None:
    """Replace (or append) the section starting with the heading `section`, atomically."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    # The heading ends there or goes on with " (": "## Batch prediction" is not "## Batch
    # prediction at scale".
    pattern = re.compile(rf"^{re.escape(section)}(?= \(|\n).*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def write_between_markers(path: Path, name: str, text: str) -> None:
    """Replace what stands between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path`."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    page = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(page):
        raise SystemExit(f"{path} has no {begin} ... {end} markers")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", page), encoding="utf-8")
    os.replace(tmp, path)


def publish(text: str, section: str, path: Path | None) -> None:
    """Print a benchmark's section and, when `path` is given, put it in that file."""
    print("\n" + text)
    if path is not None:
        write_section(path, section, text)
        print(f"Wrote the section to {path}")
