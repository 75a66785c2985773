"""Is `ngram`'s gap to the TF-IDF SVM in its features or in its training? (validation split only)

For each panel data set (bench/panel.py) and seed, on the validation split (the test split is
not looked at):
- TF-IDF character + word n-grams with LinearSVC (word_defaults.svm_val), the reference;
- `ngram` with its defaults, trained by `toolkit.run` (its validation accuracy at the kept epoch);
- LinearSVC on `ngram`'s own features: the same hashed, pooled rows the trained model reads
  (the numpy runtime's `pooling_matrix`), at a few C; the features are the model's, only the
  solver differs (liblinear's exact optimum of an L2-regularised squared hinge, against Adam's
  epochs on the cross-entropy);
- the same features reweighted by IDF (scikit-learn's TfidfTransformer, sublinear tf) with LinearSVC.

    python bench/hashed_solvers.py --datasets first-names-gender,package-summaries --seeds 0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from panel import panel_params
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.metrics import accuracy_score
from sklearn.svm import LinearSVC
from train_bench import load, machine, markdown
from word_defaults import svm_val

import toolkit
from toolkit.api import plan_run
from toolkit.splits import split_dataset

DATASETS = "names,first-names-gender,words-language,manpages,ui-messages,package-summaries,ui-programs"


def hashed_rows(predictor: Any, texts: Sequence[str]) -> Any:
    """(texts, buckets) CSR matrix of the rows and pooling weights the run's linear `ngram` sums."""
    from scipy.sparse import csr_matrix

    arrays = predictor.scorer.model
    indices, lengths = predictor.encoder.encode_arrays(predictor.prepare(list(texts)))
    order = np.argsort(lengths, kind="stable")  # pooling_matrix reads texts of one length together
    data, ids, indptr = arrays.pooling_matrix(indices[order], lengths[order])
    matrix = csr_matrix((data, ids, indptr), shape=(len(lengths), arrays.buckets))
    return matrix[np.argsort(order)]


def one_seed(name: str, seed: int, costs: Sequence[float]) -> list[dict[str, Any]]:
    dataset, params = panel_params(name)
    plan = plan_run(dataset, "ngram", params=params, seed=seed)
    split = split_dataset(plan.dataset.load(**plan.params["dataset"]), seed=seed, **plan.params["split"])
    rows = []

    def row(system: str, accuracy: float, seconds: float) -> None:
        rows.append({"dataset": name, "seed": seed, "system": system, "val_accuracy": accuracy,
                     "fit_s": seconds})
        print(rows[-1], flush=True)

    row("TF-IDF char_wb 1-5 + word 1-2, LinearSVC(C=0.5)", *svm_val(dataset, params, seed))
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset=dataset, model="ngram", params=params, seed=seed, progress=False,
                             output=Path(scratch) / "run")
        history = result.history
        kept = float(history.loc[history["epoch"] == result.best_epoch, "val_acc"].iloc[0])
        row("ngram (defaults, Adam)", kept, result.train_seconds)
        predictor = toolkit.load_run(result.run_dir)
        train, val = hashed_rows(predictor, split.train.texts), hashed_rows(predictor, split.val.texts)
    targets, wanted = np.asarray(split.train.targets), np.asarray(split.val.targets)
    idf = TfidfTransformer(sublinear_tf=True).fit(train)
    variants = {"ngram's features": (train, val),
                "ngram's features x IDF": (idf.transform(train), idf.transform(val))}
    for label, (fit_rows, val_rows) in variants.items():
        for cost in costs:
            started = time.perf_counter()
            classifier = LinearSVC(C=cost, random_state=seed).fit(fit_rows, targets)
            row(f"{label}, LinearSVC(C={cost})", accuracy_score(wanted, classifier.predict(val_rows)),
                time.perf_counter() - started)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--costs", type=float, nargs="+", default=[0.5, 1.0, 3.0])
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\nBefore: {load()}")
    rows = [row for name in args.datasets.split(",") for seed in args.seeds
            for row in one_seed(name, seed, args.costs)]
    runs = pd.DataFrame(rows)
    table = runs.groupby(["dataset", "system"], sort=False)[["val_accuracy", "fit_s"]].median().reset_index()
    wide = table.pivot(index="system", columns="dataset", values="val_accuracy")
    wide = wide.loc[table["system"].unique(), [d for d in args.datasets.split(",") if d in wide.columns]]
    print(f"After: {load()}\n\nMedian validation accuracy over seeds {args.seeds}:\n")
    print(markdown(wide.reset_index(), {column: ".4f" for column in wide.columns}))


if __name__ == "__main__":
    main()
