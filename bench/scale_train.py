"""Data-parallel training: 1 process against N (`toolkit run --nproc N`) on the large
words-language workload, at the same effective batch.

Runs the real command, as a user would, once per process count:

    toolkit run --dataset words-language -p dataset.n=100000 -p encoder.alphabet=auto \\
        --model scratch-rnn -p train.batch_size=B/N -p train.threads=1 --nproc N

and reads the run's history: training throughput (texts/s over all ranks, median epoch),
the wall time of the whole command, the time until the validation accuracy first reached the
target (the lower of the runs' best validation accuracies, so every run reaches it; counted
in training+validation seconds from the start of training), and the peak resident memory of
the largest rank process. Usage:

    python bench/scale_train.py                                 # 8 languages, n=100000, 1 and 2 processes
    python bench/scale_train.py --n 5000 --epochs 1             # a quick check
    python bench/scale_train.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_common import measure, publish  # noqa: E402
from train_bench import load, machine, markdown  # noqa: E402

SECTION = "## Data-parallel training"
LANGUAGES = "en,de,fr,es,it,nl,pt,pl"


def train_once(nproc: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    output = folder / f"run-{nproc}"
    command = [
        sys.executable, "-m", "toolkit", "run", "--dataset", "words-language",
        "-p", f"dataset.languages={args.languages}", "-p", f"dataset.n={args.n}",
        "-p", "encoder.alphabet=auto", "--model", args.model, "--device", "cpu",
        "-p", f"train.batch_size={args.batch_size // nproc}", "-p", f"train.epochs={args.epochs}",
        "-p", "train.threads=1", "--output", str(output),
    ] + (["--nproc", str(nproc)] if nproc > 1 else [])
    print(f"  {nproc} process(es): {' '.join(command[2:])}", flush=True)
    measured = measure(command)
    if measured.returncode != 0:
        raise SystemExit(f"toolkit run failed:\n{measured.stderr[-3000:]}")
    history = pd.read_csv(output / "history.csv")
    config = json.loads((output / "config.json").read_text(encoding="utf-8"))
    history["elapsed"] = history["seconds"].cumsum()
    return {
        "processes": nproc, "history": history, "config": config, "wall_s": measured.seconds,
        "rank_peak_mib": measured.largest("-m toolkit"), "tree_peak_mib": measured.total_peak_mib,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default=LANGUAGES)
    parser.add_argument("--n", type=int, default=100_000, help="Words per language.")
    parser.add_argument("--model", default="scratch-rnn")
    parser.add_argument("--batch-size", type=int, default=64, help="Effective (global) batch size.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--write", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\nBefore: {load()}", flush=True)
    before = load()
    with tempfile.TemporaryDirectory(prefix="scale-train-") as scratch:
        runs = [train_once(n, args, Path(scratch)) for n in args.procs]
    after = load()
    target = min(run["history"]["val_acc"].max() for run in runs)
    rows = []
    for run in runs:
        history = run["history"]
        reached = history.loc[history["val_acc"] >= target, "elapsed"]
        rows.append({
            "processes": run["processes"],
            "batch_per_process": run["config"]["train"]["batch_size"],
            "effective_batch": run["config"]["training"]["effective_batch_size"],
            "train_texts": run["config"]["split"]["sizes"]["train"],
            "texts_per_sec": history["names_per_sec"].median(),
            "best_val_acc": history["val_acc"].max(),
            "seconds_to_target": reached.iloc[0],
            "train_seconds": run["config"]["training"]["seconds"],
            "wall_seconds": run["wall_s"],
            "peak_mib_per_process": run["rank_peak_mib"],
        })
    frame = pd.DataFrame(rows)
    base = frame.iloc[0]
    frame["speedup"] = frame["texts_per_sec"] / base["texts_per_sec"]
    frame["efficiency"] = frame["speedup"] / (frame["processes"] / base["processes"])
    table = markdown(frame, {
        "processes": ".0f", "batch_per_process": ".0f", "effective_batch": ".0f",
        "train_texts": ",.0f", "texts_per_sec": ",.0f", "best_val_acc": ".4f", "seconds_to_target": ".1f",
        "train_seconds": ".1f", "wall_seconds": ".1f", "peak_mib_per_process": ".0f", "speedup": ".2f",
        "efficiency": ".2f",
    })
    shown_args = " ".join(sys.argv[1:] if argv is None else argv)
    text = (
        f"{SECTION} (`toolkit run --nproc N`)\n\n"
        f"`{' '.join(['python bench/scale_train.py', shown_args]).strip()}` on {machine()}; "
        f"before: {before}; after: {after}.\n\n"
        f"`words-language` over {args.languages} with n={args.n:,} words each, leakage-free split, "
        f"`{args.model}` with a learned alphabet, {args.epochs} epochs, one torch thread per process, "
        f"the same effective batch of {args.batch_size} (each of N processes takes batch/N). "
        "texts/s is the median epoch's training throughput over all processes; the target "
        f"validation accuracy is {target:.4f} (the lower of the runs' best), and seconds_to_target "
        "counts training and validation time from the start of training until an epoch's "
        "validation accuracy reached it (validation runs on rank 0 only, between epochs). The peak "
        "is the largest resident set of one rank process (the 1-process run: the command itself).\n\n"
        f"{table}\n"
    )
    publish(text, SECTION, args.write)


if __name__ == "__main__":
    main()
