"""Choosing `ngram`'s word defaults on the validation split of the panel (never the test split).

For each panel data set (bench/panel.py) and seed it trains `ngram` with each candidate
setting through `toolkit.run` and reads the validation accuracy of the epoch whose weights
were kept; beside it, TF-IDF character + word n-grams with LinearSVC fitted on the same
training part and scored on the same validation part. The test split is not looked at.

    python bench/word_defaults.py --datasets manpages,ui-messages,names --seeds 0 1
    python bench/word_defaults.py --candidates "model.word_ngrams=0;model.word_ngrams=2"
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from panel import panel_params
from sklearn.metrics import accuracy_score
from train_bench import load, machine, markdown

import toolkit
from toolkit.api import plan_run
from toolkit.params import parse_assignments
from toolkit.splits import split_dataset

CANDIDATES = "model.word_ngrams=0;model.word_ngrams=1;model.word_ngrams=2;model.word_ngrams=3"


def svm_val(dataset: str, params: dict[str, Any], seed: int) -> tuple[float, float]:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    plan = plan_run(dataset, "ngram", params=params, seed=seed)
    split = split_dataset(plan.dataset.load(**plan.params["dataset"]), seed=seed, **plan.params["split"])
    started = time.perf_counter()
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True)
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
    train = hstack([chars.fit_transform(split.train.texts), words.fit_transform(split.train.texts)]).tocsr()
    classifier = LinearSVC(C=0.5, random_state=seed).fit(train, split.train.targets)
    seconds = time.perf_counter() - started
    val = hstack([chars.transform(split.val.texts), words.transform(split.val.texts)]).tocsr()
    return accuracy_score(split.val.targets, classifier.predict(val)), seconds


def ngram_val(dataset: str, model: str, params: dict[str, Any], seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset=dataset, model=model, params=params, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    history = result.history
    kept = history.loc[history["epoch"] == result.best_epoch, "val_acc"]
    return float(kept.iloc[0]), result.train_seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="manpages,ui-messages,names,words-language,first-names-gender")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--model", default="ngram")
    parser.add_argument("--candidates", default=CANDIDATES,
                        help="Settings separated by ';', each KEY=VALUE[,KEY=VALUE...].")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\nBefore: {load()}")
    rows = []
    for name in args.datasets.split(","):
        dataset, base = panel_params(name)
        for seed in args.seeds:
            accuracy, seconds = svm_val(dataset, base, seed)
            rows.append({"dataset": name, "seed": seed, "system": "tfidf char+word LinearSVC",
                         "val_accuracy": accuracy, "train_s": seconds})
            print(rows[-1], flush=True)
            for candidate in args.candidates.split(";"):
                params = base | parse_assignments([p for p in candidate.split(",") if p])
                accuracy, seconds = ngram_val(dataset, args.model, params, seed)
                rows.append({"dataset": name, "seed": seed, "system": f"{args.model} {candidate}",
                             "val_accuracy": accuracy, "train_s": seconds})
                print(rows[-1], flush=True)
    runs = pd.DataFrame(rows)
    grouped = runs.groupby(["dataset", "system"], sort=False)
    table = grouped[["val_accuracy", "train_s"]].median().reset_index()
    print(f"After: {load()}\n\nMedian validation accuracy over seeds {args.seeds}:\n")
    print(markdown(table, {"val_accuracy": ".4f", "train_s": ".1f"}))


if __name__ == "__main__":
    main()
