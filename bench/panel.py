"""The panel of data sets that defaults are chosen on: built by script from real data on this
machine, never by hand or from templates.

Besides the built-in `names`, `first-names-gender` and `words-language`, the panel has data
sets of several-word texts, each a CSV file (`text,label`) with a `.source.json` beside it
saying where every line came from, its licence and the command that built it:

- `manpages`: the one-line descriptions of the installed manual pages (man-db's `apropos .`:
  "printf (3) - formatted output conversion"), labelled by the page's section number (1-8;
  sections with fewer than 20 distinct descriptions left out); "(unknown subject)" and the
  descriptions apropos cuts ("...") left out.
  The pages come from the installed Debian packages, each under its package's licence.
- `ui-messages`: translated user-interface messages of the installed programs (GNU gettext
  catalogues, /usr/share/locale/LANG/LC_MESSAGES/*.mo, read with Python's `gettext`),
  labelled by language, for the 16 languages with the most catalogues; messages of two or more
  words and 10-160 characters, at most 2,000 per language (drawn with seed 0).
  Each catalogue is under its program's licence (mostly the GPL).

- `ui-programs`: the English messages (msgids) of the same gettext catalogues, labelled by the
  catalogue's domain, the program they belong to (git, coreutils, postgres-15, ...): what program
  prints this message. The `iso_*` code lists are left out, and so is every message that two
  programs share; domains with at least 100 such messages, at most 1,500 per domain (seed 0).
- `package-summaries`: one-line summaries of software packages labelled by the registry they
  are published in (PyPI, npm, NuGet), from the package lists in /work/.library/env/packages
  (the registries' own summaries; the notes those lists prepend in "[tested here: ...]" and
  NuGet's trailing "[tags]" removed); summaries of two or more words and 10-160 characters,
  at most 6,000 per registry (seed 0).

One more data set is built the same way but kept out of the panel: `debian-packages`, the
one-line descriptions of Debian 12's packages (the apt index of bookworm main,
/var/lib/apt/lists/*bookworm_main*Packages.lz4, read with `lz4cat`), labelled by the package's
section (contrib/ and non-free/ prefixes dropped). It is the data set of titles the
"several-word texts" issue measured on: no default was chosen on it, so it checks the defaults
on data nobody tuned them for.

None of these sources is on every machine (a container without manual pages or translations has
none), so they are benchmark inputs, not built-in datasets: building refuses, in one line, a
source that is missing here. Usage:

    python bench/panel.py                    # writes bench-data/panel/*.csv (the default folder)
    python bench/panel.py --output DIR --only manpages
"""

from __future__ import annotations

import argparse
import csv
import gettext
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "bench-data" / "panel"
BUILTIN = ("names", "first-names-gender", "words-language")
#: What a built-in panel data set needs beyond the defaults (the README's commands).
BUILTIN_PARAMS = {"words-language": {"encoder.alphabet": "auto"}}
LOCALE_DIR = Path("/usr/share/locale")
APT_LISTS = Path("/var/lib/apt/lists")
#: Fewest texts a class needs to be kept (a split needs a few of each).
MIN_CLASS = 20
LANGUAGES = 16
PER_LANGUAGE = 2_000
PER_PROGRAM = 1_500
MIN_PROGRAM = 100
PACKAGE_LISTS = Path("/work/.library/env/packages")
#: Registry -> (list file, column of the summary).
REGISTRIES = {"pypi": ("pypi.tsv", 4), "npm": ("npm.tsv", 3), "nuget": ("nuget.tsv", 3)}
PER_REGISTRY = 6_000
APROPOS_LINE = re.compile(r"^(?P<name>.+?) \((?P<section>[1-9])[^)]*\)\s+- (?P<text>.+)$")


class MissingSource(Exception):
    """A panel source that is not on this machine."""


def manpages() -> tuple[list[tuple[str, str]], dict[str, str]]:
    if shutil.which("apropos") is None:
        raise MissingSource("manpages: `apropos` (man-db) is not installed; install man-db and manual pages")
    listing = subprocess.run(["apropos", "."], capture_output=True, text=True, env={"LC_ALL": "C.UTF-8",
                             "PATH": "/usr/bin:/bin"}, check=False).stdout
    rows = []
    for line in listing.splitlines():
        found = APROPOS_LINE.match(line.strip())
        # apropos cuts long descriptions with "...": keep whole texts only
        if found and not found["text"].endswith("...") and found["text"] != "(unknown subject)":
            rows.append((found["text"].strip(), found["section"]))
    sizes = Counter(section for _, section in set(rows))
    rows = [(text, section) for text, section in rows if sizes[section] >= MIN_CLASS]
    if not rows:
        raise MissingSource("manpages: `apropos .` lists no manual pages here; install manual pages")
    return rows, {
        "source": "the one-line descriptions of this machine's manual pages, `apropos .` (man-db)",
        "label": "the page's section number (1-8)",
        "licence": "each manual page under its Debian package's licence (see /usr/share/doc/*/copyright)",
    }


