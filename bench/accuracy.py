"""Side-by-side accuracy benchmark: toolkit's models against scikit-learn and fastText.

For each dataset and seed it splits the data once (the split `toolkit run` makes: the
leakage-free default) and runs every system on that same split:

- `tfidf-lr`: character 1-4-gram TF-IDF (char_wb, sublinear tf) + LogisticRegression(C=10)
- `tfidf-svm`: character 1-5-gram TF-IDF (char_wb, sublinear tf) + LinearSVC(C=1)
- `fasttext`: fastText supervised, character n-grams 1-5, 50 epochs, lr 0.1, dim 50 (the best of
  five settings by validation accuracy on names, seed 0), one
  thread (from the optional `toolkit[bench]` extra; skipped with a note when missing)
- `tutorial`: the tutorial's recipe (its linear cell, one random name at a time drawn class
  first, plain SGD at lr 0.005, 100,000 names) run by toolkit's trainer
- every built-in model with its defaults, through `toolkit.run` (the code path of `toolkit run`)

Metrics on the test part: accuracy, macro-F1, balanced accuracy (mean per-class recall);
`train_s` is the fitting time only (no data loading or evaluation); `texts_per_s` is
training texts processed per second of it (texts times epochs; one pass for scikit-learn).
Prints every run and the medians over seeds; `--write FILE` replaces this benchmark's section
of FILE with the medians, the machine and the load average. Usage:

    python bench/accuracy.py --write docs/benchmarks.md            # everything, seeds 0 1 2
    python bench/accuracy.py --datasets names --systems tfidf-lr,ngram --seeds 0
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from predict_bench import write_section
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from threadpoolctl import threadpool_limits
from train_bench import TUTORIAL_RECIPE, load, machine, markdown

import toolkit
from toolkit.api import plan_run
from toolkit.params import parse_assignments
from toolkit.splits import Split, split_dataset

SECTION = "## Accuracy side by side"
DATASETS = ("names", "first-names-gender", "words-language")
#: What a dataset needs beyond the defaults (the README's commands).
DATASET_PARAMS = {"words-language": {"encoder.alphabet": "auto"}}
BASELINES = ("tfidf-lr", "tfidf-svm", "fasttext", "tutorial")
LABELS = {
    "tfidf-lr": "TF-IDF 1-4 + LogisticRegression (scikit-learn)",
    "tfidf-svm": "TF-IDF 1-5 + LinearSVC (scikit-learn)",
    "fasttext": "fastText supervised, char n-grams 1-5",
    "tutorial": "the tutorial's recipe (scratch-rnn)",
}
METRICS = ("accuracy", "macro_f1", "balanced_accuracy", "train_s", "texts_per_s")


def builtin_models() -> list[str]:
    registry = toolkit.load_registry()
    names = sorted(registry.specs["model"])
    return [name for name in names if registry.owner("model", name).source == "built-in"]


def scores(truth: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    return {
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(truth, predicted),
    }


def the_split(dataset: str, seed: int) -> Split:
    plan = plan_run(dataset, "scratch-rnn", seed=seed)
    return split_dataset(plan.dataset.load(**plan.params["dataset"]), seed=seed, **plan.params["split"])


def run_sklearn(split: Split, svm: bool, seed: int) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5 if svm else 4), sublinear_tf=True)
    features = vectorizer.fit_transform(split.train.texts)
    classifier = LinearSVC(C=1.0, random_state=seed) if svm else LogisticRegression(C=10, max_iter=2000)
    with threadpool_limits(1):  # as toolkit's models: several BLAS threads collapse on a busy machine
        classifier.fit(features, split.train.targets)
    seconds = time.perf_counter() - started
    predicted = classifier.predict(vectorizer.transform(split.test.texts))
    speed = {"train_s": seconds, "texts_per_s": len(split.train) / seconds}
    return scores(split.test.targets, predicted) | speed


FASTTEXT_EPOCHS = 50


def run_fasttext(split: Split, seed: int) -> dict[str, float]:
    import fasttext

    def line(text: str) -> str:  # fastText splits on whitespace; keep a name one token
        return text.replace(" ", "_").replace("\n", "_")

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "train.txt"
        pairs = zip(split.train.texts, split.train.targets, strict=True)
        path.write_text("".join(f"__label__{t} {line(x)}\n" for x, t in pairs), encoding="utf-8")
        started = time.perf_counter()
        model = fasttext.train_supervised(
            str(path), epoch=FASTTEXT_EPOCHS, lr=0.1, dim=50, minn=1, maxn=5, wordNgrams=1,
            minCount=1, thread=1, seed=seed, verbose=0,
        )
        seconds = time.perf_counter() - started
    labels, _ = model.predict([line(x) for x in split.test.texts], k=1)
    predicted = [int(found[0].removeprefix("__label__")) for found in labels]
    return scores(split.test.targets, predicted) | {
        "train_s": seconds, "texts_per_s": FASTTEXT_EPOCHS * len(split.train) / seconds,
    }


def run_toolkit(dataset: str, model: str, params: dict[str, Any], seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:  # the run folder is not what is measured
        result = toolkit.run(dataset=dataset, model=model, params=params, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    seen = float(result.history["examples"].max())
    speed = {"train_s": result.train_seconds, "texts_per_s": seen / max(result.train_seconds, 1e-9)}
    measured = scores(result.test_targets, result.test_predictions()) | speed
    if model == "ensemble":  # the other way to combine the same trained members
        other = "log-probability" if result.model.combine == "probability" else "probability"
        result.model.combine = other
        probabilities = toolkit.predict_proba(result.model, result.encoder, result.split.test.texts)
        measured["other_combine"] = scores(result.test_targets, probabilities.argmax(1)) | speed
        measured["other_combine"]["combine"] = other
    return measured


def run_system(
    system: str, dataset: str, split: Split, seed: int, params: dict[str, Any]
) -> dict[str, float]:
    if system in ("tfidf-lr", "tfidf-svm"):
        return run_sklearn(split, system == "tfidf-svm", seed)
    if system == "fasttext":
        return run_fasttext(split, seed)
    if system == "tutorial":
        return run_toolkit(dataset, "scratch-rnn", params | TUTORIAL_RECIPE, seed)
    return run_toolkit(dataset, system, params, seed)


def fasttext_missing() -> str | None:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return "fastText is not installed (pip install 'toolkit[bench]'); its rows are skipped."
    return None


def medians(runs: pd.DataFrame) -> pd.DataFrame:
    grouped = runs.groupby(["dataset", "system"], sort=False)
    table = grouped[list(METRICS)].median().reset_index()
    table.insert(2, "seeds", grouped.size().to_numpy())
    spread = grouped["accuracy"].agg(["min", "max"]).to_numpy()
    table.insert(4, "accuracy_range", [f"{lo:.3f}-{hi:.3f}" for lo, hi in spread])
    return table


FORMATS = {"accuracy": ".4f", "macro_f1": ".4f", "balanced_accuracy": ".4f", "train_s": ".1f",
           "texts_per_s": ",.0f"}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--systems", default="", help="Comma-separated: "
                        f"{', '.join(BASELINES)} and model names (default: all of them).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="Parameter for every toolkit run, as in `toolkit run --param`.")
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the medians in FILE (Markdown).")
    parser.add_argument("--part", default="", help="Name this run's section (`## Accuracy side by side: "
                        "PART`), so runs of different subsets can sit side by side in FILE.")
    args = parser.parse_args(argv)
    heading = f"{SECTION}: {args.part}" if args.part else SECTION
    params = parse_assignments(args.param)
    systems = [s for s in args.systems.split(",") if s] or [*BASELINES, *builtin_models()]
    datasets = [d for d in args.datasets.split(",") if d]
    notes = []
    if "fasttext" in systems and (missing := fasttext_missing()):
        systems.remove("fasttext")
        notes.append(missing)

    print(f"Machine: {machine()}")
    before = load()
    print(f"Before: {before}")
    rows: list[dict[str, Any]] = []
    total = len(datasets) * len(args.seeds) * (len(systems) + ("ensemble" in systems))
    for dataset in datasets:
        extra = DATASET_PARAMS.get(dataset, {}) | params
        for seed in args.seeds:
            split = the_split(dataset, seed)
            for system in systems:
                measured = run_system(system, dataset, split, seed, extra)
                other = measured.pop("other_combine", None)
                row = {"dataset": dataset, "system": LABELS.get(system, system), "seed": seed} | measured
                rows.append(row)
                if other is not None:
                    label = f"ensemble, same members, mean of {other.pop('combine')}"
                    rows.append({"dataset": dataset, "system": label, "seed": seed} | other)
                print(f"  {dataset} seed {seed} {row['system']}: accuracy {row['accuracy']:.4f}, macro-F1 "
                      f"{row['macro_f1']:.4f}, balanced {row['balanced_accuracy']:.4f}, "
                      f"{row['train_s']:.1f} s, {row['texts_per_s']:,.0f} texts/s", flush=True)
                if args.write:
                    write(args.write, heading, rows, total, before, load(), notes, args.seeds, argv)
    after = load()
    print(f"After: {after}")
    runs = pd.DataFrame(rows)
    print(f"\nMedians over seeds {' '.join(map(str, args.seeds))}:\n\n{markdown(medians(runs), FORMATS)}"
          f"\n\nEvery run:\n\n{markdown(runs, FORMATS)}")
    if args.write:
        write(args.write, heading, rows, total, before, after, notes, args.seeds, argv)
        print(f"Wrote the section to {args.write}")


def write(
    path: Path, heading: str, rows: list[dict[str, Any]], total: int, before: str, after: str,
    notes: list[str], seeds: Sequence[int], argv: Sequence[str] | None,
) -> None:
    """Put the medians (and every run) in `path`'s section; called after every run, so a long
    benchmark stopped early still leaves what it measured, marked as incomplete."""
    runs = pd.DataFrame(rows)
    command = shlex.join(["python", "bench/accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    done = "" if len(rows) == total else f" **Incomplete: {len(rows)} of {total} runs done when written.**"
    text = (
        f"{heading} (`bench/accuracy.py`)\n\n"
        f"`{command}` on {machine()}, on {time.strftime('%Y-%m-%d %H:%M')}; {before} before, {after} "
        "after (the machine was shared with other jobs, so seconds and texts/s are noisy; the "
        f"accuracies repeat exactly for a seed).{done}\n\n"
        + "".join(f"{note}\n\n" for note in notes)
        + "Every system sees the same split of each dataset for a seed (toolkit's default "
        "leakage-free split); toolkit's models run with their defaults. Medians over seeds "
        f"{', '.join(map(str, seeds))}:\n\n{markdown(medians(runs), FORMATS)}\n\n"
        f"Every run:\n\n{markdown(runs, FORMATS)}\n\n"
    )
    write_section(path, text, heading)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
