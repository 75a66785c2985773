"""`first-names-gender`: first names to gender, from the dictionary gender-guesser ships.

The file is `gender_guesser/data/nam_dict.txt` (Jörg Michael's first-name dictionary), read
from the installed package, never copied. Its format, as its own header defines it:

- `#` lines are comments. The header declares the char set: gender-guesser 0.4.0 ships the
  file converted to `utf-8` (the original was iso8859-1 with `<A/>`-style codes such as
  `<s^>` for letters outside Latin-1); the declared char set is honoured, and a name still
  holding such a code is refused rather than guessed at.
- Fixed-width columns (1-based): the gender code in 1-2, the name in 4-29, a sort marker in
  30, then one frequency digit (hex 1-D) per country.
- Gender codes: `M` male; `1M` male if first part of a name, else mostly male; `?M` mostly
  male (a unisex name, mostly male); `F`, `1F`, `?F` likewise for female; `?` unisex.
- `=` lines pair a nickname with a full name ("Abe Abraham"): not gender entries, skipped.
- Names with "expandable" umlauts are listed twice, once per sort order; the copy with `+`
  in column 30 is skipped, as the header advises.
- `+` inside a name stands for '-', ' ' or nothing (Arabic, Chinese and Korean names):
  "Abdel+Aziz" is "Abdel-Aziz", "Abdel Aziz" and "Abdelaziz". The `joiner` parameter picks.

How the codes become classes (`scheme`):

| code        | binary | strict  | three-way | detailed      |
| ----------- | ------ | ------- | --------- | ------------- |
| M           | male   | male    | male      | male          |
| 1M, ?M      | male   | dropped | male      | mostly_male   |
| F           | female | female  | female    | female        |
| 1F, ?F      | female | dropped | female    | mostly_female |
| ?           | dropped| dropped | unisex    | unisex        |

A name can have several lines (e.g. "Andrea": F in most of Europe, ?F in Britain and the
USA, M in Italy). With `conflicts=keep` it stays under each of its classes (the
leakage-free split keeps all its copies in one part, as for the names data's cross-class
names); `majority` keeps the class gender-guesser would answer (the most countries, then
the highest frequencies; ties dropped); `drop` removes the name.
"""

from __future__ import annotations

import codecs
import importlib.metadata
import importlib.resources
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toolkit

PACKAGE = "gender-guesser"
RESOURCE = ("gender_guesser", "data/nam_dict.txt")

SCHEMES: dict[str, dict[str, str]] = {
    "binary": {"M": "male", "1M": "male", "?M": "male", "F": "female", "1F": "female", "?F": "female"},
    "strict": {"M": "male", "F": "female"},
    "three-way": {
        "M": "male", "1M": "male", "?M": "male",
        "F": "female", "1F": "female", "?F": "female", "?": "unisex",
    },
    "detailed": {
        "M": "male", "1M": "mostly_male", "?M": "mostly_male",
        "F": "female", "1F": "mostly_female", "?F": "mostly_female", "?": "unisex",
    },
}
CODES = frozenset({"M", "1M", "?M", "F", "1F", "?F", "?"})
JOINERS = ("space", "hyphen", "none")
JOINER_CHOICES = (*JOINERS, "all")
CONFLICTS = ("keep", "majority", "drop")

_CHAR_SET = re.compile(r"^#\s*char set\s*=\s*(\S+)", re.MULTILINE | re.IGNORECASE)
_LEGACY_CODE = re.compile(r"<[^<>\s]{1,4}>")
_NAME_COLUMNS = slice(3, 29)
_SORT_MARKER = 29
_COUNTRIES = slice(30, 85)


@dataclass(frozen=True)
class Entry:
    """One gender line of the dictionary."""

    code: str
    name: str
    countries: str  # one character per country: ' ' (absent) or a hex frequency 1-D


def dictionary_path() -> Path:
    """Where the installed gender-guesser keeps nam_dict.txt."""
    try:
        path = importlib.resources.files(RESOURCE[0]).joinpath(RESOURCE[1])
    except ModuleNotFoundError:
        raise toolkit.ToolkitError(
            f"dataset 'first-names-gender' needs the {PACKAGE} package: pip install {PACKAGE}"
        ) from None
    if not path.is_file():
        raise toolkit.ToolkitError(
            f"the installed {PACKAGE} has no {RESOURCE[1]}; "
            f"reinstall it: pip install --force-reinstall {PACKAGE}"
        )
    return Path(str(path))


def decode(data: bytes, shown_as: str) -> str:
    """The file's text, in the char set its header declares."""
    declared = _CHAR_SET.search(data[:8192].decode("ascii", errors="replace"))
    char_set = declared.group(1) if declared else "iso8859-1"
    try:
        return data.decode(codecs.lookup(char_set).name)
    except LookupError:
        raise toolkit.ToolkitError(f"'{shown_as}' declares an unknown char set '{char_set}'.") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise toolkit.ToolkitError(
            f"'{shown_as}' is not valid {char_set} (its declared char set) on line {line}; "
            f"reinstall {PACKAGE}."
        ) from None


