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
    with pytest.raises(toolkit.ToolkitError, match="test_size must be between 0 and 1"):
        split_dataset(tiny, test_size=1.5)
    with pytest.raises(toolkit.ToolkitError, match="unknown split strategy 'random'"):
        split_dataset(tiny, "random")
    two_one = toolkit.TextDataset.from_pairs(["a", "b", "c"], ["x", "x", "y"])
    with pytest.raises(toolkit.ToolkitError, match="stratified split failed"):
        split_dataset(two_one, "stratified", test_size=0.5)
