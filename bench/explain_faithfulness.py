"""Which character attributions are faithful: occlusion (what `toolkit explain` uses) against
integrated gradients on the embeddings, by a deletion test.

For each model (trained here on the names data, small and short) and up to `--texts` test
names of 4 or more characters, each method ranks the characters; the top k are deleted
(k = 1, 2, 3) and the probability of the class the model gave the whole name is read again. A
faithful method drops it fastest: the table gives the mean probability after deleting the top
k, and its mean over k (lower is more faithful); "random" deletes k characters at random
(the mean of 5 draws). Integrated gradients: 32 steps from a zero embedding, the gradient of
the class's log-probability with respect to the embeddings, summed over the embedding's
dimensions. Accuracy-like numbers only; the load average is printed beside them.

    python bench/explain_faithfulness.py --models gru,cnn --texts 200
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from train_bench import load, machine, markdown

import toolkit
from toolkit.explain import explain

STEPS = 32
KS = (1, 2, 3)


def integrated_gradients(predictor: toolkit.Predictor, text: str, target: int) -> list[float]:
    """Per character: (embedding - 0) * the mean gradient along the straight path from 0."""
    model = predictor.model
    embedding = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding))
    indices, lengths = predictor.encoder.encode([text] * STEPS)
    alphas = torch.linspace(1 / STEPS, 1, STEPS).view(-1, 1, 1)
    kept: dict[str, torch.Tensor] = {}

    def scale(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        scaled = (output.detach() * alphas).requires_grad_(True)
        kept["scaled"], kept["full"] = scaled, output.detach()[0]
        return scaled

    handle = embedding.register_forward_hook(scale)
    try:
        with torch.enable_grad():
            logits = model(indices, lengths)
            torch.log_softmax(logits, dim=1)[:, target].sum().backward()
    finally:
        handle.remove()
    attribution = (kept["full"] * kept["scaled"].grad.mean(dim=0)).sum(dim=1)
    return attribution[: len(text)].tolist()


def occlusion(predictor: toolkit.Predictor, text: str, target: int) -> list[float]:
    [found] = explain(predictor, [text], predictor.classes[target], flip=False)
    return [score for _, score in found.attributions]


def probability_after_deleting(
    predictor: toolkit.Predictor, text: str, target: int, order: Sequence[int]
) -> list[float]:
    texts = []
    for k in KS:
        gone = set(order[:k])
        texts.append("".join(c for i, c in enumerate(text) if i not in gone))
    return predictor._probabilities(texts)[:, target].tolist()


def measure(model: str, texts: int, seed: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset="names", model=model, seed=seed, progress=False,
                             params={"train.epochs": 4, "train.threads": 1}, output=Path(scratch) / "run")
        predictor = toolkit.load_run(result.run_dir)
    names = [t for t in result.split.test.texts if len(t) >= 4][:texts]
    rng = random.Random(seed)
    methods: dict[str, Callable[[str, int], list[float]]] = {
        "occlusion": lambda text, target: occlusion(predictor, text, target),
        "integrated gradients": lambda text, target: integrated_gradients(predictor, text, target),
    }
    drops: dict[str, list[list[float]]] = {name: [] for name in [*methods, "random"]}
    for text in names:
        target = int(np.argmax(predictor._probabilities([text])[0]))
        for name, method in methods.items():
            scores = method(text, target)
            order = sorted(range(len(text)), key=lambda i: -scores[i])
            drops[name].append(probability_after_deleting(predictor, text, target, order))
        draws = [probability_after_deleting(predictor, text, target, rng.sample(range(len(text)), len(text)))
                 for _ in range(5)]
        drops["random"].append(np.mean(draws, axis=0).tolist())
    rows = []
    for name, values in drops.items():
        means = np.mean(values, axis=0)
        rows.append({"model": model, "method": name, "texts": len(names),
                     **{f"p after top {k}": float(means[i]) for i, k in enumerate(KS)},
                     "mean": float(means.mean())})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gru,cnn", help="Models with an embedding, comma-separated.")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = [row for model in args.models.split(",") for row in measure(model, args.texts, args.seed)]
    frame = pd.DataFrame(rows)
    formats = {c: ".3f" for c in frame.columns if c.startswith("p after") or c == "mean"}
    print(f"`python bench/explain_faithfulness.py --models {args.models} --texts {args.texts} "
          f"--seed {args.seed}` ({machine()}; {load()})\n")
    print(markdown(frame, formats))


if __name__ == "__main__":
    main()
