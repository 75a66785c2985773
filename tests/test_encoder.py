"""The `onehot` encoder: round trips, unknown characters, padding, saved vocabulary."""

from __future__ import annotations

import json

import pytest
import torch

import toolkit
from toolkit import PAD, TUTORIAL_ALPHABET
from toolkit.plugins.onehot import OOV, OneHotEncoder
from toolkit.registry import load_registry


@pytest.fixture(scope="module")
def italian(names_dir) -> list[str]:
    return (names_dir / "Italian.txt").read_text(encoding="utf-8").split("\n")[:300]


def test_registered_learning_its_alphabet_from_the_training_texts_by_default(italian):
    spec = load_registry().encoder("onehot")
    encoder = spec.factory(**{p.name: p.default for p in spec.params})
    assert encoder.produces == toolkit.CHAR_INDICES == spec.produces
    encoder.fit(italian)
    assert set(encoder.alphabet) == set("".join(italian))  # "à" of "Abbà" too, not the '_' bucket
    assert encoder.vocab_size == len(encoder.alphabet) + 2  # plus padding and unknown
    assert encoder.decode(encoder.encode(["Abbà"])[0][0]) == "Abbà"


def test_real_names_round_trip(italian):
    names = [n for n in italian if n]
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    indices, lengths = encoder.encode(names)
    assert indices.dtype == lengths.dtype == torch.long
    assert indices.shape == (len(names), max(map(len, names)))
    assert lengths.tolist() == [len(n) for n in names]
    bucketed = ["".join(c if c in TUTORIAL_ALPHABET else "_" for c in n) for n in names]
    assert [encoder.decode(row) for row in indices] == bucketed
    assert "Abbà" in names and "Abb_" in bucketed  # the accented letters are really there


def test_padding_is_zero_after_each_name():
    indices, lengths = OneHotEncoder(TUTORIAL_ALPHABET).encode(["Abe", "Zoltan"])
    assert lengths.tolist() == [3, 6]
    assert indices[0, 3:].tolist() == [PAD, PAD, PAD]
    assert PAD not in indices[1].tolist()


def test_unknown_characters_go_to_the_visible_bucket():
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    indices, lengths = encoder.encode(["Bélanger", "Nguyễn", "O'Neill"])
    assert lengths.tolist() == [8, 6, 7]  # nothing dropped
    assert indices[0, 1].item() == OOV
    assert encoder.decode(indices[0]) == "B_langer"
    assert encoder.decode(indices[1]) == "Nguy_n"
    assert encoder.decode(indices[2]) == "O'Neill"


def test_empty_text_is_one_unknown_step():
    indices, lengths = OneHotEncoder(TUTORIAL_ALPHABET).encode(["", "Li"])
    assert lengths.tolist() == [1, 2]
    assert indices[0].tolist() == [OOV, PAD]


def test_custom_alphabet_sends_the_rest_to_the_bucket():
    encoder = OneHotEncoder(alphabet="abcdefghijklmnopqrstuvwxyz")
    assert encoder.vocab_size == 28
    assert encoder.decode(encoder.encode(["Rossi"])[0][0]) == "_ossi"


def test_learned_alphabet_and_saved_state_round_trip(italian):
    learned = OneHotEncoder(alphabet="auto")
    learned.fit(italian)
    assert set(learned.alphabet) == set("".join(italian))
    state = json.loads(json.dumps(learned.state()))  # the vocabulary is plain JSON
    restored = OneHotEncoder(TUTORIAL_ALPHABET)
    restored.load_state(state)
    assert restored.vocab_size == learned.vocab_size
    texts = [*italian, "Ødegård"]
    for a, b in zip(learned.encode(texts), restored.encode(texts), strict=True):
        assert torch.equal(a, b)


def test_fixed_alphabet_ignores_fit(italian):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    encoder.fit(["ÅÄÖ"])
    assert encoder.alphabet == TUTORIAL_ALPHABET


@pytest.mark.parametrize("state", [{}, {"alphabet": ""}, {"alphabet": 5}, {"alphabet": "ab", "pad": 3}, []])
def test_damaged_state_is_a_user_error(state):
    with pytest.raises(toolkit.ToolkitError, match="onehot"):
        OneHotEncoder(TUTORIAL_ALPHABET).load_state(state)


def test_empty_alphabet_and_unfitted_state_are_user_errors():
    with pytest.raises(toolkit.ToolkitError, match="empty alphabet"):
        OneHotEncoder(alphabet="")
    with pytest.raises(toolkit.ToolkitError, match="fit"):
        OneHotEncoder(alphabet="auto").state()
