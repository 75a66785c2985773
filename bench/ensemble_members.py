"""Which ensemble members, and how to combine them: measured on the validation part.

Trains each model once per seed with its defaults (`toolkit.run` on the names data), keeps
its class probabilities for the validation and test parts, then scores every combination
of two or more of them, averaging probabilities or log-probabilities. This is what
`model=ensemble` with `training=separate` does, except that there the members start from
other random weights (they are built one after another from one seed). Choose by the
validation column; the test column is for the record. Usage:

    python bench/ensemble_members.py --models ngram,cnn,gru --seeds 0 1
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from train_bench import load, machine

import toolkit


def member_probabilities(model: str, seed: int) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset="names", model=model, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    return {
        "val": toolkit.predict_proba(result.model, result.encoder, result.split.val.texts),
        "test": result.test_probabilities,
        "val_y": np.asarray(result.split.val.targets), "test_y": result.test_targets,
    }


def combined_accuracy(parts: list[dict[str, np.ndarray]], part: str, how: str) -> float:
    if how == "probability":
        scores = np.mean([p[part] for p in parts], axis=0)
    else:
        scores = np.mean([np.log(np.clip(p[part], 1e-300, 1)) for p in parts], axis=0)
    return float((scores.argmax(1) == parts[0][f"{part}_y"]).mean())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ngram,cnn,gru")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}; before: {load()}")
    models = [m for m in args.models.split(",") if m]
    probs = {(m, s): member_probabilities(m, s) for s in args.seeds for m in models}
    seeds = " ".join(map(str, args.seeds))
    print(f"\n| members | average of | validation accuracy (seeds {seeds}) | test accuracy |")
    print("| --- | --- | --- | --- |")
    for size in range(1, len(models) + 1):
        for combo in itertools.combinations(models, size):
            for how in ("probability", "log-probability") if size > 1 else ("probability",):
                cells = []
                for part in ("val", "test"):
                    values = [combined_accuracy([probs[m, s] for m in combo], part, how) for s in args.seeds]
                    cells.append(" ".join(f"{v:.4f}" for v in values))
                print(f"| {'+'.join(combo)} | {how if size > 1 else '(alone)'} | {cells[0]} | {cells[1]} |")
    print(f"\nAfter: {load()}")


if __name__ == "__main__":
    main()
