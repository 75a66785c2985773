"""`ngram`'s hashing constants and word tables, without torch: the torch model
(`ngram_model.py`) and its numpy forward pass (`ngram_numpy.py`) hash with the same ones."""

from __future__ import annotations

from collections.abc import Sequence

import toolkit

#: Polynomial rolling hash modulo the Mersenne prime 2^31 - 1: every intermediate value
#: stays below 2^62, so the int64 arithmetic never overflows and the hash is the same on
#: every machine (Python's hash() is salted per process).
HASH_MODULUS = 2**31 - 1
HASH_BASE = 1_000_003
#: Up to this many symbols (boundary markers included), a character n-gram is hashed with one modulo.
ONE_MODULO_VOCABULARY = 2**24
#: Added to a word n-gram's length before hashing, so a word n-gram's code never starts like a
#: character n-gram's (whose codes start from their length, 1 to 8).
WORD_SALT = 1_000
#: Characters that join letters into one word ("C++", "C#", "AT&T", "don't").
JOINERS = frozenset("_'’+#&")
#: Code point ranges whose characters are each a word: CJK ideographs, Hiragana and Katakana.
SOLO_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF))


def is_solo(char: str) -> bool:
    """Whether `char` is a word by itself (a CJK ideograph or kana)."""
    point = ord(char)
    return any(low <= point <= high for low, high in SOLO_RANGES)


def word_tables(symbols: Sequence[str]) -> tuple[list[bool], list[bool], list[int]]:
    """For each index: is it part of a word, is it a word by itself, and the index of its lower
    case (itself when the lower case is not in the alphabet). An index with no symbol ("", an
    unknown character) counts as a letter; padding never does."""
    index = {char: i for i, char in enumerate(symbols) if char}
    word = [i != toolkit.PAD and (char == "" or char.isalnum() or char in JOINERS or is_solo(char))
            for i, char in enumerate(symbols)]
    solo = [char != "" and is_solo(char) for char in symbols]
    fold = [index.get(char.lower(), i) if char else i for i, char in enumerate(symbols)]
    return word, solo, fold


def checked_word_tables(
    symbols: Sequence[str] | None, vocab_size: int
) -> tuple[list[bool], list[bool], list[int]]:
    """`word_tables` of the encoder's `symbols`, refused in one line unless there is one per index."""
    if symbols is None or len(symbols) != vocab_size:
        raise toolkit.ToolkitError(
            f"model 'ngram' reads words from the encoder's symbols, one per index; got "
            f"{'none' if symbols is None else len(symbols)} for vocab_size={vocab_size}."
        )
    return word_tables(symbols)
