"""What a dataset holds, per class: the numbers behind `toolkit datasets show`."""

from __future__ import annotations

import pandas as pd

from toolkit.types import TextDataset


def describe_dataset(data: TextDataset) -> pd.DataFrame:
    """Per class: `lines`, `distinct` texts, and `shared`: distinct texts that also occur
    under another class. A last row `(all)` gives the totals over the whole dataset (its
    `shared` counts each such text once)."""
    frame = pd.DataFrame({
        "text": data.texts,
        "class": pd.Categorical.from_codes(data.targets, categories=list(data.classes)),
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
    table.loc["(all)"] = [len(frame), len(classes_per_text), int((classes_per_text > 1).sum())]
    table.index.name = "class"
    return table.astype(int)
