"""What a dataset holds, per class: the numbers behind `toolkit datasets show`."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import pandas as pd

from toolkit.types import TextDataset


def describe_dataset(data: TextDataset) -> pd.DataFrame:
    """Per class: `lines`, `distinct` texts, and `shared`: distinct texts that also occur
    under another class. A last row `(all)` gives the totals over the whole dataset (its
    `shared` counts each such text once). A multi-label text counts under each of its classes."""
    texts, codes = _text_class_rows(data)
    frame = pd.DataFrame({
        "text": texts,
        "class": pd.Categorical.from_codes(codes, categories=list(data.classes)),
    })
    classes_per_text = frame.groupby("text")["class"].nunique()
    pairs = frame.drop_duplicates()
    pairs = pairs.assign(shared=pairs["text"].map(classes_per_text) > 1)
    table = pd.DataFrame({
        "lines": frame.groupby("class", observed=False).size(),
        "distinct": pairs.groupby("class", observed=False).size(),
        "shared": pairs.groupby("class", observed=False)["shared"].sum(),
    })
    table.index = table.index.astype(str)
    table.loc["(all)"] = [len(data), len(classes_per_text), int((classes_per_text > 1).sum())]
    table.index.name = "class"
    return table.astype(int)


def _text_class_rows(data: TextDataset) -> tuple[list[str], list[int]]:
    """One (text, class index) row per label of every text."""
    if data.label_sets is None:
        return list(data.texts), list(data.targets)
    rows = [(text, c) for text, labels in zip(data.texts, data.label_sets, strict=True) for c in labels]
    return [text for text, _ in rows], [c for _, c in rows]


def label_sets_of_texts(data: TextDataset) -> dict[str, frozenset[str]]:
    """Every distinct text's set of classes: its label set, or, in single-label data, the
    classes it occurs under."""
    sets: dict[str, set[str]] = {}
    for text, labels in zip(data.texts, data.label_names(), strict=True):
        sets.setdefault(text, set()).update(labels)
    return {text: frozenset(labels) for text, labels in sets.items()}


def label_cardinality(data: TextDataset) -> float:
    """The mean number of classes per distinct text (1.0 when no text has two)."""
    sets = label_sets_of_texts(data)
    return sum(len(labels) for labels in sets.values()) / len(sets)


def frequent_label_pairs(data: TextDataset, top: int = 10) -> pd.DataFrame:
    """The `top` pairs of classes found together on the most distinct texts: columns first,
    second, texts (most first, then by name)."""
    counts: Counter[tuple[str, str]] = Counter(
        pair for labels in label_sets_of_texts(data).values() for pair in combinations(sorted(labels), 2)
    )
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return pd.DataFrame([(a, b, n) for (a, b), n in rows], columns=["first", "second", "texts"])
