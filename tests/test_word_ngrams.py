"""`ngram`'s word n-grams: what a word is, the same ids in every process, padding ignored, the
`auto` setting, the plugin contract, and a data set that only word features can learn."""

from __future__ import annotations

import csv
import itertools
import json
import random
import subprocess
import sys

import pytest
import torch

import toolkit
import toolkit.testing
from toolkit import PAD, TUTORIAL_ALPHABET
from toolkit.plugins.ngram import build_ngram
from toolkit.plugins.ngram_model import HASH_BASE, HASH_MODULUS, WORD_SALT
from toolkit.plugins.onehot import OneHotEncoder


def encoder_for(texts: list[str]) -> OneHotEncoder:
    encoder = OneHotEncoder("auto")
    encoder.fit(texts)
    return encoder


def word_hash(word: str, encoder: OneHotEncoder) -> int:
    """The hash the model gives one word, written out in plain Python from its definition."""
    index = dict(zip(encoder.symbols, range(encoder.vocab_size), strict=True))
    total = 0
    for offset, char in enumerate(word.lower()):
        total += (index[char] + 1) * pow(HASH_BASE, offset, HASH_MODULUS)
    return total % HASH_MODULUS


def expected_unigrams(words: list[str], encoder: OneHotEncoder, buckets: int) -> list[int]:
    return [((WORD_SALT + 1) * HASH_BASE + word_hash(w, encoder)) % HASH_MODULUS % (buckets - 1) + 1
            for w in words]


HARD_CASES = {
    "The C++ compiler": ["the", "c++", "compiler"],
    "C# and AT&T don't": ["c#", "and", "at&t", "don't"],
    "state-of-the-art, 3.5 e-mail!": ["state", "of", "the", "art", "3", "5", "e", "mail"],
    "東京タワー is tall": ["東", "京", "タ", "ワ", "ー", "is", "tall"],
    "  spaced\tout  ": ["spaced", "out"],
    "Hinton": ["hinton"],
    "...": [],
}


@pytest.mark.parametrize(("text", "words"), HARD_CASES.items())
def test_words_are_tokenised_as_documented(text, words):
    encoder = encoder_for(list(HARD_CASES))
    buckets = 2**20
    model = build_ngram(encoder.vocab_size, 3, encoder=encoder, word_ngrams="1", buckets=buckets)
    ids = model.word_ids(*encoder.encode([text]))[0]
    assert [i for i in ids.tolist() if i != PAD] == expected_unigrams(words, encoder, buckets)


def test_word_bigrams_follow_the_unigrams_and_padding_adds_nothing():
    texts = ["red green blue", "red", "green blue red yellow"]
    encoder = encoder_for(texts)
    model = build_ngram(encoder.vocab_size, 3, encoder=encoder, word_ngrams="2", buckets=2**20)
    alone = [model.word_ids(*encoder.encode([t]))[0] for t in texts]
    batch = model.word_ids(*encoder.encode(texts))
    counts = [3 + 2, 1 + 0, 4 + 3]  # unigrams + bigrams
    assert [(row != PAD).sum().item() for row in batch] == counts
    for row, single in zip(batch, alone, strict=True):
        assert sorted(i for i in row.tolist() if i != PAD) == sorted(i for i in single.tolist() if i != PAD)
    assert len(set(batch[0].tolist()) - {PAD}) == 5  # "red green" and "green blue" differ from the words


def test_word_ids_are_the_same_in_another_process():
    texts = list(HARD_CASES)
    encoder = encoder_for(texts)
    model = build_ngram(encoder.vocab_size, 3, encoder=encoder, word_ngrams="2")
    here = model.ngram_ids(*encoder.encode(texts)).tolist()
    script = (
        "import json, sys\n"
        "from toolkit.plugins.ngram import build_ngram\n"
        "from toolkit.plugins.onehot import OneHotEncoder\n"
        "texts = json.loads(sys.argv[1])\n"
        "encoder = OneHotEncoder('auto'); encoder.fit(texts)\n"
        "model = build_ngram(encoder.vocab_size, 3, encoder=encoder, word_ngrams='2')\n"
        "print(json.dumps(model.ngram_ids(*encoder.encode(texts)).tolist()))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", script, json.dumps(texts)], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"} | {
            k: v for k, v in __import__("os").environ.items() if k in ("PYTHONPATH", "HOME", "VIRTUAL_ENV")
        },
    )
    assert json.loads(there.stdout) == here


def test_auto_turns_words_on_for_several_word_texts_only():
    names = encoder_for(["Hinton", "Schmidhuber", "Le Cun"])
    titles = encoder_for(["a short title", "another one here", "one"])
    assert build_ngram(names.vocab_size, 2, encoder=names).word_order == 0
    assert build_ngram(titles.vocab_size, 2, encoder=titles).word_order == 2
    assert build_ngram(titles.vocab_size, 2, encoder=titles, word_ngrams="0").word_order == 0
    # a run saved before encoders knew their texts' words: auto stays off, as it was
    old = OneHotEncoder(TUTORIAL_ALPHABET)
    old.load_state({"alphabet": "abc ", "pad": 0, "oov": 1})
    assert old.words_per_text is None
    assert build_ngram(old.vocab_size, 2, encoder=old).word_order == 0


def test_words_need_an_encoder_that_names_its_symbols():
    with pytest.raises(toolkit.ToolkitError, match="word_ngrams=2 needs an encoder"):
        build_ngram(30, 2, word_ngrams="2")


def test_check_model_passes_for_ngram_with_words_on():
    toolkit.testing.check_model("ngram", {"word_ngrams": "2"}, encoder_params={"alphabet": "auto"})


def only_word_order_separates(path) -> None:
    """Two classes whose texts hold the same words: 'alpha beta' in one, 'beta alpha' in the
    other, between filler words. Every word starts and ends with 'qq', so the character
    n-grams (up to 4) that cross a space are the same everywhere: only the order of the two
    words, a word bigram, tells the classes apart."""
    rng = random.Random(0)
    fillers = ["".join(rng.choice("defghijklmnoprstuvwxyz") for _ in range(rng.randint(3, 6)))
               for _ in range(40)]
    rows = []
    for before, after in itertools.product(fillers, repeat=2):
        for label, pair in (("forward", "alpha beta"), ("backward", "beta alpha")):
            words = [before, *pair.split(), after]
            rows.append((" ".join(f"qq{w}qq" for w in words), label))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


@pytest.mark.parametrize(("word_ngrams", "low", "high"), [("2", 0.95, 1.0), ("0", 0.0, 0.65)])
def test_only_word_features_learn_word_order(cli, tmp_path, word_ngrams, low, high):
    path = tmp_path / "order.csv"
    only_word_order_separates(path)
    result = toolkit.run(
        dataset="csv", model="ngram", output=tmp_path / "run", device="cpu",
        params={"dataset.path": str(path), "encoder.alphabet": "auto", "model.word_ngrams": word_ngrams,
                "train.epochs": 8},
    )
    accuracy = result.report.summary.loc["accuracy", "value"]
    assert low <= accuracy <= high, accuracy
    assert torch.isfinite(torch.as_tensor(result.test_probabilities)).all()
    if word_ngrams == "2":  # `toolkit explain` names the word bigram that decides, as a word n-gram
        shown = cli(["explain", "--run", str(result.run_dir), "qqdefqq qqbetaqq qqalphaqq qqghiqq"])
        assert shown.exit_code == 0, shown.output
        listed = " ".join(shown.stdout.split())
        assert "n-grams (exact shares of the logit; word:" in listed
        assert "word 'qqbetaqq qqalphaqq' +" in listed
