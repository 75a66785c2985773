"""Start-up benchmark: wall time of CLI commands that should answer without torch.

Each command runs in a fresh process, as a user would run it, `--repeats` times; the table
shows the median and the range, and whether the command imported torch, pandas or
matplotlib (one more run under `python -X importtime`). A parameter typo or a value out of
range must be refused before any data is read, so those belong here too. Usage:

    python bench/startup.py
    python bench/startup.py --repeats 9 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scale_common import write_between_markers

COMMANDS = (
    ("toolkit --version", ["--version"]),
    ("toolkit --help", ["--help"]),
    ("toolkit plugins", ["plugins"]),
    ("toolkit models", ["models"]),
    ("toolkit datasets", ["datasets"]),
    ("toolkit encoders", ["encoders"]),
    ("toolkit params --model ngram", ["params", "--model", "ngram"]),
    ("toolkit run --dataset names --param train.epochz=1",
     ["run", "--dataset", "names", "--param", "train.epochz=1"]),
    ("toolkit run --dataset names --param train.epochs=0",
     ["run", "--dataset", "names", "--param", "train.epochs=0"]),
)
HEAVY = ("torch", "pandas", "matplotlib")


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, check=False)
    return time.perf_counter() - start


def heavy_imports(args: list[str]) -> list[str]:
    """Which of HEAVY the command imports (from `python -X importtime`)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "toolkit", *args],
                            capture_output=True, text=True, check=False)
    imported = set(re.findall(r"\|\s+(\w+)$", result.stderr, re.MULTILINE))
    return [name for name in HEAVY if name in imported]


def table(repeats: int) -> str:
    one, five, _ = os.getloadavg()
    lines = [
        f"`python bench/startup.py --repeats {repeats} --write docs/benchmarks.md` on {os.cpu_count()} "
        f"logical CPUs, Python {platform.python_version()}, {platform.system()}; load average "
        f"{one:.2f} (1 min), {five:.2f} (5 min) before.",
        "",
        "| command | median s | min s | max s | imports torch, pandas or matplotlib |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, args in COMMANDS:
        times = [seconds(args) for _ in range(repeats)]
        heavy = ", ".join(heavy_imports(args)) or "none"
        median = statistics.median(times)
        lines.append(f"| `{label}` | {median:.2f} | {min(times):.2f} | {max(times):.2f} | {heavy} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the table in FILE (Markdown).")
    args = parser.parse_args()
    text = table(args.repeats)
    print(text)
    if args.write:
        write_between_markers(args.write, "startup", text)


if __name__ == "__main__":
    main()
