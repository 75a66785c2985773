"""Preparing texts: normalising them as a dataset did, and cutting them to the model's length.

A dataset records its mode as `"normalization"` in its provenance; `normalize_like` reads it
back from a run's `config.json` and applies it to every text a trained run is asked about,
so "Dvořák" reaches a model trained on the tutorial's ASCII names as "Dvorak".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from unidecode import unidecode

from toolkit.errors import ToolkitError
from toolkit.types import TUTORIAL_ALPHABET

NORMALIZATIONS = ("ascii", "unidecode", "raw")


def normalize(text: str, mode: str = "ascii") -> str:
    """Normalise one text.

    - `ascii`: the tutorial's `unicodeToAscii`: NFD, drop combining marks, keep only
      ASCII letters and " .,;'" ("Ślusàrski" -> "Slusarski", "Straße" -> "Strae").
    - `unidecode`: transliterate to ASCII with unidecode ("Straße" -> "Strasse").
    - `raw`: the line exactly as in the file (some names data lines end in a space).

    `ascii` and `unidecode` also strip surrounding white space.
    """
    if mode == "ascii":
        decomposed = unicodedata.normalize("NFD", text)
        return "".join(
            c for c in decomposed
            if unicodedata.category(c) != "Mn" and c in TUTORIAL_ALPHABET
        ).strip()
    if mode == "unidecode":
        return unidecode(text).strip()
    if mode == "raw":
        return text
    raise ToolkitError(f"unknown normalization '{mode}'; use one of {', '.join(NORMALIZATIONS)}.")


def normalize_like(texts: Sequence[str], provenance: Mapping[str, Any]) -> list[str]:
    """`texts` normalised as the data in `provenance` was (its `normalization`, when it is one
    of NORMALIZATIONS), so a model sees new texts prepared the way it was trained."""
    mode = provenance.get("normalization")
    if mode not in NORMALIZATIONS or mode == "raw":
        return list(texts)
    return normalize_many(texts, mode)


#: Joins a batch of texts into one string, normalised in one call.
_SEPARATOR = "\n"
#: Deletes the ASCII characters outside the tutorial's alphabet (but the separator).
_OUTSIDE_ALPHABET = str.maketrans("", "", "".join(
    chr(c) for c in range(128) if chr(c) not in TUTORIAL_ALPHABET and chr(c) != _SEPARATOR
))


def normalize_many(texts: Sequence[str], mode: str) -> list[str]:
    """`normalize` of every text, the same results, computed on the batch joined into one
    string (a few C calls instead of a Python step per character)."""
    if mode not in ("ascii", "unidecode"):
        return [normalize(text, mode) for text in texts]
    texts = list(texts)
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds the separator: one at a time
        return [normalize(text, mode) for text in texts]
    if mode == "ascii":
        if not joined.isascii():  # NFD splits off the combining marks; no mark is ASCII
            joined = unicodedata.normalize("NFD", joined).encode("ascii", "ignore").decode("ascii")
        joined = joined.translate(_OUTSIDE_ALPHABET)
    else:
        joined = unidecode(joined)
    parts = joined.split(_SEPARATOR)
    if len(parts) != len(texts):  # unidecode made a separator of a character
        return [normalize(text, mode) for text in texts]
    return [part.strip() for part in parts]


def cut_texts(texts: Sequence[str], max_length: int) -> tuple[list[str], int]:
    """`texts` with each cut to at most `max_length` characters, and how many were cut."""
    texts = list(texts)
    cut = sum(len(text) > max_length for text in texts) if texts and max(map(len, texts)) > max_length else 0
    return ([text[:max_length] for text in texts] if cut else texts), cut
