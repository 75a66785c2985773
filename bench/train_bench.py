"""Training benchmark: accuracy, macro-F1, training seconds and names/s on the names data.

Trains each model with `toolkit.run` (the same code path as `toolkit run`) on the
leakage-free split of `names`, once per seed, and prints every run and the medians as
Markdown tables for docs/benchmarks.md. Seeds fix the split, the initial weights and the
batch order, so the same command measures the same runs. Usage:

    python bench/train_bench.py                        # scratch-rnn, scratch-gru, gru, lstm; seeds 0 1 2
    python bench/train_bench.py --models gru --seeds 0 1 2 3 4 --param train.epochs=12
    python bench/train_bench.py --baseline --tutorial  # add TF-IDF + logistic regression, the tutorial loop

`train_seconds` is the fit's wall time (`RunResult.train_seconds`): fitting the encoder,
building the model, encoding the texts, the training steps and the validation pass after
every epoch (before 2026-12-06 22:00: the steps and validation passes only), not data
loading, the test evaluation or writing the run folder; `names_per_sec` is the median
epoch's training throughput (the training steps alone). For the TF-IDF baseline both cover
fitting the vectorizer and the classifier.

`--baseline` adds a character n-gram TF-IDF + logistic regression on the same splits;
`--tutorial` adds the tutorial's own recipe (its linear cell, one random name at a time,
plain SGD at lr 0.005, 100,000 names) run by this trainer.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import toolkit
from toolkit.params import parse_assignments

DEFAULT_MODELS = ("scratch-rnn", "scratch-gru", "gru", "lstm")
TUTORIAL_RECIPE = {
    "model.nonlinearity": "none", "train.optimizer": "sgd", "train.lr": 0.005,
    "train.batch_size": 1, "train.sampling": "balanced", "train.examples": 100_000,
    "train.schedule": "constant", "train.clip": 0.0, "train.bucket": False,
    # scratch-rnn's own trainer defaults are not the tutorial's
    "train.label_smoothing": 0.0, "train.select": "loss",
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__} (torch's own default: {torch.get_num_threads()} threads; "
        f"toolkit trains on train.threads), {platform.system()}"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def run_model(label: str, model: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:  # the run folder is not what is measured
        result = toolkit.run(dataset="names", model=model, params=params, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    history = result.history
    kept = history.loc[history["epoch"] == result.best_epoch, "val_acc"]
    return {
        "model": label, "seed": seed,
        "val_accuracy": float(kept.iloc[0]) if len(kept) else float("nan"),
        "accuracy": result.test_accuracy(),
        "macro_f1": result.test_macro_f1(), "train_seconds": result.train_seconds,
        "names_per_sec": float(history["names_per_sec"].median()) if len(history) else float("nan"),
        "epochs": len(history), "best_epoch": result.best_epoch,
    }


def run_baseline(seed: int) -> dict[str, Any]:
    """Character 1-4-gram TF-IDF + logistic regression on the split toolkit.run uses."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from toolkit.api import plan_run
    from toolkit.splits import split_dataset

    plan = plan_run("names", "scratch-rnn", seed=seed)
    data = plan.dataset.load(**plan.params["dataset"])
    split = split_dataset(data, seed=seed, **plan.params["split"])
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    features = vectorizer.fit_transform(split.train.texts)
    classifier = LogisticRegression(C=10, max_iter=2000).fit(features, split.train.targets)
    seconds = time.perf_counter() - started
    predicted = classifier.predict(vectorizer.transform(split.test.texts))
    return {
        "model": "tf-idf + logistic regression", "seed": seed, "val_accuracy": None,
        "accuracy": accuracy_score(split.test.targets, predicted),
        "macro_f1": f1_score(split.test.targets, predicted, average="macro"),
        "train_seconds": seconds, "names_per_sec": len(split.train) / seconds,
        "epochs": None, "best_epoch": None,
    }


def markdown(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return format(value, formats[column]) if column in formats else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(cell(c, row[c]) for c in frame.columns) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="Comma-separated model names.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="Parameter for every model run, as in `toolkit run --param`.")
    parser.add_argument("--baseline", action="store_true", help="Add TF-IDF + logistic regression.")
    parser.add_argument("--tutorial", action="store_true", help="Add the tutorial's recipe (slow).")
    args = parser.parse_args(argv)
    params = parse_assignments(args.param)

    print(f"Machine: {machine()}")
    print(f"Before: {load()}")
    jobs: list[tuple[str, str, dict[str, Any]]] = [(m, m, params) for m in args.models.split(",") if m]
    if args.tutorial:
        jobs.append(("tutorial recipe (scratch-rnn)", "scratch-rnn", TUTORIAL_RECIPE))
    rows = []
    for seed in args.seeds:
        for label, model, model_params in jobs:
            rows.append(run_model(label, model, model_params, seed))
            print(f"  {label} seed {seed}: accuracy {rows[-1]['accuracy']:.4f}, "
                  f"macro-F1 {rows[-1]['macro_f1']:.4f}, {rows[-1]['train_seconds']:.1f} s", flush=True)
        if args.baseline:
            rows.append(run_baseline(seed))
    print(f"After: {load()}")

    runs = pd.DataFrame(rows)
    formats = {"val_accuracy": ".4f", "accuracy": ".4f", "macro_f1": ".4f", "train_seconds": ".1f",
               "names_per_sec": ",.0f"}
    order = list(dict.fromkeys(runs["model"]))
    medians = (
        runs.groupby("model", sort=False)[["accuracy", "macro_f1", "train_seconds", "names_per_sec"]]
        .median().reindex(order).reset_index()
    )
    medians.insert(1, "runs", [int((runs["model"] == m).sum()) for m in order])
    spread = runs.groupby("model", sort=False)["accuracy"].agg(["min", "max"]).reindex(order)
    medians["accuracy_range"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in spread.itertuples(index=False)]
    print("\nMedians over seeds " + " ".join(map(str, args.seeds))
          + (f" with {' '.join(args.param)}" if args.param else "") + ":\n")
    print(markdown(medians, formats))
    print("\nEvery run:\n")
    print(markdown(runs, formats))


if __name__ == "__main__":
    main()
