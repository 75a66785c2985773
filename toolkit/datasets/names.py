"""`names`: the surnames-by-language data of PyTorch's char-RNN tutorial.

Where the data comes from, first match wins:
1. the `data_dir` parameter: a folder of `<Language>.txt` files (or a folder holding
   `names/` or `data/names/`), or the tutorial's data.zip itself;
2. the TOOLKIT_DATA_DIR environment variable, read the same way;
3. the copy installed in the user cache by an earlier download (`toolkit datasets path`);
4. a download of the tutorial's data.zip into the cache, checked by its structure (the 18
   files and their line counts) and installed atomically, so an interrupted or corrupt
   download never counts as data.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import toolkit

URL = "https://download.pytorch.org/tutorial/data.zip"
DATA_ENV = "TOOLKIT_DATA_DIR"
#: Written beside the installed files: where and when they were downloaded.
SOURCE_FILE = "SOURCE.json"
#: The tutorial's 18 files and their line counts: how a download is recognised.
EXPECTED_LINES = {
    "Arabic": 2000, "Chinese": 268, "Czech": 519, "Dutch": 297, "English": 3668, "French": 277,
    "German": 724, "Greek": 203, "Irish": 232, "Italian": 709, "Japanese": 991, "Korean": 94,
    "Polish": 139, "Portuguese": 74, "Russian": 9408, "Scottish": 100, "Spanish": 298,
    "Vietnamese": 73,
}
HOW_TO_SUPPLY = (
    "pass --param dataset.data_dir=PATH (a folder of <Language>.txt files or data.zip) "
    f"or set {DATA_ENV}=PATH"
)


def cached_folder() -> Path:
    """Where the downloaded names files are installed."""
    return toolkit.cache_dir() / "names"


def load(data_dir: str = "", normalization: str = "ascii", url: str = URL) -> toolkit.TextDataset:
    """The names data as a TextDataset, normalised, with its provenance."""
    path = _locate(data_dir, url)
    return toolkit.dataset_from_files(_read(path), normalization, _download_record(path))


def _read(path: Path) -> toolkit.LabelFiles:
    """A zip (the tutorial's data.zip) or a folder of <Language>.txt files."""
    return toolkit.read_label_zip(path, "names") if path.is_file() else toolkit.read_label_folder(path)


def location(data_dir: str = "", **_ignored: object) -> Path:
    """Where `load` reads the data from now (or would install a download), without fetching."""
    if data_dir:
        return _names_folder(Path(data_dir).expanduser())
    env = os.environ.get(DATA_ENV)
    return _names_folder(Path(env).expanduser()) if env else cached_folder()


def _locate(data_dir: str, url: str) -> Path:
    if data_dir:
        return _names_folder(Path(data_dir).expanduser())
    env = os.environ.get(DATA_ENV)
    if env:
        path = _names_folder(Path(env).expanduser())
        if not path.exists():
            raise toolkit.ToolkitError(
                f"{DATA_ENV} is set to '{env}', which does not exist; fix the path or unset it."
            )
        return path
    if cached_folder().is_dir():
        return cached_folder()
    return download(url=url)


def _names_folder(path: Path) -> Path:
    """`path` itself, or its `names/` or `data/names/` sub-folder (an unpacked data.zip)."""
    for candidate in (path / "names", path / "data" / "names"):
        if candidate.is_dir():
            return candidate
    return path


def _download_record(path: Path) -> dict[str, Any]:
    record = path / SOURCE_FILE if path.is_dir() else None
    if record is None or not record.is_file():
        return {}
    try:
        return dict(json.loads(record.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return {}  # only informative; the data files themselves were checked at install time


def download(url: str = URL, **_ignored: object) -> Path:
    """Fetch the tutorial's zip into the cache, check it, and install the names folder.

    The zip is downloaded to a temporary file in the cache folder, its `names/` files are
    copied byte for byte into a temporary folder, checked (18 files, the known line counts),
    and only then renamed into place. Any failure leaves the cache as it was.
    """
    target = cached_folder()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".names-download-") as tmp:
        archive = Path(tmp) / "data.zip"
        _fetch(url, archive)

        def build(folder: Path) -> None:
            toolkit.extract_label_zip(archive, "names", folder, shown_as=url)
            _check_structure(toolkit.read_label_folder(folder), url)
            record = {
                "downloaded_from": url,
                "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (folder / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

        return toolkit.install_folder(target, build)


def _fetch(url: str, destination: Path) -> None:
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    try:
        with urllib.request.urlopen(url, timeout=30) as response, destination.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            # On stderr, so stdout (e.g. the path `toolkit datasets download` prints) stays clean.
            console = Console(file=sys.stderr)
            received = 0
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("Downloading names data", total=total)
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    received += len(chunk)
                    progress.update(task, advance=len(chunk))
            # urllib ends a read early without complaint when the connection drops.
            if total is not None and received != total:
                raise _download_failed(url, f"the connection closed after {received:,} of {total:,} bytes")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        raise _download_failed(url, str(reason)) from None


def _download_failed(url: str, reason: str) -> toolkit.ToolkitError:
    return toolkit.ToolkitError(f"could not download the names data from {url} ({reason}); {HOW_TO_SUPPLY}.")


def _check_structure(files: toolkit.LabelFiles, url: str) -> None:
    counts = dict(toolkit.line_counts(files))
    if counts != EXPECTED_LINES:
        missing = sorted(set(EXPECTED_LINES) - set(counts))
        extra = sorted(set(counts) - set(EXPECTED_LINES))
        wrong = sorted(k for k in set(counts) & set(EXPECTED_LINES) if counts[k] != EXPECTED_LINES[k])
        raise toolkit.ToolkitError(
            f"the data from {url} is not the tutorial's names data "
            f"(missing: {missing or 'none'}, unexpected: {extra or 'none'}, "
            f"wrong line counts: {wrong or 'none'}); nothing was installed."
        )


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="names",
            help="Surnames to their language: 20,074 names in 18 languages (the PyTorch tutorial).",
            load=load,
            download=download,
            location=location,
            params=(
                toolkit.Param(
                    "data_dir", str, "",
                    "A folder of <Language>.txt files or the tutorial's data.zip "
                    f"(default: ${DATA_ENV}, then the cache, then download).",
                ),
                toolkit.Param(
                    "normalization", str, "ascii",
                    "ascii: the tutorial's unicodeToAscii; unidecode: transliterate; raw: as is.",
                    choices=toolkit.NORMALIZATIONS,
                ),
                toolkit.Param("url", str, URL, "Where to download the data from."),
            ),
        )
    )
