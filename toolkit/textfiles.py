"""Reading labelled text files: a folder (or zip) of `<label>.txt`, one item a line.

Every problem is a ToolkitError naming the file (and the line, for bad encoding), so a
dataset plugin built on these readers gets clear messages for free.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from toolkit.errors import ToolkitError


@dataclass
class LabelFiles:
    """The lines of each `<label>.txt`, by label, with each file's SHA-256 as read (`sha256`,
    of the bytes) and of its content (`content_sha256`, see `content_sha256`), by file name."""

    source: str
    lines: dict[str, list[str]] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    content_sha256: dict[str, str] = field(default_factory=dict)


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
    with _open_zip(path, str(path)) as zf:
        result = LabelFiles(source=str(path.resolve()))
        for info in _label_members(zf, str(path), folder):
            name = PurePosixPath(info.filename).name
            _add_file(result, name, name.removesuffix(".txt"), zf.read(info))
        return result


def extract_label_zip(
    archive: str | Path, folder: str, destination: str | Path, shown_as: str | None = None
) -> list[Path]:
    """Copy the `<label>.txt` files of the zip's sub-folder `folder` into `destination`,
    byte for byte (so their SHA-256 stay those of the archive); returns the files written.
    Error messages call the archive `shown_as` (e.g. the URL it came from) when given."""
    path = Path(archive).expanduser()
    shown = shown_as or str(path)
    written = []
    with _open_zip(path, shown) as zf:
        for info in _label_members(zf, shown, folder):
            # Only the base name is used, so a member path cannot point outside `destination`.
            target = Path(destination) / PurePosixPath(info.filename).name
            target.write_bytes(zf.read(info))
            written.append(target)
    return written


@contextmanager
def _open_zip(path: Path, shown: str) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(path) as zf:
            yield zf
    except FileNotFoundError:
        raise ToolkitError(f"zip file '{shown}' does not exist; check the path.") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise ToolkitError(f"'{shown}' is not a readable zip archive ({exc}).") from None


def _label_members(zf: zipfile.ZipFile, path: str, folder: str) -> list[zipfile.ZipInfo]:
    members = sorted(
        (
            info for info in zf.infolist()
            if not info.is_dir()
            and PurePosixPath(info.filename).parent.name == folder
            and info.filename.endswith(".txt")
        ),
        key=lambda info: info.filename,
    )
    if not members:
        raise ToolkitError(
            f"zip '{path}' has no '{folder}/' folder of .txt files; "
            f"expected e.g. data/{folder}/<label>.txt."
        )
    seen: dict[str, str] = {}
    for info in members:
        name = PurePosixPath(info.filename).name
        if name in seen:
            raise ToolkitError(
                f"zip '{path}' has two '{name}' files ({seen[name]} and {info.filename}); "
                "keep one folder of <label>.txt files."
            )
        seen[name] = info.filename
    return members


def _add_file(result: LabelFiles, name: str, label: str, data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ToolkitError(
            f"file '{name}' is not UTF-8: bad byte 0x{data[exc.start]:02x} on line {line}; "
            "re-save it as UTF-8."
        ) from None
    lines = _split_lines(text.removeprefix("\ufeff"))
    if not any(line.strip() for line in lines):
        raise ToolkitError(f"file '{name}' is empty; put one item per line or remove the file.")
    result.lines[label] = lines
    result.sha256[name] = hashlib.sha256(data).hexdigest()
    result.content_sha256[name] = _text_sha256(text)


def content_sha256(data: bytes) -> str:
    """SHA-256 of a text file's content in a form that harmless copying differences cannot
    change: decoded as UTF-8, CRLF and CR line endings read as LF and one final newline
    dropped, then the lines joined by `\\n` and encoded as UTF-8 again. Two copies of a file
    that differ only in line endings or in the last newline hash alike; one changed
    character does not. Raises UnicodeDecodeError for bytes that are not UTF-8."""
    return _text_sha256(data.decode("utf-8"))


def _text_sha256(text: str) -> str:
    joined = "\n".join(_split_lines(text))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def _split_lines(text: str) -> list[str]:
    """Lines ended by \\n, \\r\\n or \\r only: `str.splitlines` would also cut at characters
    such as U+0085 or U+2028, which can be part of an item."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def line_counts(files: LabelFiles) -> Mapping[str, int]:
    """Non-blank lines per label, as read."""
    return {label: sum(1 for line in lines if line.strip()) for label, lines in files.lines.items()}
