"""Batch prediction of millions of names: the local engine against Dask with 1 and 2 workers.

Writes `--names` real surnames (drawn with replacement from the names data, a fixed seed) into
`--files` CSV files, then runs the real command once per engine, as a user would:

    toolkit predict --run RUN_DIR --input 'names/*.csv' --column name --output out/ \
        [--engine dask --workers W]

Each command writes one Parquet partition per input file with the top 3 classes and their
log-probabilities. names/s counts the whole command (start-up, the Dask cluster, loading the
run, reading, predicting, writing); the peak memory is the largest single process of the
command's tree (a Dask worker, or the command itself) and the largest sum over the tree at
one moment. Usage:

    python bench/scale_predict.py                          # 10,000,000 names in 20 files, a 1-epoch gru
    python bench/scale_predict.py --names 200000 --files 4 # a quick check
    python bench/scale_predict.py --run RUN_DIR --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_common import measure, publish  # noqa: E402
from train_bench import load, machine, markdown  # noqa: E402

import toolkit  # noqa: E402

SECTION = "## Batch prediction at scale"
ENGINES = (("local", []), ("dask, 1 worker", ["--engine", "dask", "--workers", "1"]),
           ("dask, 2 workers", ["--engine", "dask", "--workers", "2"]))


def names_files(folder: Path, names: int, files: int, seed: int = 0) -> Path:
    """`names` surnames in `files` CSV files (column `name`), drawn with replacement."""
    pool = list(toolkit.load_dataset("names").texts)
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    per_file = -(-names // files)
    for i in range(files):
        count = min(per_file, names - i * per_file)
        pd.DataFrame({"name": rng.choices(pool, k=count)}).to_csv(folder / f"names-{i:03d}.csv", index=False)
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A run folder (default: train a one-epoch run).")
    parser.add_argument("--model", default="gru", help="Model to train when --run is not given.")
    parser.add_argument("--names", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--write", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\nBefore: {load()}", flush=True)
    rows: list[dict[str, Any]] = []
    loads = []
    with tempfile.TemporaryDirectory(prefix="scale-predict-") as scratch:
        folder = Path(scratch)
        run_dir = args.run
        if run_dir is None:
            run_dir = toolkit.run(dataset="names", model=args.model, output=folder / "run", progress=False,
                                  params={"train.epochs": 1, "train.threads": 1}).run_dir
        model = toolkit.load_run(run_dir).config["model"]
        source = names_files(folder / "names", args.names, args.files)
        for label, extra in ENGINES:
            output = folder / "out"
            loads.append(load())
            command = [sys.executable, "-m", "toolkit", "predict", "--run", str(run_dir),
                       "--input", str(source / "*.csv"), "--column", "name", "--output", f"{output}/", *extra]
            measured = measure(command)
            if measured.returncode != 0:
                raise SystemExit(f"toolkit predict failed:\n{measured.stderr[-3000:]}")
            rows.append({
                "engine": label, "names": args.names, "seconds": measured.seconds,
                "names_per_sec": args.names / measured.seconds,
                "largest_process_mib": max(measured.peak_mib.values()),
                "tree_peak_mib": measured.total_peak_mib, "load_before": loads[-1].split()[2],
            })
            print(f"  {label}: {rows[-1]}", flush=True)
            shutil.rmtree(output)
    after = load()
    table = markdown(pd.DataFrame(rows), {
        "names": ",.0f", "seconds": ".1f", "names_per_sec": ",.0f", "largest_process_mib": ".0f",
        "tree_peak_mib": ".0f",
    })
    params = ", ".join(f"{k}={v}" for k, v in model["params"].items())
    shown = ["RUN_DIR" if i and a != "--run" and (argv or sys.argv[1:])[i - 1] == "--run" else a
             for i, a in enumerate(argv or sys.argv[1:])]
    text = (
        f"{SECTION} (`toolkit predict --output DIR/ --engine local|dask`)\n\n"
        f"`{' '.join(['python bench/scale_predict.py', *shown])}` on {machine()}; before: {loads[0]}; "
        f"after: {after}.\n\n"
        f"Model `{model['name']}` ({params}); {args.names:,} surnames drawn with replacement from the "
        f"names data in {args.files} CSV files, one Parquet partition written per file with the top 3 "
        "classes and log-probabilities; one torch thread per process, one thread per Dask worker. "
        "names/s is the whole command (start-up, the Dask cluster, loading the run, reading, "
        "predicting, writing); `largest_process_mib` is the peak resident set of the largest single "
        "process (the command, or a Dask worker), `tree_peak_mib` the largest sum over all the "
        "command's processes at one moment; `load_before` is the 1-minute load average as the "
        "command started.\n\n"
        f"{table}\n"
    )
    publish(text, SECTION, args.write)


if __name__ == "__main__":
    main()
