"""Side-by-side accuracy benchmark: toolkit's models against scikit-learn and fastText.

The data sets are the panel (bench/panel.py: the built-in `names`, `first-names-gender` and
`words-language`, and the several-word `manpages`, `ui-messages`, `ui-programs` and
`package-summaries` that script builds from this machine's manual pages, translations and
package lists). For each dataset and seed it splits the data
once (the split `toolkit run` makes: the leakage-free default) and runs every system on that
same split:

- `tfidf-svm-words`: character 1-5-gram TF-IDF (char_wb, sublinear tf) + word 1-2-gram TF-IDF
  (sublinear tf), LinearSVC(C=0.5): the strongest baseline on several-word texts
- `tfidf-lr-words`: character 1-4-grams + word 1-2-grams as above, LogisticRegression(C=10)
- `tfidf-lr`: character 1-4-gram TF-IDF (char_wb, sublinear tf) + LogisticRegression(C=10)
- `tfidf-svm`: character 1-5-gram TF-IDF (char_wb, sublinear tf) + LinearSVC(C=1)
- `fasttext`: fastText supervised, one thread, the best by validation accuracy (never test) of
  the settings in FASTTEXT_SETTINGS for each data set and seed: word n-grams with character
  n-grams, words alone, or each text one token of character n-grams (from the optional
  `toolkit[bench]` extra; skipped with a note when missing)
- `tutorial`: the tutorial's recipe (its linear cell, one random name at a time drawn class
  first, plain SGD at lr 0.005, 100,000 names) run by toolkit's trainer
- every built-in model with its defaults, through `toolkit.run` (the code path of `toolkit run`)

Metrics on the test part: accuracy, macro-F1, balanced accuracy (mean per-class recall);
`train_s` is the whole fit and nothing else (no data loading or evaluation): scikit-learn's
vectorising and fitting, fastText's `train_supervised` (reading its training file), toolkit's
fitting of the encoder, building the model and training it (encoding the texts, precomputing
n-gram ids and the validation pass after each epoch included; sections written before
2026-12-06 22:00 left toolkit's encoding and precomputing out); `texts_per_s` is training
texts processed per second of it (texts times epochs; one pass for scikit-learn).
Prints every run and the medians over seeds; `--write FILE` replaces this benchmark's section
of FILE with the medians, the machine and the load average. Usage:

    python bench/accuracy.py --write docs/benchmarks.md            # everything, seeds 0 1 2
    python bench/accuracy.py --datasets names --systems tfidf-lr,ngram --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from panel import BUILTIN, DEFAULT_OUTPUT, panel_params
from predict_bench import write_section
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from threadpoolctl import threadpool_limits
from train_bench import TUTORIAL_RECIPE, load, machine, markdown

import toolkit
from toolkit.api import plan_run
from toolkit.params import parse_assignments
from toolkit.splits import Split, split_dataset

SECTION = "## Accuracy side by side"
DATASETS = (*BUILTIN, "manpages", "ui-messages", "ui-programs", "package-summaries")
BASELINES = ("tfidf-svm-words", "tfidf-lr-words", "tfidf-lr", "tfidf-svm", "fasttext", "tutorial")
LABELS = {
    "tfidf-svm-words": "TF-IDF char 1-5 + word 1-2, LinearSVC (scikit-learn)",
    "tfidf-lr-words": "TF-IDF char 1-4 + word 1-2, LogisticRegression (scikit-learn)",
    "tfidf-lr": "TF-IDF 1-4 + LogisticRegression (scikit-learn)",
    "tfidf-svm": "TF-IDF 1-5 + LinearSVC (scikit-learn)",
    "fasttext": "fastText supervised, best of its settings on validation",
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


def the_split(dataset: str, params: dict[str, Any], seed: int) -> Split:
    plan = plan_run(dataset, "scratch-rnn", params=params, seed=seed)
    return split_dataset(plan.dataset.load(**plan.params["dataset"]), seed=seed, **plan.params["split"])


def run_sklearn(split: Split, svm: bool, seed: int, words: bool = False) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion
    from sklearn.svm import LinearSVC

    started = time.perf_counter()
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5 if svm else 4), sublinear_tf=True)
    vectorizer = FeatureUnion([
        ("chars", chars),
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
    ]) if words else chars
    features = vectorizer.fit_transform(split.train.texts)
    cost = 0.5 if words else 1.0
    classifier = LinearSVC(C=cost, random_state=seed) if svm else LogisticRegression(C=10, max_iter=2000)
    with threadpool_limits(1):  # as toolkit's models: several BLAS threads collapse on a busy machine
        classifier.fit(features, split.train.targets)
    seconds = time.perf_counter() - started
    predicted = classifier.predict(vectorizer.transform(split.test.texts))
    speed = {"train_s": seconds, "texts_per_s": len(split.train) / seconds}
    return scores(split.test.targets, predicted) | speed


#: fastText settings tried on each data set and seed; the one with the best validation accuracy
#: is scored on the test part. `one_token`: the text's spaces become "_", so it is one word read
#: by its character n-grams (the best of five settings on names, seed 0); otherwise words.
FASTTEXT_SETTINGS = {
    "one token, char 1-5, 50 epochs": {"one_token": True, "epoch": 50, "lr": 0.1, "dim": 50, "minn": 1,
                                       "maxn": 5, "wordNgrams": 1},
    "word 1-2-grams, char 2-5, 25 epochs": {"one_token": False, "epoch": 25, "lr": 0.5, "dim": 100,
                                            "minn": 2, "maxn": 5, "wordNgrams": 2},
    "words, char 1-5, 50 epochs": {"one_token": False, "epoch": 50, "lr": 0.1, "dim": 50, "minn": 1,
                                   "maxn": 5, "wordNgrams": 1},
    "word 1-2-grams alone, 25 epochs": {"one_token": False, "epoch": 25, "lr": 0.5, "dim": 100, "minn": 0,
                                        "maxn": 0, "wordNgrams": 2},
}


def fasttext_line(text: str, one_token: bool) -> str:
    text = text.replace("\n", " ")
    return text.replace(" ", "_") if one_token else text


def fit_fasttext(split: Split, seed: int, setting: dict[str, Any]) -> tuple[Any, float]:
    import fasttext

    options = dict(setting)
    one_token = options.pop("one_token")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "train.txt"
        pairs = zip(split.train.texts, split.train.targets, strict=True)
        path.write_text("".join(f"__label__{t} {fasttext_line(x, one_token)}\n" for x, t in pairs),
                        encoding="utf-8")
        started = time.perf_counter()
        model = fasttext.train_supervised(str(path), minCount=1, thread=1, seed=seed, verbose=0, **options)
        return model, time.perf_counter() - started


def fasttext_predict(model: Any, texts: Sequence[str], one_token: bool) -> list[int]:
    labels, _ = model.predict([fasttext_line(x, one_token) for x in texts], k=1)
    return [int(found[0].removeprefix("__label__")) for found in labels]


def run_fasttext(split: Split, seed: int) -> dict[str, Any]:
    best: tuple[float, str, Any, float] | None = None
    for name, setting in FASTTEXT_SETTINGS.items():
        model, seconds = fit_fasttext(split, seed, setting)
        guesses = fasttext_predict(model, split.val.texts, setting["one_token"])
        val = accuracy_score(split.val.targets, guesses)
        if best is None or val > best[0]:
            best = (val, name, model, seconds)
    assert best is not None
    _, name, model, seconds = best
    predicted = fasttext_predict(model, split.test.texts, FASTTEXT_SETTINGS[name]["one_token"])
    return scores(split.test.targets, predicted) | {
        "train_s": seconds, "texts_per_s": FASTTEXT_SETTINGS[name]["epoch"] * len(split.train) / seconds,
        "chosen": name,
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
    if system.startswith("tfidf-"):
        return run_sklearn(split, system.startswith("tfidf-svm"), seed, words=system.endswith("-words"))
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
    parser.add_argument("--rows", type=Path, metavar="FILE.json", help="Keep every run in FILE.json and "
                        "skip the runs it already holds, so a long benchmark can be resumed.")
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
    rows: list[dict[str, Any]] = (
        json.loads(args.rows.read_text(encoding="utf-8")) if args.rows and args.rows.exists() else []
    )
    done = {(row["dataset"], row["system"], row["seed"]) for row in rows}
    total = len(datasets) * len(args.seeds) * (len(systems) + ("ensemble" in systems))
    for name in datasets:
        dataset, extra = panel_params(name)
        extra |= params
        for seed in args.seeds:
            split = the_split(dataset, extra, seed)
            for system in systems:
                if (name, LABELS.get(system, system), seed) in done:
                    continue
                measured = run_system(system, dataset, split, seed, extra)
                other = measured.pop("other_combine", None)
                row = {"dataset": name, "system": LABELS.get(system, system), "seed": seed} | measured
                rows.append(row)
                if other is not None:
                    label = f"ensemble, same members, weighted mean of {other.pop('combine')}"
                    rows.append({"dataset": name, "system": label, "seed": seed} | other)
                if args.rows:
                    partial = args.rows.with_suffix(".partial")
                    partial.write_text(json.dumps(rows, indent=1), encoding="utf-8")
                    partial.replace(args.rows)
                print(f"  {name} seed {seed} {row['system']}: accuracy {row['accuracy']:.4f}, macro-F1 "
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


def sources(names: Sequence[str]) -> str:
    """Where each data set built by bench/panel.py came from, from its .source.json."""
    lines = []
    for name in names:
        info_path = DEFAULT_OUTPUT / f"{name}.source.json"
        if name not in BUILTIN and info_path.is_file():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            lines.append(
                f"- `{name}` ({info['built_by']}): {info['rows']:,} texts, {info['classes']} classes, median "
                f"{info['median_words']} words and {info['median_characters']} characters; {info['source']}; "
                f"labels: {info['label']}; licence: {info['licence']}; sha256 {info['sha256'][:12]}"
            )
    return "Data sets built by `bench/panel.py`:\n\n" + "\n".join(lines) + "\n\n" if lines else ""


def write(
    path: Path, heading: str, rows: list[dict[str, Any]], total: int, before: str, after: str,
    notes: list[str], seeds: Sequence[int], argv: Sequence[str] | None,
) -> None:
    """Put the medians (and every run) in `path`'s section; called after every run, so a long
    benchmark stopped early still leaves what it measured, marked as incomplete."""
    runs = pd.DataFrame(rows)
    command = shlex.join(["python", "bench/accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    done = "" if len(rows) >= total else f" **Incomplete: {len(rows)} of {total} runs done when written.**"
    text = (
        f"{heading} (`bench/accuracy.py`)\n\n"
        f"`{command}` on {machine()}, on {time.strftime('%Y-%m-%d %H:%M')}; {before} before, {after} "
        "after (the machine was shared with other jobs, so seconds and texts/s are noisy; the "
        f"accuracies repeat exactly for a seed).{done} `train_s` is the whole fit: scikit-learn's "
        "vectorising and fitting, fastText's `train_supervised`, toolkit's encoder fitting, model "
        "building and training (encoding, precomputing and validation passes included).\n\n"
        + "".join(f"{note}\n\n" for note in notes)
        + sources(runs["dataset"].unique())
        + "Every system sees the same split of each dataset for a seed (toolkit's default "
        "leakage-free split); toolkit's models run with their defaults. Medians over seeds "
        f"{', '.join(map(str, seeds))}:\n\n{markdown(medians(runs), FORMATS)}\n\n"
        f"Every run:\n\n{markdown(runs, FORMATS)}\n\n"
    )
    write_section(path, text, heading)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
