"""Calibration, abstention and prediction sets of the built-in models, on the test split.

For each data set, model and seed it trains through `toolkit.run` (temperature fitted on the
validation split, conformal scores from a calibration part: `split.calibration_size=0.1`
unless `--params` says otherwise; runs carve none by default) and reads
the run's metrics.json: the temperature, ECE before and after (15 bins), the 0.9 sets'
coverage and mean size on test, and the share of test texts answered at 95% accuracy. The
table goes between the `<!-- calibration:begin -->` markers of docs/calibration.md.

    python bench/calibration.py                                   # names, seeds 0 1 2, every model
    python bench/calibration.py --datasets names,manpages --seeds 0 --params train.epochs=2
    python bench/calibration.py --models ngram,gru --no-write     # print only
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from panel import panel_params
from scale_common import write_between_markers
from train_bench import load, machine, markdown

import toolkit
from toolkit.params import parse_assignments

MODELS = ("scratch-rnn", "scratch-gru", "rnn", "gru", "lstm", "ngram", "cnn", "ensemble")
PAGE = Path(__file__).resolve().parent.parent / "docs" / "calibration.md"


#: The calibration part these runs carve, so the sets' coverage is the guaranteed one.
CALIBRATION_SIZE = 0.1


def measure(dataset: str, model: str, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """One run's calibration numbers from its metrics.json."""
    name, dataset_params = panel_params(dataset)
    with tempfile.TemporaryDirectory() as scratch:
        every = {"split.calibration_size": CALIBRATION_SIZE, **dataset_params, **params}
        result = toolkit.run(dataset=name, model=model, params=every, seed=seed, progress=False,
                             output=Path(scratch) / "run")
        metrics = json.loads((result.run_dir / "metrics.json").read_text())
    numbers = metrics["calibration"]
    at_90 = next(level for level in metrics["conformal"]["levels"] if level["coverage"] == 0.9)
    at_95_accuracy = next(row for row in metrics["abstention"]["table"] if row["accuracy_target"] == 0.95)
    return {
        "data set": dataset, "model": model, "seed": seed,
        "accuracy": metrics["summary"]["accuracy"], "temperature": numbers["temperature"],
        "ECE before": numbers["ece_before"], "ECE after": numbers["ece_after"],
        "coverage of 0.9 sets": at_90["empirical_coverage"], "mean set size": at_90["mean_set_size"],
        "answered at 95% accuracy": at_95_accuracy["coverage"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="names", help="Comma-separated panel data sets.")
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated built-in models.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", nargs="*", default=[], help="GROUP.NAME=VALUE for every run.")
    parser.add_argument("--no-write", action="store_true", help=f"Print only; do not update {PAGE.name}.")
    parser.add_argument("--page", type=Path, default=PAGE, help="The page whose markers get the table.")
    args = parser.parse_args(argv)
    params = parse_assignments(args.params)
    rows = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            for seed in args.seeds:
                rows.append(measure(dataset, model, seed, params))
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    table = markdown(frame, {
        "accuracy": ".3f", "temperature": ".2f", "ECE before": ".3f", "ECE after": ".3f",
        "coverage of 0.9 sets": ".3f", "mean set size": ".2f", "answered at 95% accuracy": ".1%",
    })
    given = list(argv if argv is not None else _argv())
    if "--page" in given:  # where the table goes does not change it
        del given[given.index("--page"):given.index("--page") + 2]
    command = "python bench/calibration.py " + " ".join(given)
    text = (f"Written by `{command.strip()}` on {machine()}; {load()} while it ran.\n\n{table}")
    print(text)
    if not args.no_write:
        write_between_markers(args.page, "calibration", text)
        print(f"Wrote the table to {args.page}")


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
