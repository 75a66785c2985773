"""Reading labelled text files: a folder (or zip) of `<label>.txt`, one item a line.

Every problem is a ToolkitError naming the file (and the line, for bad encoding), so a
dataset plugin built on these readers gets clear messages for free.
"""

from __future__ import annotations

import hashlib
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from unidecode import unidecode

from toolkit.errors import ToolkitError
from toolkit.types import TextDataset

TUTORIAL_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'"
NORMALIZATIONS = ("ascii", "unidecode", "raw")


@dataclass
class LabelFiles:
    """The lines of each `<label>.txt`, by label, with each file's SHA-256 as read."""

    source: str
    lines: dict[str, list[str]] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)


def read_label_folder(folder: str | Path) -> LabelFiles:
    """Read every `<label>.txt` in `folder` (not recursive), labels sorted by name."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise ToolkitError(f"data folder '{path}' does not exist; check the path.")
    if not path.is_dir():
        raise ToolkitError(f"'{path}' is not a folder; give a folder of <label>.txt files.")
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise ToolkitError(f"folder '{path}' has no .txt files; it needs one <label>.txt per class.")
    result = LabelFiles(source=str(path.resolve()))
    for file in files:
        _add_file(result, file.name, file.stem, file.read_bytes())
    return result


def read_label_zip(archive: str | Path, folder: str) -> LabelFiles:
    """Read the `<label>.txt` files inside the sub-folder called `folder` of a zip archive."""
    path = Path(archive).expanduser()
    try:
        with zipfile.ZipFile(path) as zf:
            members = [
                info for info in zf.infolist()
                if not info.is_dir()
                and PurePosixPath(info.filename).parent.name == folder
                and info.filename.endswith(".txt")
            ]
            if not members:
                raise ToolkitError(
                    f"zip '{path}' has no '{folder}/' folder of .txt files; "
                    f"expected e.g. data/{folder}/<label>.txt."
                )
            result = LabelFiles(source=str(path.resolve()))
            for info in sorted(members, key=lambda i: i.filename):
                name = PurePosixPath(info.filename).name
                _add_file(result, name, name.removesuffix(".txt"), zf.read(info))
            return result
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ToolkitError(f"zip file '{path}' does not exist; check the path.") from None
        raise ToolkitError(f"'{path}' is not a readable zip archive ({exc}).") from None


def _add_file(result: LabelFiles, name: str, label: str, data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ToolkitError(
            f"file '{name}' is not UTF-8: bad byte 0x{data[exc.start]:02x} on line {line}; "
            "re-save it as UTF-8."
        ) from None
    lines = text.lstrip("\ufeff").splitlines()
    if not any(line.strip() for line in lines):
        raise ToolkitError(f"file '{name}' is empty; put one item per line or remove the file.")
    result.lines[label] = lines
    result.sha256[name] = hashlib.sha256(data).hexdigest()


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
            if unicodedata.category(c) != "Mn" and c in TUTORIAL_LETTERS
        ).strip()
    if mode == "unidecode":
        return unidecode(text).strip()
    if mode == "raw":
        return text
    raise ToolkitError(f"unknown normalization '{mode}'; use one of {', '.join(NORMALIZATIONS)}.")


def labelled_lines(
    files: LabelFiles, normalization: str = "raw"
) -> tuple[list[str], list[str], dict[str, int]]:
    """Normalised (texts, labels) from `files`, and how many lines were dropped and why."""
    texts: list[str] = []
    labels: list[str] = []
    dropped: dict[str, int] = {}
    for label, lines in files.lines.items():
        for line in lines:
            if not line.strip():
                dropped["blank line"] = dropped.get("blank line", 0) + 1
                continue
            text = normalize(line, normalization)
            if not text:
                dropped["empty after normalization"] = dropped.get("empty after normalization", 0) + 1
                continue
            texts.append(text)
            labels.append(label)
    return texts, labels, dropped


def line_counts(files: LabelFiles) -> Mapping[str, int]:
    """Non-blank lines per label, as read."""
    return {label: sum(1 for line in lines if line.strip()) for label, lines in files.lines.items()}


def dataset_from_files(files: LabelFiles, normalization: str = "raw") -> TextDataset:
    """A TextDataset of `files`' lines, normalised, with provenance (source, SHA-256 of each
    file, raw line counts, dropped lines by reason, normalization, load time)."""
    texts, labels, dropped = labelled_lines(files, normalization)
    provenance = {
        "source": files.source,
        "sha256": files.sha256,
        "lines": dict(line_counts(files)),
        "dropped": dropped,
        "normalization": normalization,
        "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return TextDataset.from_pairs(texts, labels, provenance)
