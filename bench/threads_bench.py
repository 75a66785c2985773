"""Training threads: 1 against 2 torch threads, on a quiet core and beside a busy process.

Each measurement trains `--model` on `--examples` names of the names data in a fresh process
(`toolkit.run`, the code path of `toolkit run`) and reports the training seconds; a run that
takes longer than `--timeout` seconds is stopped and reported as such. "busy" starts one
process that keeps a core busy (a Python loop) for the whole measurement, as another user's
job would. Usage:

    python bench/threads_bench.py --model lstm --examples 4000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from train_bench import load, machine

TRAIN = """
import json, sys, tempfile, toolkit
model, examples, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as scratch:
    result = toolkit.run(dataset="names", model=model, progress=False, output=scratch + "/run",
                         params={"train.examples": examples, "train.threads": threads})
print(json.dumps({"train_seconds": result.train_seconds}))
"""
SPIN = "while True: pass"


def measure(model: str, examples: int, threads: int, timeout: float) -> float | None:
    try:
        done = subprocess.run([sys.executable, "-c", TRAIN, model, str(examples), str(threads)],
                              capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["train_seconds"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}; {load()}")
    print("| condition | threads | train seconds | load average before |")
    print("| --- | --- | --- | --- |")
    for condition in ("as is", "busy"):
        spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if condition == "busy" else None
        try:
            time.sleep(1 if spinner else 0)
            for _ in range(args.repeats):
                for threads in (1, 2):
                    before = os.getloadavg()[0]
                    seconds = measure(args.model, args.examples, threads, args.timeout)
                    shown = f"{seconds:.1f}" if seconds is not None else f"over {args.timeout:.0f} (stopped)"
                    print(f"| {condition} | {threads} | {shown} | {before:.2f} |", flush=True)
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()


if __name__ == "__main__":
    main()
