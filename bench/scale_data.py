"""Linearity of the data path on millions of texts: load, split, encode, batch.

For each `n` (words per language, over all 42 languages of wordfreq, whose lists run out at
different lengths), a fresh process loads `words-language`, splits it (leakage-free), fits
the `onehot` encoder (alphabet=auto), encodes the training part as the trainer keeps it
(`toolkit.encoded.encode_compact`: indices in the smallest integer type) and draws one
epoch's mini-batches; it reports the seconds of each stage, the resident memory after each
and the process's peak. The same process also times the encoder of toolkit 0.1.0 (a Python
list per text and an int64 matrix) on the same texts, as the "before". Usage:

    python bench/scale_data.py                                  # n = 12500 25000 50000 100000
    python bench/scale_data.py --sizes 1000 2000 --languages en,de,fr
    python bench/scale_data.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_common import publish  # noqa: E402
from train_bench import load, machine, markdown  # noqa: E402

SECTION = "## Data path at scale"
DEFAULT_SIZES = (12_500, 25_000, 50_000, 100_000)
ALL_LANGUAGES = "all"


def rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def old_encode(encoder: Any, texts: Sequence[str]) -> Any:
    """toolkit 0.1.0's onehot encode: a list of Python ints per text, an int64 matrix."""
    import torch

    rows = [[encoder._index.get(char, 1) for char in text] or [1] for text in texts]
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
    longest = int(lengths.max()) if rows else 0
    indices = torch.full((len(rows), longest), 0, dtype=torch.long)
    filled = torch.arange(longest) < lengths.unsqueeze(1)
    indices[filled] = torch.tensor([code for row in rows for code in row], dtype=torch.long)
    return indices, lengths


def one_size(n: int, languages: str) -> dict[str, Any]:
    """Measure every stage for one `n` in this process (run in a fresh one per size)."""
    import numpy as np
    import wordfreq

    from toolkit.datasets.words import load as load_words
    from toolkit.encoded import encode_compact
    from toolkit.plugins.onehot import OneHotEncoder
    from toolkit.splits import split_dataset
    from toolkit.train_config import TrainConfig
    from toolkit.training import _epoch_batches

    every = ",".join(sorted(wordfreq.available_languages("best")))
    codes = every if languages == ALL_LANGUAGES else languages
    row: dict[str, Any] = {"n": n, "start_mib": rss_mib()}
    started = time.perf_counter()
    data = load_words(languages=codes, n=n)
    row |= {"texts": len(data), "load_s": time.perf_counter() - started, "load_mib": rss_mib()}
    started = time.perf_counter()
    split = split_dataset(data, seed=0)
    row |= {"train": len(split.train), "split_s": time.perf_counter() - started, "split_mib": rss_mib()}
    encoder = OneHotEncoder("auto")
    started = time.perf_counter()
    encoder.fit(split.train.texts)
    indices, lengths = encode_compact(encoder, split.train.texts)
    row |= {"encode_s": time.perf_counter() - started, "encode_mib": rss_mib(),
            "matrix": f"{tuple(indices.shape)} {str(indices.dtype).removeprefix('torch.')}",
            "matrix_mib": indices.numel() * indices.element_size() / 2**20}
    started = time.perf_counter()
    batches = _epoch_batches(split.train, lengths.numpy(), len(split.train), TrainConfig(),
                             np.random.default_rng(0))
    row |= {"batch_s": time.perf_counter() - started, "batches": len(batches)}
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the old encoder
    del indices, batches
    before = rss_mib()
    started = time.perf_counter()
    old = old_encode(encoder, split.train.texts)
    row |= {"old_encode_s": time.perf_counter() - started, "old_encode_added_mib": rss_mib() - before,
            "old_matrix_mib": old[0].numel() * 8 / 2**20}
    return row


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--languages", default=ALL_LANGUAGES, help="Comma-separated codes, or all.")
    parser.add_argument("--write", type=Path, metavar="FILE")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.languages)))
        return
    print(f"Machine: {machine()}\nBefore: {load()}", flush=True)
    rows = []
    for n in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--languages", args.languages],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    after = load()
    frame = pd.DataFrame(rows)
    frame["encode_us_per_text"] = frame["encode_s"] / frame["train"] * 1e6
    frame["old_encode_us_per_text"] = frame["old_encode_s"] / frame["train"] * 1e6
    frame["load_split_us_per_text"] = (frame["load_s"] + frame["split_s"]) / frame["texts"] * 1e6
    # Memory per text added since the smallest size: flat when memory grows linearly.
    first = frame.iloc[0]
    frame["added_bytes_per_text"] = ((frame["peak_mib"] - first["peak_mib"]) * 2**20
                                     / (frame["texts"] - first["texts"]).where(frame.index > 0))
    shown = frame[["n", "texts", "train", "load_s", "split_s", "encode_s", "batch_s", "matrix",
                   "matrix_mib", "peak_mib", "added_bytes_per_text", "load_split_us_per_text",
                   "encode_us_per_text", "old_encode_s", "old_matrix_mib", "old_encode_added_mib"]]
    table = markdown(shown, {
        "n": ",.0f", "texts": ",.0f", "train": ",.0f", "load_s": ".1f", "split_s": ".1f", "encode_s": ".2f",
        "batch_s": ".2f", "matrix_mib": ".0f", "peak_mib": ".0f", "added_bytes_per_text": ",.0f",
        "load_split_us_per_text": ".1f", "encode_us_per_text": ".2f", "old_encode_s": ".2f",
        "old_matrix_mib": ".0f", "old_encode_added_mib": ".0f",
    })
    shown_args = " ".join(sys.argv[1:] if argv is None else argv)
    text = (
        f"{SECTION} (`words-language`, millions of texts)\n\n"
        f"`python bench/scale_data.py {shown_args}`".replace(" `", "`") + f" on {machine()}; {after}.\n\n"
        f"Languages: {args.languages} (wordfreq's lists; `n` words each at most, fewer where a list "
        "runs out). Each size runs in a fresh process: load (`words-language`, letters only), "
        "leakage-free split, fit and encode the training part as the trainer keeps it "
        "(`encode_compact`), draw one epoch's bucketed batches. `peak_mib` is the process's maximum "
        "resident set over these stages (Python, torch and wordfreq's decoded lists included: "
        f"{frame['start_mib'].median():.0f} MiB before loading); `added_bytes_per_text` is the "
        "peak's growth per text beyond the smallest size. Per-text columns stay flat as `n` "
        "grows when a stage is linear. `old_*` is toolkit 0.1.0's encoder (a Python list per "
        "text, an int64 matrix) on the same texts, timed in the same process after the others.\n\n"
        f"{table}\n"
    )
    publish(text, SECTION, args.write)


if __name__ == "__main__":
    main()
