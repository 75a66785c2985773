"""Splits on the real names data: sizes, reproducibility, and the leakage-free guarantee."""

from __future__ import annotations

from collections import Counter

import pytest

import toolkit
from toolkit.datasets import names
from toolkit.splits import split_dataset


@pytest.fixture(scope="module")
def data(names_dir):
    return names.load(data_dir=str(names_dir), normalization="raw")


def test_leakage_free_split_never_shows_a_test_text_in_training(data):
    split = split_dataset(data, "leakage-free", seed=3)
    train = set(split.train.texts)
    assert not train & set(split.test.texts)
    assert not train & set(split.val.texts)
    assert not set(split.val.texts) & set(split.test.texts)
    for part in (split.train, split.val, split.test):  # duplicates collapsed within a class
        pairs = list(zip(part.texts, part.targets, strict=True))
        assert len(pairs) == len(set(pairs))


def test_leakage_free_sizes_on_real_data(data):
    split = split_dataset(data, "leakage-free", seed=0)
    distinct_pairs = len(set(zip(data.texts, data.targets, strict=True)))
    assert sum(split.sizes().values()) == distinct_pairs == 18015
    assert split.sizes()["test"] == pytest.approx(0.15 * distinct_pairs, rel=0.05)
    assert split.sizes()["val"] == pytest.approx(0.085 * distinct_pairs, rel=0.08)
    # Arabic collapses from 2000 lines to 108 distinct names across the three parts.
    arabic = data.classes.index("Arabic")
    per_part = [Counter(p.targets)[arabic] for p in (split.train, split.val, split.test)]
    assert sum(per_part) == 108
    assert all(count > 0 for count in per_part)
    every_class = set(range(len(data.classes)))
    assert set(split.test.targets) == every_class == set(split.train.targets)


@pytest.mark.parametrize("strategy", ["stratified", "tutorial"])
def test_other_strategies_keep_every_line(data, strategy):
    split = split_dataset(data, strategy, seed=0)
    assert sum(split.sizes().values()) == 20074
    test_share = Counter(split.test.targets)
    for target, count in Counter(data.targets).items():
        assert test_share[target] == pytest.approx(0.15 * count, abs=1.5)


def test_tutorial_split_is_per_class_85_15(data):
    split = split_dataset(data, "tutorial", test_size=0.15, val_size=0.1, seed=1)
    russian = data.classes.index("Russian")
    assert Counter(split.test.targets)[russian] == round(9408 * 0.15)


@pytest.mark.parametrize("strategy", ["leakage-free", "stratified", "tutorial"])
def test_same_seed_same_split_other_seed_other_split(data, strategy):
    first = split_dataset(data, strategy, seed=7)
    again = split_dataset(data, strategy, seed=7)
    other = split_dataset(data, strategy, seed=8)
    assert first.test.texts == again.test.texts and first.val.texts == again.val.texts
    assert first.test.texts != other.test.texts


def test_bad_split_parameters():
    tiny = toolkit.TextDataset.from_pairs(["a", "b", "c", "d"], ["x", "x", "y", "y"])
    with pytest.raises(toolkit.ToolkitError, match="'test_size' must be above 0 and below 1; got 1.5"):
        split_dataset(tiny, test_size=1.5)
    with pytest.raises(toolkit.ToolkitError, match="'strategy' must be one of leakage-free, stratified"):
        split_dataset(tiny, "random")
    two_one = toolkit.TextDataset.from_pairs(["a", "b", "c"], ["x", "x", "y"])
    with pytest.raises(toolkit.ToolkitError, match="stratified split failed"):
        split_dataset(two_one, "stratified", test_size=0.5)


def test_a_text_under_several_labels_never_straddles_parts(data):
    split = split_dataset(data, "leakage-free", seed=5)
    labels_of: dict[str, set[int]] = {}
    for text, target in zip(data.texts, data.targets, strict=True):
        labels_of.setdefault(text, set()).add(target)
    shared = {text for text, labels in labels_of.items() if len(labels) > 1}
    assert len(shared) == 465
    parts_of: dict[str, set[str]] = {}
    for part_name in ("train", "val", "test"):
        part = getattr(split, part_name)
        for text, target in zip(part.texts, part.targets, strict=True):
            if text in shared:
                parts_of.setdefault(text, set()).add(part_name)
                labels_of[text].discard(target)
    assert all(len(parts) == 1 for parts in parts_of.values())  # one part per text
    assert set(parts_of) == shared and not any(labels_of[t] for t in shared)  # every pair kept
    # They are spread over the parts, not all dumped into training.
    assert {"train", "val", "test"} == set().union(*parts_of.values())


def test_validation_part_is_carved_from_training(data):
    split = split_dataset(data, "tutorial", test_size=0.15, val_size=0.2, seed=0)
    sizes = split.sizes()
    assert sizes["test"] == sum(round(n * 0.15) for n in Counter(data.targets).values())
    assert sizes["val"] == pytest.approx(0.2 * (sizes["train"] + sizes["val"]), abs=18)


@pytest.mark.parametrize("strategy", ["leakage-free", "tutorial"])
def test_tiny_classes_stay_in_training_instead_of_crashing(strategy):
    texts = [f"big{i}" for i in range(40)] + ["solo", "pair1", "pair2"]
    labels = ["big"] * 40 + ["solo"] + ["pair"] * 2
    data = toolkit.TextDataset.from_pairs(texts, labels)
    split = split_dataset(data, strategy, seed=0)
    solo = data.classes.index("solo")
    assert solo in split.train.targets and solo not in split.test.targets
    assert sum(split.sizes().values()) == 43
