"""The tutorial's exercises, each a `toolkit run` away: a short real run on each dataset beats
the majority-class baseline of its test split, and the run folder records where the data
came from."""

from __future__ import annotations

import csv
import random

import pytest
import wordfreq

import toolkit

SMALL_GRU = [
    "--model", "gru", "-p", "model.hidden_size=32", "-p", "model.embedding_dim=32",
    "-p", "train.threads=1",
]
SURNAME_LANGUAGES = ("Czech", "German", "Italian", "Japanese")


def write_surnames_csv(names_dir, path) -> None:
    """A CSV of real surnames, 250 per language, in columns of its own naming."""
    rng = random.Random(0)
    rows = []
    for language in SURNAME_LANGUAGES:
        lines = (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        names = sorted({name for name in lines if name})
        rows += [(name, language) for name in rng.sample(names, 250)]
    rng.shuffle(rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["surname", "language"])
        writer.writerows(rows)


def write_word_folder(folder) -> None:
    """<language>.txt files of each language's 600 most frequent words."""
    folder.mkdir()
    for language in ("en", "fi", "pl"):
        top = [w for w in wordfreq.top_n_list(language, 1000) if w.isalpha() and len(w) > 1][:600]
        (folder / f"{language}.txt").write_text("\n".join(top) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("dataset", "args", "source_has"), [
    ("first-names-gender", ["-p", "train.examples=6000"], "gender-guesser"),
    ("words-language",
     ["-p", "dataset.languages=en,de,fr,es", "-p", "dataset.n=1000", "-p", "train.epochs=3",
      "-p", "encoder.alphabet=auto"],
     "wordfreq"),
    ("csv",
     ["-p", "dataset.path={tmp}/surnames.csv", "-p", "text_column=surname", "-p", "label_column=language",
      "-p", "train.epochs=3"],
     "surnames.csv"),
    ("folder",
     ["-p", "dataset.data_dir={tmp}/words", "-p", "train.epochs=3", "-p", "encoder.alphabet=auto"],
     "words"),
])
def test_short_run_beats_the_majority_baseline(cli, names_dir, tmp_path, dataset, args, source_has):
    write_surnames_csv(names_dir, tmp_path / "surnames.csv")
    write_word_folder(tmp_path / "words")
    output = tmp_path / "run"
    command = ["run", "--dataset", dataset, *SMALL_GRU, *(a.format(tmp=tmp_path) for a in args),
               "--output", str(output)]
    result = cli(command)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout

    record = toolkit.read_run(output)
    test_sizes = record.report.confusion.sum(axis=1)  # rows are the true classes
    baseline = test_sizes.max() / test_sizes.sum()
    accuracy = record.report.summary.loc["accuracy", "value"]
    assert accuracy > baseline + 0.1, (accuracy, baseline)

    provenance = record.config["provenance"]
    assert source_has in provenance["source"]
    assert provenance["sha256"] and all(len(digest) == 64 for digest in provenance["sha256"].values())
    assert sum(provenance["counts"].values()) == provenance["total"] > 500
    assert "loaded_at" in provenance and "dropped" in provenance
