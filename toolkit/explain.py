"""Why a run said what it said: character attributions and the smallest edit that changes it.

For each text, as the model reads it (normalised as the training data was, cut to
`train.max_length`):

- **Attributions** (occlusion, for any model, plugins included): each character is taken out
  (deleted) and replaced by each character of the encoder's alphabet (its `symbols`; the text's
  own characters for an encoder without them) in turn, and its score is the class's
  log-probability on the text minus the mean over those edited texts. A character the class
  rests on scores high: remove or change it and the class loses probability. One score per
  character of the *input*: a character the normalisation turns into several ("ß" to "ss")
  is occluded as a whole, and one it drops (an emoji under `ascii`, white space at the ends,
  anything past `train.max_length`) scores 0, since the model never reads it.
- **Flip**: the smallest edit (one character substituted, inserted or deleted; then two) that
  changes the top class (or, for a class that is not the top one, makes it the top), found by
  predicting the candidates in batches. One-edit candidates are all tried, up to
  `MAX_CANDIDATES` (beyond it the replacement alphabet is thinned evenly); two-edit candidates
  extend the `BEAM` one-edit texts that lowered the class most, up to `MAX_CANDIDATES` in all.
  The edited text is predicted again through `Predictor.predict` (normalisation included)
  before it is reported: a flip is never assumed. None when no edit within that bound flips.
- **N-grams** (`ngram` with `dim=0`, a linear model): the text's character and word n-grams
  with their exact share of the class's centred logit (the logit minus the mean of all
  classes' logits, which is what the softmax reads): these shares plus the centred bias sum
  to it exactly.

Integrated gradients on the embeddings are not offered: a deletion test found them no more
faithful than occlusion (bench/explain_faithfulness.py, docs/benchmarks.md).
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from unidecode import unidecode

from toolkit.errors import ToolkitError
from toolkit.safe_files import shown
from toolkit.types import TUTORIAL_ALPHABET

#: Most edited texts predicted per text and per search step (one edit; two edits).
MAX_CANDIDATES = 8192
#: One-edit texts (those that lowered the class's probability most) extended to two edits.
BEAM = 16
#: Flipping candidates re-predicted before giving up on a step (normally the first one holds).
MAX_VERIFIED = 8
#: N-grams listed per text for `ngram`.
TOP_NGRAMS = 10


class Predictor(Protocol):
    """What explaining needs of `toolkit.predictor.Predictor` (which imports this module)."""

    classes: tuple[str, ...]
    config: dict[str, Any]
    max_length: int
    model: Any
    encoder: Any

    def predict(self, texts: Sequence[str], top: int = 3) -> Sequence[Any]: ...

    def _probabilities(self, prepared: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Edit:
    """One character edit of the model's text: `op` is replace, insert or delete; `position`
    counts characters of the text the edit applies to (after any earlier edit)."""

    op: str
    position: int
    old: str
    new: str

    def apply(self, text: str) -> str:
        tail = self.position + (0 if self.op == "insert" else 1)
        return text[:self.position] + self.new + text[tail:]

    def describe(self) -> str:
        if self.op == "replace":
            return f"replace {self.old!r} at {self.position} with {self.new!r}"
        if self.op == "insert":
            return f"insert {self.new!r} at {self.position}"
        return f"delete {self.old!r} at {self.position}"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "position": self.position, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Flip:
    """An edited text whose prediction (re-predicted, normalisation included) is `label`."""

    text: str
    label: str
    probability: float
    edits: tuple[Edit, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "probability": self.probability,
                "edit": [edit.to_dict() for edit in self.edits],
                "description": "; then ".join(edit.describe() for edit in self.edits)}


@dataclass(frozen=True)
class NgramShare:
    """One n-gram of a text and its exact share of the class's centred logit."""

    ngram: str
    kind: str  # "char" or "word"
    score: float