def parse(text: str, shown_as: str) -> tuple[list[Entry], dict[str, int]]:
    """The gender entries of the dictionary, and the lines skipped by reason."""
    entries: list[Entry] = []
    skipped: Counter[str] = Counter()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("="):
            skipped["nickname line (=)"] += 1
            continue
        code = line[:2].strip()
        name = line[_NAME_COLUMNS].strip()
        if code not in CODES or not name:
            raise toolkit.ToolkitError(
                f"line {number} of '{shown_as}' is not a dictionary entry (gender code {code!r}, "
                f"name {name!r}); the {PACKAGE} file format has changed."
            )
        if _LEGACY_CODE.search(name):
            raise toolkit.ToolkitError(
                f"line {number} of '{shown_as}' spells a letter in the old <..> notation ({name!r}); "
                f"this {PACKAGE} version ships an unconverted file: install gender-guesser 0.4.0."
            )
        if line[_SORT_MARKER : _SORT_MARKER + 1] == "+":
            skipped["second sort-order copy ('+' in column 30)"] += 1
            continue
        entries.append(Entry(code, name, line[_COUNTRIES]))
    return entries, dict(skipped)


def spellings(name: str, joiner: str) -> list[str]:
    """The name with its '+' written as `joiner` says ('all': the three spellings). As in
    the header's example, "Jun+Wei" joined without a separator is "Junwei"."""
    if "+" not in name:
        return [name]
    first, *rest = name.split("+")
    written = {
        "space": " ".join([first, *rest]),
        "hyphen": "-".join([first, *rest]),
        "none": first + "".join(part[:1].lower() + part[1:] for part in rest),
    }
    return list(written.values()) if joiner == "all" else [written[joiner]]


def _popularity(countries: str) -> tuple[int, int]:
    """gender-guesser's ranking of a line: countries that know the name, then its frequencies."""
    digits = [int(c, 16) for c in countries if c.strip()]
    return len(digits), sum(digits)


def resolve_conflicts(
    pairs: dict[tuple[str, str], tuple[int, int]], conflicts: str
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Apply the `conflicts` rule to (name, class) pairs; returns the kept pairs and the
    dropped count. `pairs` maps each pair to its best popularity."""
    classes_of: dict[str, list[str]] = defaultdict(list)
    for name, label in pairs:
        classes_of[name].append(label)
    kept: list[tuple[str, str]] = []
    dropped: Counter[str] = Counter()
    for name, labels in classes_of.items():
        if len(labels) == 1 or conflicts == "keep":
            kept += [(name, label) for label in labels]
        elif conflicts == "drop":
            dropped["name under several classes"] += len(labels)
        else:
            ranked = sorted(labels, key=lambda label: pairs[(name, label)], reverse=True)
            if pairs[(name, ranked[0])] == pairs[(name, ranked[1])]:
                dropped["name under several classes, tied"] += len(labels)
            else:
                kept.append((name, ranked[0]))
                dropped["name under a less frequent class"] += len(labels) - 1
    return kept, dict(dropped)


@dataclass(frozen=True)
class FirstNamesConfig(toolkit.Config):
    """`first-names-gender`'s parameters."""

    owner = "dataset 'first-names-gender'"
    scheme: str = toolkit.param_field(
        "binary",
        "How gender codes become classes: binary (M,1M,?M male; F,1F,?F female; unisex dropped), "
        "strict (only M and F), three-way (binary + unisex), detailed (male, mostly_male, female, "
        "mostly_female, unisex).",
        choices=tuple(SCHEMES),
    )
    conflicts: str = toolkit.param_field(
        "keep",
        "A name under several classes: keep it under each, majority (gender-guesser's most common "
        "answer), or drop it.",
        choices=CONFLICTS,
    )
    joiner: str = toolkit.param_field(
        "space",
        "How the dictionary's '+' inside a name is written: space (Abdel Aziz), hyphen, none "
        "(Abdelaziz), or all three spellings.",
        choices=JOINER_CHOICES,
    )
    normalization: str = toolkit.normalization_field("unidecode")


def load(**params: Any) -> toolkit.TextDataset:
    """First names to gender classes, with their provenance (see the module doc); `params`
    are `FirstNamesConfig`'s."""
    config = FirstNamesConfig(**params)
    path = dictionary_path()
    version = importlib.metadata.version(PACKAGE)
    record = toolkit.Provenance(
        f"{PACKAGE} {version}: {path}",
        normalization=config.normalization,
        options=config.as_dict(),
        package={"name": PACKAGE, "version": version},
        file=str(path),
    )
    data = record.add_file(path)
    entries, skipped = parse(decode(data, str(path)), str(path))
    record.dropped.update(skipped)
    mapping = SCHEMES[config.scheme]
    spelled: list[tuple[str, tuple[str, tuple[int, int]]]] = []
    for entry in entries:
        label = mapping.get(entry.code)
        if label is None:
            record.drop(f"code {entry.code} not used by scheme {config.scheme}")
            continue
        popularity = _popularity(entry.countries)
        spelled += [(spelling, (label, popularity)) for spelling in spellings(entry.name, config.joiner)]
    best: dict[tuple[str, str], tuple[int, int]] = {}
    for text, (label, popularity) in record.normalize_pairs(spelled):
        key = (text, label)
        if key in best:
            record.drop("same name and class again")
        best[key] = max(best.get(key, (0, 0)), popularity)
    pairs, conflict_drops = resolve_conflicts(best, config.conflicts)
    record.dropped.update(conflict_drops)
    return record.dataset([name for name, _ in pairs], [label for _, label in pairs])


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="first-names-gender",
            help="First names to gender: the ~46,000 entries of the dictionary gender-guesser ships.",
            load=load,
            config=FirstNamesConfig,
        )
    )
