"""Batch prediction benchmark: names per second and peak memory of `toolkit predict --input`.

Writes files of 100,000 and 1,000,000 real surnames (drawn with replacement from the names
data, a fixed seed) and runs the real command on each in a fresh process, as a user would:

    toolkit predict --run RUN_DIR --input names.txt --output predictions.csv

The time is the whole command (start-up, loading the run, reading, predicting, writing the
CSV); the names/s of the prediction loop alone come from the Python API on the same file.
Peak memory (the child's maximum resident set) shows whether it stays flat as the file grows.
Usage:

    python bench/predict_bench.py --run runs/20260101-120000-names-gru
    python bench/predict_bench.py --model gru --sizes 100000 1000000 --write docs/benchmarks.md

The names data is the copy bundled with the package (TOOLKIT_DATA_DIR overrides it).

Without `--run` it first trains a one-epoch run of `--model` (throughput does not depend on
how well the model was trained). `--write FILE` puts the results in FILE's
"Batch prediction" section (replacing an earlier one), written atomically.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_common  # noqa: E402  (bench/ is not a package)
from train_bench import load, machine, markdown  # noqa: E402

import toolkit  # noqa: E402

SECTION = "## Batch prediction"
DEFAULT_SIZES = (100_000, 1_000_000)


def names_file(path: Path, size: int, seed: int = 0) -> Path:
    """`size` surnames from the names data, one a line, drawn with replacement."""
    pool = list(toolkit.load_dataset("names").texts)
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, size, 100_000):
            out.write("\n".join(rng.choices(pool, k=min(100_000, size - start))) + "\n")
    return path


def run_command(run_dir: Path, source: Path, output: Path, batch_size: int, threads: int) -> dict[str, float]:
    """`toolkit predict --input` in a child process: wall seconds and peak memory (MiB)."""
    command = [sys.executable, "-m", "toolkit", "predict", "--run", str(run_dir), "--input", str(source),
               "--output", str(output), "--batch-size", str(batch_size), "--threads", str(threads)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"toolkit predict failed: {child.stderr.read().decode() if child.stderr else ''}")
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def predict_loop(run_dir: Path, source: Path, batch_size: int, threads: int) -> float:
    """Seconds for the Python API to predict every line of `source` (loading excluded)."""
    predictor = toolkit.load_run(run_dir, threads=threads)
    started = time.perf_counter()
    with source.open(encoding="utf-8") as lines:
        for _ in predictor.predict_stream((line.rstrip("\n") for line in lines), 3, batch_size):
            pass
    return time.perf_counter() - started


def train_quick_run(model: str, folder: Path) -> Path:
    result = toolkit.run(dataset="names", model=model, params={"train.epochs": 1, "train.threads": 1},
                         output=folder / f"names-{model}", progress=False)
    assert result.run_dir is not None
    return result.run_dir


def command_line(argv: Sequence[str] | None) -> str:
    """How this benchmark was run, with the (local) run folder shown as RUN_DIR."""
    args = list(sys.argv[1:] if argv is None else argv)
    shown = ["RUN_DIR" if i and args[i - 1] == "--run" else a for i, a in enumerate(args)]
    return " ".join(["python bench/predict_bench.py", *shown])


def write_section(path: Path, text: str, section: str = SECTION) -> None:
    """Replace (or append) the section headed `section` of `path`, atomically."""
    scale_common.write_section(path, section, text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A run folder (default: train a one-epoch run).")
    parser.add_argument("--model", default="gru", help="Model to train when --run is not given.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1, help="As `toolkit predict --threads`.")
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the results in FILE (Markdown).")
    args = parser.parse_args(argv)

    print(f"Machine: {machine()}")
    print(f"Before: {load()}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="predict-bench-") as scratch:
        folder = Path(scratch)
        run_dir = args.run or train_quick_run(args.model, folder)
        model = toolkit.load_run(run_dir).config["model"]
        for size in args.sizes:
            source = names_file(folder / f"names-{size}.txt", size)
            command = run_command(run_dir, source, folder / "predictions.csv", args.batch_size, args.threads)
            loop_seconds = predict_loop(run_dir, source, args.batch_size, args.threads)
            rows.append({
                "names": size, "command_seconds": command["seconds"],
                "command_names_per_sec": size / command["seconds"],
                "predict_names_per_sec": size / loop_seconds, "peak_memory_mib": command["peak_mib"],
                "input_mib": source.stat().st_size / 2**20,
            })
            print(f"  {size:,} names: {command['seconds']:.1f} s for the command, "
                  f"{size / loop_seconds:,.0f} names/s predicting, peak {command['peak_mib']:.0f} MiB",
                  flush=True)
            source.unlink()
    after = load()
    print(f"After: {after}")

    params = ", ".join(f"{k}={v}" for k, v in model["params"].items())
    table = markdown(pd.DataFrame(rows), {
        "names": ",.0f", "command_seconds": ".1f", "command_names_per_sec": ",.0f",
        "predict_names_per_sec": ",.0f", "peak_memory_mib": ".0f", "input_mib": ".1f",
    })
    text = (
        f"{SECTION} (`toolkit predict --input`)\n\n"
        f"`{command_line(argv)}` on {machine()}; {after}.\n\n"
        f"Model `{model['name']}` ({params}), batches of {args.batch_size:,} names, "
        f"{args.threads} torch thread{'s' if args.threads > 1 else ''}, top 3 written per name. "
        "Surnames drawn with replacement from the names data. `command` is the whole "
        "`toolkit predict --input FILE --output OUT` process (start-up, loading the run, reading, "
        "predicting, writing the CSV); `predict` is the prediction loop alone through the Python API. "
        "Peak memory is the command's maximum resident set: about the same for both sizes means "
        "the file is streamed.\n\n"
        f"{table}\n"
    )
    print("\n" + text)
    if args.write:
        write_section(args.write, text)
        print(f"Wrote the section to {args.write}")


if __name__ == "__main__":
    try:
        main()
    except toolkit.ToolkitError as exc:
        raise SystemExit(f"Error: {exc}") from None