@dataclass(frozen=True)
class Explanation:
    """Why the model gave `label` to `text`: one (char, score) per input character."""

    text: str
    label: str  # "" when nothing of the text is left after normalisation
    probability: float | None  # None then
    attributions: tuple[tuple[str, float], ...]
    flip: Flip | None
    ngrams: tuple[NgramShare, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.text, "label": self.label, "probability": self.probability,
            "attributions": [{"char": char, "score": score} for char, score in self.attributions],
            "flip": self.flip.to_dict() if self.flip else None,
            "ngrams": [{"ngram": n.ngram, "kind": n.kind, "score": n.score} for n in self.ngrams],
        }


def explain(
    predictor: Predictor, texts: Sequence[str], label: str | None = None, *,
    flip: bool = True, limit: int = MAX_CANDIDATES,
) -> list[Explanation]:
    """Explain each of `texts`: for `label` (a class name) or else the top class. Without
    `flip` no edit is searched (and no insertion predicted); `limit` bounds the edited texts
    predicted per text and step (at most MAX_CANDIDATES)."""
    if label is not None and label not in predictor.classes:
        raise ToolkitError(
            f"unknown class '{shown(label)}'; use one of {', '.join(map(shown, predictor.classes))}."
        )
    limit = min(limit, MAX_CANDIDATES)
    return [_explain_one(predictor, text, label, flip, limit) for text in texts]


def _explain_one(predictor: Predictor, text: str, label: str | None, flip: bool, limit: int) -> Explanation:
    prepared, owners = model_text(predictor, text)
    zeros = tuple((char, 0.0) for char in text)
    if not prepared:
        return Explanation(text, "", None, zeros, None)
    base = predictor._probabilities([prepared])[0]
    top = int(np.argmax(base))
    target = predictor.classes.index(label) if label is not None else top
    alphabet = _alphabet(predictor, prepared)
    spans = _spans(owners, len(text))

    one_edits = _one_edits(prepared, alphabet, limit, insertions=flip)
    probabilities = _predict(predictor, [t for t, _ in one_edits])
    logs = np.log(np.maximum(probabilities[:, target], 1e-300))
    base_log = float(np.log(max(base[target], 1e-300)))

    positions = np.array([-1 if e.op == "insert" else e.position for _, (e,) in one_edits])
    scores = [0.0] * len(text)
    for i, span in enumerate(spans):
        if span is None:
            continue
        start, end = span
        occluded = (positions >= start) & (positions < end)
        if end - start == 1 and not occluded.any():  # a one-character text of a one-character alphabet
            continue
        if end - start > 1:  # a character the normalisation made several: occlude it as a whole
            rest = prepared[:start] + prepared[end:]
            extra = _predict(predictor, [rest]) if rest else np.zeros((0, len(base)))
            mean_log = float(np.mean(np.concatenate([
                logs[occluded], np.log(np.maximum(extra[:, target], 1e-300))])))
        else:
            mean_log = float(np.mean(logs[occluded]))
        scores[i] = base_log - mean_log

    found = _flip(predictor, prepared, target, top, one_edits, probabilities, alphabet) if flip else None
    ngrams = ngram_shares(predictor, prepared, target, TOP_NGRAMS)
    return Explanation(text, predictor.classes[target], float(base[target]),
                       tuple(zip(text, scores, strict=True)), found, ngrams)


def model_text(predictor: Predictor, text: str) -> tuple[str, list[int]]:
    """The text as the model reads it, and for each of its characters the position of the
    input character it came from."""
    provenance = predictor.config.get("provenance") or {}
    prepared = predictor.prepare([text])[0]
    pieces = [_normalize_char(char, provenance.get("normalization")) for char in text]
    owners = [i for i, piece in enumerate(pieces) for _ in piece]
    joined = "".join(pieces)
    if provenance.get("normalization") in ("ascii", "unidecode"):
        lead = len(joined) - len(joined.lstrip())
        trail = len(joined.rstrip())
        joined, owners = joined[lead:trail], owners[lead:trail]
    joined, owners = joined[:predictor.max_length], owners[:predictor.max_length]
    if joined != prepared:  # character by character differs from the whole (rare): align the two
        owners = _aligned_owners(text, prepared)
    return prepared, owners


