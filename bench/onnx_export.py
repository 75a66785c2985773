"""ONNX export of every built-in model: onnxruntime against torch, and int8 quantization.

For each model it trains a run on the names data (`toolkit.run`, seed 0), exports it as
`toolkit export` does (`toolkit.export.onnx_graph`, then `quantized_int8`), and on the run's whole
test split measures: how many texts get the same top class from onnxruntime as from torch, the
largest difference of a log-probability, the float and int8 file sizes, and the test accuracy of
torch, of the float graph and of the int8 graph. The issue's targets: the same top class on every
test text, int8 within 0.5 point of the float accuracy, the int8 file at most a third of the float
one. The table goes between the `<!-- onnx:begin -->` markers of docs/benchmarks.md.

    python bench/onnx_export.py                                   # every model, its own defaults
    python bench/onnx_export.py --models ngram,cnn --params train.epochs=1 --no-write
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scale_common import write_between_markers
from train_bench import load, machine, markdown

import toolkit
from toolkit.export import onnx_graph, quantized_int8
from toolkit.inference import predict_proba
from toolkit.onnx_runtime import OnnxScorer
from toolkit.params import parse_assignments

MODELS = ("ngram", "scratch-rnn", "scratch-gru", "gru", "lstm", "rnn", "cnn", "ensemble")
PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
#: The issue's targets.
MOST_POINTS_LOST, LARGEST_RATIO = 0.5, 1 / 3


def measure(model: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """One model's run, exported and compared on its test split."""
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset="names", model=model, params={"train.threads": 1, **params}, seed=seed,
                             progress=False, output=Path(scratch) / "run")
        predictor = toolkit.load_run(result.run_dir)
    texts, targets = list(result.split.test.texts), result.test_targets
    graph = onnx_graph(predictor.model, predictor.encoder, model)
    int8 = quantized_int8(graph)
    by_torch = predict_proba(predictor.model, predictor.encoder, texts, "cpu")
    by_float = OnnxScorer(graph).predict_proba(predictor.encoder, texts)
    by_int8 = OnnxScorer(int8).predict_proba(predictor.encoder, texts)
    same = int((by_float.argmax(1) == by_torch.argmax(1)).sum())
    accuracy = {name: float((p.argmax(1) == targets).mean())
                for name, p in (("torch", by_torch), ("float", by_float), ("int8", by_int8))}
    delta = (accuracy["int8"] - accuracy["float"]) * 100
    ratio = len(int8) / len(graph)
    return {
        "model": model,
        "test texts": len(texts),
        "same top class as torch": f"{same:,} / {len(texts):,}",
        "largest log-prob gap": float(np.abs(np.log(by_float) - np.log(by_torch)).max()),
        "float MB": len(graph) / 1e6,
        "int8 MB": len(int8) / 1e6,
        "int8 / float": ratio,
        "accuracy: torch": accuracy["torch"],
        "float graph": accuracy["float"],
        "int8 graph": accuracy["int8"],
        "int8 points": delta,
        "targets": ", ".join([
            "top class " + ("met" if same == len(texts) else "**missed**"),
            "accuracy " + ("met" if delta >= -MOST_POINTS_LOST else "**missed**"),
            "size " + ("met" if ratio <= LARGEST_RATIO else "**missed**"),
        ]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated model names.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", nargs="*", default=[], help="GROUP.NAME=VALUE for every run.")
    parser.add_argument("--no-write", action="store_true", help="Print the table only.")
    args = parser.parse_args(argv)
    params = parse_assignments(args.params)
    before = load()
    rows = []
    for model in args.models.split(","):
        rows.append(measure(model, params, args.seed))
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    formats = {"largest log-prob gap": ".1e", "float MB": ".3f", "int8 MB": ".3f", "int8 / float": ".2f",
               "accuracy: torch": ".4f", "float graph": ".4f", "int8 graph": ".4f", "int8 points": "+.2f"}
    command = " ".join(["python bench/onnx_export.py", *(argv if argv is not None else sys.argv[1:])])
    text = "\n".join([
        f"`{command}` on {machine()}; {before} before, {load()} after.",
        "",
        "Seed 0, the names data, every model with its defaults unless the command says otherwise. The "
        "accuracies are on the run's whole test split; `int8 points` is the int8 graph's accuracy minus "
        "the float graph's. Targets: the same top class as torch on every test text, int8 within "
        f"{MOST_POINTS_LOST} point, the int8 file at most a third of the float one.",
        "",
        markdown(frame, formats),
    ])
    print("\n" + text)
    if not args.no_write:
        write_between_markers(PAGE, "onnx", text)
        print(f"Wrote the table to {PAGE}")


if __name__ == "__main__":
    main()