def catalogue_messages(path: Path) -> Iterable[str]:
    try:
        with path.open("rb") as handle:
            catalogue = gettext.GNUTranslations(handle)
    except (OSError, ValueError, LookupError):  # a damaged or non-UTF-8 catalogue: skipped
        return []
    return (text for key, text in catalogue._catalog.items() if key and isinstance(text, str))


def ui_messages(locale_dir: Path = LOCALE_DIR) -> tuple[list[tuple[str, str]], dict[str, str]]:
    files = sorted(locale_dir.glob("*/LC_MESSAGES/*.mo")) if locale_dir.is_dir() else []
    if not files:
        raise MissingSource(f"ui-messages: no gettext catalogues under {locale_dir}; install translations")
    by_language: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_language[path.parts[-3]].append(path)
    chosen = sorted(by_language, key=lambda lang: (-len(by_language[lang]), lang))[:LANGUAGES]
    rows = []
    rng = random.Random(0)
    for language in sorted(chosen):
        texts = set()
        for path in by_language[language]:
            texts.update(filter(None, map(message_text, catalogue_messages(path))))
        picked = rng.sample(sorted(texts), min(PER_LANGUAGE, len(texts)))
        rows += [(text, language) for text in picked]
    return rows, {
        "source": f"translated messages of the GNU gettext catalogues under {locale_dir} "
                  f"(the {LANGUAGES} languages with the most catalogues)",
        "label": "the catalogue's language (its locale folder)",
        "licence": "each catalogue under its program's licence (see /usr/share/doc/*/copyright)",
    }


def message_text(text: str) -> str | None:
    """A message with white space collapsed, or None when it is not a several-word message."""
    text = " ".join(text.split())
    return text if 10 <= len(text) <= 160 and len(text.split()) >= 2 else None


def ui_programs(locale_dir: Path = LOCALE_DIR) -> tuple[list[tuple[str, str]], dict[str, str]]:
    files = sorted(locale_dir.glob("*/LC_MESSAGES/*.mo")) if locale_dir.is_dir() else []
    if not files:
        raise MissingSource(f"ui-programs: no gettext catalogues under {locale_dir}; install translations")
    by_program: dict[str, set[str]] = defaultdict(set)
    for path in files:
        if path.stem.startswith("iso_"):
            continue
        try:
            with path.open("rb") as handle:
                keys = gettext.GNUTranslations(handle)._catalog
        except (OSError, ValueError, LookupError):
            continue
        for key in keys:
            key = key[0] if isinstance(key, tuple) else key  # plural forms: (msgid, n)
            if isinstance(key, str) and (text := message_text(key.split("\x04")[-1])):  # drop msgctxt
                by_program[path.stem].add(text)
    owners = Counter(text for texts in by_program.values() for text in texts)
    rng = random.Random(0)
    rows = []
    for program in sorted(by_program):
        own = sorted(text for text in by_program[program] if owners[text] == 1)
        if len(own) >= MIN_PROGRAM:
            rows += [(text, program) for text in rng.sample(own, min(PER_PROGRAM, len(own)))]
    return rows, {
        "source": f"the English messages (msgids) of the GNU gettext catalogues under {locale_dir}, "
                  "iso_* code lists and messages of two or more programs left out",
        "label": "the catalogue's domain (the program the message belongs to)",
        "licence": "each catalogue under its program's licence (see /usr/share/doc/*/copyright)",
    }