def _normalize_char(char: str, mode: Any) -> str:
    """What one input character becomes under `normalize` (before the whole text is stripped)."""
    if mode == "ascii":
        return "".join(c for c in unicodedata.normalize("NFD", char)
                       if unicodedata.category(c) != "Mn" and c in TUTORIAL_ALPHABET)
    if mode == "unidecode":
        return unidecode(char)
    return char


def _aligned_owners(text: str, prepared: str) -> list[int]:
    owners = [-1] * len(prepared)
    matcher = difflib.SequenceMatcher(None, text, prepared, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            owners[block.b + k] = block.a + k
    last = 0
    for j, owner in enumerate(owners):  # an unmatched character belongs with the one before it
        owners[j] = last = owner if owner >= 0 else last
    return owners


def _spans(owners: list[int], length: int) -> list[tuple[int, int] | None]:
    """For each input character, the [start, end) of the model's characters it became."""
    spans: list[tuple[int, int] | None] = [None] * length
    for j, owner in enumerate(owners):
        span = spans[owner]
        spans[owner] = (j, j + 1) if span is None else (span[0], j + 1)
    return spans


def _alphabet(predictor: Predictor, prepared: str) -> str:
    """The characters to substitute and insert: the encoder's alphabet, else the text's own."""
    symbols = getattr(predictor.encoder, "symbols", None)
    chars = [s for s in symbols or () if isinstance(s, str) and len(s) == 1]
    return "".join(dict.fromkeys(chars or sorted(set(prepared))))


def _thinned(alphabet: str, count: int) -> str:
    if count >= len(alphabet):
        return alphabet
    picks = np.linspace(0, len(alphabet) - 1, max(count, 1)).round().astype(int)
    return "".join(alphabet[i] for i in dict.fromkeys(picks.tolist()))


def _one_edits(
    text: str, alphabet: str, limit: int, insertions: bool = True
) -> list[tuple[str, tuple[Edit]]]:
    """Every deletion, replacement and (with `insertions`) insertion of one character, at most
    about `limit` (the alphabet thinned evenly when there would be more)."""
    per_alphabet_char = 2 * len(text) + 1 if insertions else len(text)
    room = max(limit - len(text), per_alphabet_char) // per_alphabet_char
    chars = _thinned(alphabet, room)
    edits: list[tuple[str, tuple[Edit]]] = []
    for position, old in enumerate(text):
        if len(text) > 1:
            edit = Edit("delete", position, old, "")
            edits.append((edit.apply(text), (edit,)))
        for new in chars:
            if new != old:
                edit = Edit("replace", position, old, new)
                edits.append((edit.apply(text), (edit,)))
    for position in range(len(text) + 1 if insertions else 0):
        for new in chars:
            edit = Edit("insert", position, "", new)
            edits.append((edit.apply(text), (edit,)))
    return edits


def _predict(predictor: Predictor, texts: list[str]) -> np.ndarray:
    """Probabilities of model texts (already normalised), each distinct text predicted once."""
    unique = list(dict.fromkeys(texts))
    rows = {text: i for i, text in enumerate(unique)}
    probabilities = predictor._probabilities(unique)
    return probabilities[[rows[text] for text in texts]] if texts else probabilities


def _flip(
    predictor: Predictor, text: str, target: int, top: int,
    one_edits: list[tuple[str, tuple[Edit]]], probabilities: np.ndarray, alphabet: str,
) -> Flip | None:
    """The smallest verified edit that moves the top class off `target` (when `target` is the
    top class) or onto it (when it is not)."""
    found = _verified(predictor, target, top, one_edits, probabilities)
    if found is not None:
        return found
    # Two edits: extend the one-edit texts that moved the class the most in the wanted direction.
    toward = probabilities[:, target] if target != top else -probabilities[:, target]
    beam = np.argsort(-toward, kind="stable")[:BEAM]
    per_text = max(MAX_CANDIDATES // max(len(beam), 1), 1)
    two_edits = []
    for k in beam:
        first_text, (first,) = one_edits[k]
        two_edits += [(second_text, (first, second))
                      for second_text, (second,) in _one_edits(first_text, alphabet, per_text)
                      if second_text != text]
    if not two_edits:
        return None
    return _verified(predictor, target, top, two_edits, _predict(predictor, [t for t, _ in two_edits]))


def _verified(
    predictor: Predictor, target: int, top: int,
    candidates: Sequence[tuple[str, tuple[Edit, ...]]], probabilities: np.ndarray,
) -> Flip | None:
    winners = probabilities.argmax(axis=1)
    flips = winners == target if target != top else winners != top
    order = [int(i) for i in np.argsort(-probabilities.max(axis=1), kind="stable") if flips[i]]
    for i in order[:MAX_VERIFIED]:
        edited, edits = candidates[i]
        again = predictor.predict([edited], top=1)[0]  # re-predicted, never assumed
        if again.guesses and again.label == predictor.classes[int(winners[i])]:
            return Flip(edited, again.label, again.probability, tuple(edits))
    return None


def ngram_shares(
    predictor: Predictor, text: str, target: int, top: int | None = None
) -> tuple[NgramShare, ...]:
    """For `ngram` with dim=0, each n-gram of the model's `text` (a repeated one summed) with its
    exact share of class `target`'s centred logit, largest first (at most `top`); none for
    other models."""
    model = predictor.model
    if type(model).__name__ != "NgramModel" or getattr(model, "bias", None) is None:
        return ()
    import torch

    indices, lengths = predictor.encoder.encode([text])
    symbols = getattr(predictor.encoder, "symbols", None) or ()
    with torch.inference_mode():
        groups = [(model.char_ids(indices, lengths)[0], _char_ngrams(model, text), "char")]
        if model.word_order:
            groups.append((model.word_ids(indices, lengths)[0],
                           _word_ngrams(model, indices[0].tolist(), symbols), "word"))
        weights = model.bag.weight
        total = sum(len(names) for _, names, _ in groups)
        shares: dict[tuple[str, str], float] = {}
        for ids, names, kind in groups:
            real = ids != 0
            if int(real.sum()) != len(names):
                return ()  # the n-grams could not be named: list none rather than wrong ones
            rows = weights[ids[real]].double()  # the text's rows only: the table is large
            centred = rows[:, target] - rows.mean(dim=1)
            # As the model pools: each group over the square root of its count, or all over their count.
            scale = 1.0 / len(names) ** 0.5 if model.pooling == "sqrt" else 1.0 / total
            for name, value in zip(names, (centred * scale).tolist(), strict=True):
                shares[(name, kind)] = shares.get((name, kind), 0.0) + value
    ranked = sorted(shares.items(), key=lambda item: -item[1])[:top]
    return tuple(NgramShare(name, kind, score) for (name, kind), score in ranked)


def _char_ngrams(model: Any, text: str) -> list[str]:
    """The character n-grams of `text` in the order `NgramModel.char_ids` lists them."""
    marked = ["<", *text, ">"]
    return ["".join(marked[p:p + n])
            for n in range(model.min_n, min(model.max_n, len(marked)) + 1)
            for p in range(len(marked) - n + 1)]


def _word_ngrams(model: Any, indices: list[int], symbols: Sequence[str]) -> list[str]:
    """The word n-grams of one encoded text in the order `NgramModel.word_ids` lists them."""
    words: list[str] = []
    previous_in, previous_solo = False, False
    for index in indices:
        in_word, solo = bool(model.word_char[index]), bool(model.solo_char[index])
        if in_word and (not previous_in or solo or previous_solo):
            words.append("")
        if in_word:
            folded = int(model.folded[index])
            words[-1] += symbols[folded] if folded < len(symbols) and symbols[folded] else "_"
        previous_in, previous_solo = in_word, solo
    return [" ".join(words[k:k + n]) for n in range(1, min(model.word_order, len(words)) + 1)
            for k in range(len(words) - n + 1)]
