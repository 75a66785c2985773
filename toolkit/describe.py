"""What a dataset holds, per class: the numbers behind `toolkit datasets show`."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from toolkit.types import TextDataset


def describe_dataset(data: TextDataset) -> pd.DataFrame:
    """Per class: lines, distinct texts, and distinct texts that also occur under another
    class; a last row `(all)` gives the totals over the whole dataset."""
    classes_of: dict[str, set[int]] = defaultdict(set)
    for text, target in zip(data.texts, data.targets, strict=True):
        classes_of[text].add(target)
    rows = []
    for index, name in enumerate(data.classes):
        texts = [t for t, c in zip(data.texts, data.targets, strict=True) if c == index]
        distinct = set(texts)
        shared = sum(1 for t in distinct if len(classes_of[t]) > 1)
        rows.append({"class": name, "lines": len(texts), "distinct": len(distinct), "shared": shared})
    rows.append({
        "class": "(all)",
        "lines": len(data),
        "distinct": len(classes_of),
        "shared": sum(1 for labels in classes_of.values() if len(labels) > 1),
    })
    return pd.DataFrame(rows).set_index("class")
