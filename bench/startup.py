"""Start-up benchmark: wall time of CLI commands that should answer without torch.

Each command runs in a fresh process, as a user would run it, `--repeats` times; the table
shows the median and the range. A parameter typo must be refused before any data is read,
so it belongs here too. Usage:

    python bench/startup.py
    python bench/startup.py --repeats 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (
    ("toolkit --version", ["--version"]),
    ("toolkit --help", ["--help"]),
    ("toolkit models", ["models"]),
    ("toolkit run --dataset names --param train.epochz=1",
     ["run", "--dataset", "names", "--param", "train.epochz=1"]),
)


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| command | median s | min s | max s |\n|---|---:|---:|---:|")
    for label, argv in COMMANDS:
        times = [seconds(argv) for _ in range(args.repeats)]
        print(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
