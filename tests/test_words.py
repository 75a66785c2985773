"""`words-language` on the word lists of the installed wordfreq package."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import pytest
import wordfreq
from conftest import labels_by_text

import toolkit
from toolkit.datasets import words


@pytest.fixture(scope="module")
def default() -> toolkit.TextDataset:
    return words.load()


def test_default_languages_with_known_words(default):
    assert default.classes == ("de", "en", "es", "fr", "it", "nl", "pl", "pt")
    assert set(default.provenance["counts"].values()) == {5000}
    found = labels_by_text(default)
    assert found["however"] == {"en"} and found["und"] == {"de"} and found["się"] == {"pl"}
    assert found["também"] == {"pt"} and found["también"] == {"es"} and found["perché"] == {"it"}
    assert found["aujourd'hui"] == {"fr"}  # an apostrophe between letters is kept
    # Shared words stay under each language: web text borrows English everywhere.
    assert found["de"] == found["the"] == set(default.classes)
    assert all(len(text) >= 2 and words.is_word(text) for text in default.texts)


def test_shared_words_are_counted_and_the_split_keeps_them_apart(default):
    found = labels_by_text(default)
    shared = {text for text, languages in found.items() if len(languages) > 1}
    assert default.provenance["shared_texts"] == len(shared)
    assert 1_000 < len(shared) < 8_000
    split = toolkit.split_dataset(default, seed=0)
    assert not set(split.test.texts) & set(split.train.texts)


def test_provenance_names_the_files_read(default):
    info = default.provenance
    assert info["package"] == {"name": "wordfreq", "version": importlib.metadata.version("wordfreq")}
    for language, path in info["files"].items():
        assert path == wordfreq.available_languages()[language]
        assert info["sha256"][Path(path).name] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert info["options"]["languages"] == ["en", "de", "fr", "es", "it", "nl", "pt", "pl"]
    assert info["dropped"] == {} and info["normalization"] == "raw"


def test_words_follow_wordfreq_order_and_filters():
    data = words.load(languages="en,fr", n=50)
    english = [t for t, label in zip(data.texts, data.labels(), strict=True) if label == "en"]
    listed = [w for w in wordfreq.top_n_list("en", 200) if len(w) >= 2 and words.is_word(w)]
    assert english == listed[:50]
    everything = labels_by_text(words.load(languages="en,fr", n=300, min_length=1, letters_only=False))
    assert {"a", "1", "don't"} <= set(everything) and everything["i"] == {"en"}


def test_other_scripts_keep_their_marks():
    data = words.load(languages="hi,ru,ja", n=200)
    found = labels_by_text(data)
    assert found["नहीं"] == {"hi"} and found["что"] == {"ru"}
    assert data.provenance["counts"] == {"hi": 200, "ja": 200, "ru": 200}


def test_transliteration_merges_and_counts_duplicates():
    data = words.load(languages="de,pl", n=2000, normalization="unidecode")
    assert all(text.isascii() for text in data.texts)
    dropped = data.provenance["dropped"]["same word again after normalization"]
    assert dropped > 10
    assert sum(data.provenance["counts"].values()) == 4000 - dropped
    latin_only = words.load(languages="en,de,ru", n=100, normalization="ascii")
    assert latin_only.classes == ("de", "en")  # Cyrillic has no ASCII letters left
    assert latin_only.provenance["dropped"]["empty after normalization"] == 100


@pytest.mark.parametrize(("languages", "message"), [
    ("en,fill", "wordfreq has no word list for language 'fill'. Did you mean 'fil'? Available: ar, bg,"),
    ("en,xx", "wordfreq has no word list for language 'xx'. Available: ar, bg, bn,"),
    ("en", "dataset 'words-language' needs at least two languages to tell apart; got only 'en'"),
    (" , ", "dataset 'words-language' got no languages; pass e.g. --param dataset.languages=en,de,fr"),
])
def test_bad_languages_are_one_clear_line(cli, languages, message):
    result = cli(["datasets", "show", "words-language", "-p", f"languages={languages}"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1


def test_language_codes_are_case_insensitive_and_n_is_checked():
    assert words.load(languages="EN, De", n=10).classes == ("de", "en")
    with pytest.raises(toolkit.ToolkitError, match="parameter 'n' must be at least 1; got 0"):
        words.load(n=0)


def test_listed_and_shown_on_the_cli(cli):
    assert "words-language: Words to their language" in cli(["datasets"]).stdout
    result = cli(["datasets", "show", "words-language", "-p", "languages=en,de", "-p", "n=300"])
    assert result.exit_code == 0, result.output
    rows = {row.split()[0]: row.split()[1:] for row in result.stdout.splitlines() if row.strip()}
    assert rows["de"][0] == "300" and rows["en"][0] == "300"
    assert int(rows["(all)"][2]) > 0  # words both languages use
    assert "wordfreq" in result.stdout
