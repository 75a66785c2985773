"""fastText settings for bench/accuracy.py, chosen by validation accuracy on the names data.

Trains fastText supervised (character n-grams 1-5, one thread) with a few learning rates,
epochs and sizes on the training part of seed 0's split and prints each setting's
validation accuracy. Usage: python bench/fasttext_settings.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from accuracy import the_split

SETTINGS = (
    {"lr": 0.5, "epoch": 25, "dim": 50},
    {"lr": 0.1, "epoch": 50, "dim": 50},
    {"lr": 1.0, "epoch": 50, "dim": 100},
    {"lr": 0.2, "epoch": 100, "dim": 50},
    {"lr": 0.5, "epoch": 25, "dim": 50, "bucket": 200_000},
)


def main() -> None:
    import fasttext

    split = the_split("names", {}, 0)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "train.txt"
        pairs = zip(split.train.texts, split.train.targets, strict=True)
        path.write_text("".join(f"__label__{t} {x.replace(' ', '_')}\n" for x, t in pairs), encoding="utf-8")
        print("| setting | validation accuracy | seconds |\n| --- | --- | --- |")
        for setting in SETTINGS:
            started = time.perf_counter()
            model = fasttext.train_supervised(str(path), minn=1, maxn=5, minCount=1, thread=1, seed=0,
                                              verbose=0, **setting)
            seconds = time.perf_counter() - started
            labels, _ = model.predict([x.replace(" ", "_") for x in split.val.texts], k=1)
            predicted = [int(found[0].removeprefix("__label__")) for found in labels]
            accuracy = sum(p == t for p, t in zip(predicted, split.val.targets, strict=True)) / len(predicted)
            print(f"| {setting} | {accuracy:.4f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