def package_summaries(lists: Path = PACKAGE_LISTS) -> tuple[list[tuple[str, str]], dict[str, str]]:
    rng = random.Random(0)
    rows = []
    for registry, (file, column) in REGISTRIES.items():
        path = lists / file
        if not path.is_file():
            raise MissingSource(f"package-summaries: {path} is missing (the package lists of this machine's "
                                "tool library)")
        texts = set()
        with path.open(encoding="utf-8", errors="replace") as handle:
            next(handle)  # header
            for line in handle:
                cells = line.rstrip("\n").split("\t")
                if len(cells) > column:
                    summary = re.sub(r"^\[tested here:[^]]*\]\s*", "", cells[column])
                    summary = re.sub(r"\s*\[[^]]*\]$", "", summary)
                    if text := message_text(summary):
                        texts.add(text)
        rows += [(text, registry) for text in rng.sample(sorted(texts), min(PER_REGISTRY, len(texts)))]
    return rows, {
        "source": f"package summaries in the package lists under {lists} (pypi.tsv, npm.tsv, nuget.tsv)",
        "label": "the registry the package is published in (pypi, npm, nuget)",
        "licence": "package metadata published by each registry's package authors",
    }


def debian_packages() -> tuple[list[tuple[str, str]], dict[str, str]]:
    index = sorted(APT_LISTS.glob("*_dists_bookworm_main_binary-*_Packages.lz4"))
    if not index or shutil.which("lz4cat") is None:
        raise MissingSource(f"debian-packages: no bookworm main package index under {APT_LISTS} (or no "
                            "lz4cat); run apt-get update on Debian 12 and install lz4")
    listing = subprocess.run(["lz4cat", str(index[0])], capture_output=True, text=True, check=True).stdout
    rows = []
    for stanza in listing.split("\n\n"):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != " ")
        if "Description" in fields and "Section" in fields:
            rows.append((fields["Description"].strip(), fields["Section"].strip().rsplit("/", 1)[-1]))
    return rows, {
        "source": f"the short descriptions in Debian 12's package index, {index[0]}",
        "label": "the package's section (contrib/ and non-free/ prefixes dropped)",
        "licence": "package metadata of the Debian archive (each package under its own licence)",
    }


BUILDERS: dict[str, Callable[..., tuple[list[tuple[str, str]], dict[str, str]]]] = {
    "manpages": manpages, "ui-messages": ui_messages, "ui-programs": ui_programs,
    "package-summaries": package_summaries, "debian-packages": debian_packages,
}
#: Built like the panel but never used to choose a default: the check on data nobody tuned for.
HELD_OUT = ("debian-packages",)


def write_set(folder: Path, name: str, rows: Sequence[tuple[str, str]], about: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    partial = path.with_suffix(".csv.partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(sorted(set(rows)))
    partial.replace(path)
    counts = Counter(label for _, label in set(rows))
    words = sorted(len(text.split()) for text, _ in set(rows))
    lengths = sorted(len(text) for text, _ in set(rows))
    info = about | {
        "built_by": "python bench/panel.py",
        "rows": len(set(rows)), "classes": len(counts), "median_words": words[len(words) // 2],
        "median_characters": lengths[len(lengths) // 2], "counts": dict(sorted(counts.items())),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    path.with_suffix(".source.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return path


def panel_params(name: str, folder: Path = DEFAULT_OUTPUT) -> tuple[str, dict[str, str]]:
    """The `toolkit run` dataset and parameters for a panel data set."""
    if name in BUILTIN:
        return name, dict(BUILTIN_PARAMS.get(name, {}))
    path = folder / f"{name}.csv"
    if not path.is_file():
        raise MissingSource(f"{name}: {path} is not built yet; run python bench/panel.py --only {name}")
    return "csv", {"dataset.path": str(path)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--only", default=",".join(BUILDERS), help="Comma-separated: " + ", ".join(BUILDERS))
    parser.add_argument("--locale-dir", type=Path, default=LOCALE_DIR,
                        help="Where ui-messages' catalogues are.")
    args = parser.parse_args(argv)
    for name in [n for n in args.only.split(",") if n]:
        if name not in BUILDERS:
            print(f"panel.py: unknown data set {name!r}; choose from {', '.join(BUILDERS)}", file=sys.stderr)
            return 2
        try:
            builder = BUILDERS[name]
            located = name in ("ui-messages", "ui-programs")
            rows, about = builder(args.locale_dir) if located else builder()
        except MissingSource as exc:
            print(f"panel.py: {exc}", file=sys.stderr)
            return 2
        path = write_set(args.output, name, rows, about)
        info = json.loads(path.with_suffix(".source.json").read_text(encoding="utf-8"))
        print(f"{path}: {info['rows']:,} texts, {info['classes']} classes, median {info['median_words']} "
              f"words, {info['median_characters']} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
