"""Multi-label classification (issue 27): reading label sets, splitting them, training on them,
scoring them and predicting them; and single-label runs left as they were."""

from __future__ import annotations

import pytest

import toolkit
from toolkit.dataset_kit import MERGED
from toolkit.datasets import csv_file, folder, names
from toolkit.describe import frequent_label_pairs, label_cardinality

TAGS = (
    "text,tags\n"
    '"red, hot","warm|colour"\n'
    "ice,cold||cold\n"
    "empty,\n"
    "lava,warm|\n"
    "ice,white\n"
    '"a|b",colour\n'
)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def sets_by_text(data: toolkit.TextDataset) -> dict[str, set[str]]:
    return {text: set(labels) for text, labels in zip(data.texts, data.label_names(), strict=True)}


def test_csv_label_sets_quotes_empty_and_repeated_labels(tmp_path):
    path = write(tmp_path / "tags.csv", TAGS)
    data = csv_file.load(path=str(path), label_column="tags", label_delimiter="|")
    assert data.multi_label and data.classes == ("cold", "colour", "warm", "white")
    # the comma inside quotes is the text's; the pipe inside a quoted text is not a label delimiter
    assert sets_by_text(data) == {
        "red, hot": {"warm", "colour"}, "ice": {"cold", "white"}, "lava": {"warm"}, "a|b": {"colour"},
    }
    assert data.provenance["dropped"] == {
        "empty label in a label set": 2, "repeated label in a label set": 1, "empty label": 1, MERGED: 1,
    }
    assert data.provenance["counts"] == {"cold": 1, "colour": 2, "warm": 2, "white": 1}
    assert data.targets == tuple(labels[0] for labels in data.label_sets)


def test_csv_without_label_delimiter_stays_single_label(tmp_path):
    path = write(tmp_path / "tags.csv", TAGS)
    data = csv_file.load(path=str(path), label_column="tags")
    assert not data.multi_label and data.label_sets is None
    assert "warm|colour" in data.classes and len(data) == 5


def test_empty_label_delimiter_is_refused_in_one_line(cli, tmp_path):
    path = write(tmp_path / "tags.csv", TAGS)
    result = cli(["datasets", "show", "csv", "-p", f"path={path}", "-p", "label_column=tags",
                  "-p", "label_delimiter="])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "empty dataset.label_delimiter" in result.stderr
    assert "Traceback" not in result.output


def test_folder_reads_a_text_in_several_files_as_one_text(tmp_path):
    write(tmp_path / "Scottish.txt", "Mackay\nBrodie\nMackay\n")
    write(tmp_path / "Irish.txt", "Brodie\nKeane\n")
    single = folder.load(data_dir=str(tmp_path))
    multi = folder.load(data_dir=str(tmp_path), labels="multi")
    assert not single.multi_label and len(single) == 5
    assert multi.multi_label and sets_by_text(multi) == {
        "Brodie": {"Irish", "Scottish"}, "Keane": {"Irish"}, "Mackay": {"Scottish"},
    }
    assert multi.provenance["dropped"] == {MERGED: 2} and multi.provenance["shared_texts"] == 1


def test_names_multi_has_480_texts_under_several_languages():
    single = names.load()
    multi = names.load(labels="multi")
    assert not single.multi_label and multi.multi_label
    assert len(multi) == len(set(single.texts))
    assert sum(len(labels) > 1 for labels in multi.label_sets) == 480
    assert multi.provenance["shared_texts"] == 480 == single.provenance["shared_texts"]
    assert label_cardinality(multi) == pytest.approx(label_cardinality(single))
    top = frequent_label_pairs(multi).iloc[0]
    assert (top["first"], top["second"], top["texts"]) == ("English", "Scottish", 99)


def test_datasets_show_prints_cardinality_and_pairs(cli):
    result = cli(["datasets", "show", "names", "-p", "labels=multi"])
    assert result.exit_code == 0, result.output
    assert "label cardinality: 1.033 classes per distinct text (multi-label)" in result.stdout
    assert "most frequent label pairs (texts): English+Scottish 99, English+Irish 62," in result.stdout


def tagged_words(count: int = 600, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Texts of words, each label with its own words: a text has one to three labels and one
    word of each of them, plus a word no label owns, in a random order."""
    import random

    words = {
        "sport": ["goal", "match", "team", "score"], "music": ["song", "band", "guitar", "chord"],
        "food": ["bread", "cheese", "soup", "salad"], "travel": ["train", "hotel", "beach", "map"],
        "tech": ["code", "chip", "laptop", "server"],
    }
    filler = ["the", "a", "today", "very", "new", "old"]
    rng = random.Random(seed)
    texts, sets = [], []
    for _ in range(count):
        labels = rng.sample(sorted(words), rng.choice([1, 1, 2, 2, 3]))
        tokens = [rng.choice(words[label]) for label in labels] + [rng.choice(filler)]
        rng.shuffle(tokens)
        texts.append(" ".join(tokens))
        sets.append(labels)
    return texts, sets


def test_splits_keep_identical_texts_together():
    texts, sets = tagged_words(400)
    # the same text again under another label set: a copy a multi-label file may hold
    data = toolkit.TextDataset.from_label_sets(texts + texts[:60], sets + [["tech"]] * 60)
    for strategy in ("leakage-free",):
        split = toolkit.split_dataset(data, strategy=strategy, seed=3)
        parts = [set(split.train.texts), set(split.val.texts), set(split.test.texts)]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert sum(len(p) for p in (split.train, split.val, split.test)) == len(data)
        assert split.train.multi_label and split.test.multi_label


@pytest.mark.parametrize("strategy", ["leakage-free", "stratified"])
def test_stratification_keeps_every_label_in_train_and_shares(strategy):
    texts, sets = tagged_words(600)
    # two rare labels: one text each, which a split could otherwise leave out of training
    data = toolkit.TextDataset.from_label_sets(
        [*texts, "rare one", "rare two"], [*sets, ["sport", "zz-rare"], ["yy-once"]]
    )
    for seed in range(5):
        split = toolkit.split_dataset(data, strategy=strategy, seed=seed, test_size=0.5)
        present = {i for labels in split.train.label_sets for i in labels}
        assert present == set(range(len(data.classes)))
    split = toolkit.split_dataset(data, strategy=strategy, seed=0)
    for label in range(5):  # the test part holds about test_size of every common label's texts
        held = sum(label in labels for labels in split.test.label_sets)
        assert held / sum(label in labels for labels in data.label_sets) == pytest.approx(0.15, abs=0.03)
    again = toolkit.split_dataset(data, strategy=strategy, seed=0)
    assert again.test.texts == split.test.texts  # the same seed, the same split
