"""`toolkit tune` on the names data: what a search finds against each model's defaults.

For each model, one study (`toolkit.tune`, the code path of `toolkit tune`) of `--trials`
trials over the model's and the trainer's declared search spaces, on the leakage-free split
of `names` with seed 0, scored by validation accuracy (the test split is not read during the
search). Trial 0 of every study is the model's defaults, so "defaults" and "best" are
validation accuracies of the same split. The best parameters are then trained as an ordinary
run (seed 0), whose test accuracy and macro-F1 are shown beside the defaults' own run's.
Usage:

    python bench/tune_bench.py --trials 3 --models ngram        # a quick look
    python bench/tune_bench.py --trials 16 --write docs/benchmarks.md

Studies are kept in `--folder` (default bench-tunes/), so a second call resumes them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import optuna
from scale_common import write_between_markers
from train_bench import load, machine

import toolkit

MODELS = ("scratch-rnn", "lstm", "ngram", "cnn")


def tune_model(model: str, trials: int, folder: Path, threads: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = toolkit.tune(
        dataset="names", model=model, trials=trials, params={"train.threads": threads},
        study=folder / model / "study.db", output=folder / model, echo=print,
    )
    seconds = time.perf_counter() - started
    trials_done = result.study.trials
    states = [t.state for t in trials_done]
    defaults_trial = trials_done[0]
    defaults_run = toolkit.run(dataset="names", model=model, params={"train.threads": threads},
                               output=folder / model / "defaults-run")
    best_run = result.best_run
    assert best_run is not None and best_run.report is not None and defaults_run.report is not None
    best = result.study.best_trial
    changed = {k: v for k, v in best.params.items() if defaults_trial.params.get(k) != v}
    return {
        "model": model,
        "trials": " / ".join(str(states.count(state)) for state in (
            optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL,
        )),
        "val_defaults": defaults_trial.value,
        "val_best": best.value,
        "best_trial": best.number,
        "test_defaults": defaults_run.report.summary["value"]["accuracy"],
        "test_best": best_run.report.summary["value"]["accuracy"],
        "f1_defaults": defaults_run.report.summary["value"]["macro_f1"],
        "f1_best": best_run.report.summary["value"]["macro_f1"],
        "changed": changed,
        "minutes": seconds / 60,
    }


def table(rows: list[dict[str, Any]], trials: int, machine_line: str, loads: tuple[str, str]) -> str:
    lines = [
        f"`python bench/tune_bench.py --trials {trials} --write docs/benchmarks.md` on {machine_line}; "
        f"before: {loads[0]}; after: {loads[1]}.",
        "",
        "One study per model, trial 0 being the model's defaults; validation accuracy decides, and",
        "the test columns are the defaults' run and the best parameters' run (seed 0 both).",
        "",
        "| model | trials (complete / pruned / failed) | validation: defaults | validation: best | "
        "test accuracy: defaults → best | macro-F1: defaults → best | minutes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['trials']} | {row['val_defaults']:.4f} | "
            f"{row['val_best']:.4f} (trial {row['best_trial']}) | "
            f"{row['test_defaults']:.4f} → {row['test_best']:.4f} | "
            f"{row['f1_defaults']:.3f} → {row['f1_best']:.3f} | {row['minutes']:.1f} |"
        )
    lines += ["", "The best trial's parameters, where they differ from the defaults:", ""]
    for row in rows:
        settings = ", ".join(f"`{k}={_plain(v)}`" for k, v in sorted(row["changed"].items()))
        lines.append(f"- {row['model']}: {settings or '(the defaults won)'}")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="train.threads of every trial and run.")
    parser.add_argument("--folder", type=Path, default=Path("bench-tunes"))
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the table in FILE (Markdown).")
    args = parser.parse_args()
    before = load()
    rows = [tune_model(model, args.trials, args.folder, args.threads) for model in args.models]
    text = table(rows, args.trials, machine(), (before, load()))
    print(text)
    if args.write:
        write_between_markers(args.write, "tune", text)


if __name__ == "__main__":
    main()
