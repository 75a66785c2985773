"""`words-language`: words to their language, from the word lists wordfreq ships.

For each chosen language, the `n` most frequent words of wordfreq's list (read from the
installed package, offline) that pass the filters: at least `min_length` characters and,
with `letters_only`, made of letters (marks included, so Hindi or Tamil words count; an
apostrophe or hyphen between letters is allowed, as in "aujourd'hui"). wordfreq's lists
are lower case.

A word frequent in several languages ("de" is Spanish, Dutch, French, Portuguese...) is
kept under each, like the names data's cross-class names: the leakage-free split puts all
its copies in the same part, so no test word was seen in training. Their number is in the
provenance as `shared_texts`.
"""

from __future__ import annotations

import importlib.metadata
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toolkit

PACKAGE = "wordfreq"
DEFAULT_LANGUAGES = "en,de,fr,es,it,nl,pt,pl"
WORDLISTS = ("best", "large", "small")
_JOINERS = "'’-"


def _wordfreq():
    try:
        import wordfreq
    except ModuleNotFoundError:
        raise toolkit.ToolkitError(
            f"dataset 'words-language' needs the {PACKAGE} package: pip install {PACKAGE}"
        ) from None
    return wordfreq


def parse_languages(languages: str, available: dict[str, str]) -> list[str]:
    """The comma-separated codes, checked against the languages wordfreq has lists for."""
    codes = list(dict.fromkeys(code.strip().lower() for code in languages.split(",") if code.strip()))
    if not codes:
        raise toolkit.ToolkitError(
            "dataset 'words-language' got no languages; pass e.g. --param dataset.languages=en,de,fr "
            f"(available: {', '.join(sorted(available))})."
        )
    for code in codes:
        if code not in available:
            raise toolkit.ToolkitError(
                f"wordfreq has no word list for language '{code}'.{toolkit.did_you_mean(code, available)} "
                f"Available: {', '.join(sorted(available))}."
            )
    if len(codes) < 2:
        raise toolkit.ToolkitError(
            f"dataset 'words-language' needs at least two languages to tell apart; got only '{codes[0]}'. "
            "Pass e.g. --param dataset.languages=en,de."
        )
    return codes


@dataclass(frozen=True)
class WordsConfig(toolkit.Config):
    """`words-language`'s parameters."""

    owner = "dataset 'words-language'"
    languages: str = toolkit.param_field(
        DEFAULT_LANGUAGES, "Comma-separated language codes (wordfreq has 42: ar, bg, ... zh)."
    )
    n: int = toolkit.param_field(
        5000, "Words per language, most frequent first (fewer where a list runs out).", min=1
    )
    min_length: int = toolkit.param_field(2, "Skip words shorter than this.", min=1)
    letters_only: bool = toolkit.param_field(
        True,
        "Keep only words of letters (an inner apostrophe or hyphen allowed); false keeps every "
        "token of the list.",
    )
    wordlist: str = toolkit.param_field(
        "best", "wordfreq's list: best (large where there is one), large, or small.", choices=WORDLISTS
    )
    normalization: str = toolkit.normalization_field("raw")


def is_word(text: str) -> bool:
    """Letters and marks only, with an apostrophe or hyphen allowed between two letters."""
    for i, char in enumerate(text):
        if char in _JOINERS:
            if i == 0 or i == len(text) - 1 or text[i + 1] in _JOINERS:
                return False
        elif unicodedata.category(char)[0] not in "LM":
            return False
    return bool(text)


def top_words(wordfreq, language: str, config: WordsConfig) -> list[str]:
    """The `config.n` most frequent words of `language` that pass the filters (fewer if the
    list runs out)."""
    words: list[str] = []
    for word in wordfreq.iter_wordlist(language, config.wordlist):
        if len(word) >= config.min_length and (not config.letters_only or is_word(word)):
            words.append(word)
            if len(words) == config.n:
                break
    return words


def load(**params: Any) -> toolkit.TextDataset:
    """Words to language codes, with their provenance (see the module doc); `params` are
    `WordsConfig`'s."""
    config = WordsConfig(**params)
    wordfreq = _wordfreq()
    available = wordfreq.available_languages(config.wordlist)
    codes = parse_languages(config.languages, available)
    version = importlib.metadata.version(PACKAGE)
    files = {code: Path(available[code]) for code in codes}
    record = toolkit.Provenance(
        f"{PACKAGE} {version} word lists in {files[codes[0]].parent}",
        normalization=config.normalization,
        options={**config.as_dict(), "languages": codes},
        package={"name": PACKAGE, "version": version},
        files={code: str(path) for code, path in files.items()},
    )
    for path in files.values():
        record.add_file(path)
    pairs = record.normalize_pairs(
        (word, code) for code in codes
        for word in top_words(wordfreq, code, config)
    )
    unique = list(dict.fromkeys(pairs))  # a word once per language, the first time it comes
    record.drop("same word again after normalization", len(pairs) - len(unique))
    return record.dataset([text for text, _ in unique], [code for _, code in unique])


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="words-language",
            help="Words to their language: the most frequent words of each language in wordfreq's lists.",
            load=load,
            config=WordsConfig,
        )
    )
