"""`names`: the surnames-by-language data of PyTorch's char-RNN tutorial.

Where the data comes from, first match wins:
1. the `data_dir` parameter: a folder of `<Language>.txt` files, or the tutorial's data.zip;
2. the TOOLKIT_DATA_DIR environment variable: a folder holding `names/` (or the files);
3. the copy installed in the user cache by an earlier download;
4. a download of the tutorial's data.zip, checked by its structure and installed atomically.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import toolkit

URL = "https://download.pytorch.org/tutorial/data.zip"
DATA_ENV = "TOOLKIT_DATA_DIR"
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
    return toolkit.dataset_from_files(_read(_locate(data_dir, url)), normalization)


def _locate(data_dir: str, url: str) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        folder = Path(env).expanduser()
        return folder / "names" if (folder / "names").is_dir() else folder
    if cached_folder().is_dir():
        return cached_folder()
    return download(url=url)


def _read(path: Path) -> toolkit.LabelFiles:
    if path.suffix == ".zip" or path.is_file():
        return toolkit.read_label_zip(path, "names")
    return toolkit.read_label_folder(path)


def download(url: str = URL, **_ignored: object) -> Path:
    """Fetch the tutorial's zip into the cache, check it, and install the names folder."""
    target = cached_folder()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".data-", suffix=".zip") as tmp:
        _fetch(url, Path(tmp.name))
        files = toolkit.read_label_zip(tmp.name, "names")
        _check_structure(files, url)

        def build(folder: Path) -> None:
            for label, lines in files.lines.items():
                (folder / f"{label}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

        return toolkit.install_folder(target, build)


def _fetch(url: str, destination: Path) -> None:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    try:
        with urllib.request.urlopen(url, timeout=30) as response, destination.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task("Downloading names data", total=total)
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    progress.update(task, advance=len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise toolkit.ToolkitError(
            f"could not download the names data from {url} ({reason}); {HOW_TO_SUPPLY}."
        ) from None


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


def location(data_dir: str = "", **_ignored: object) -> Path:
    """Where `load` would read from now, without downloading."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cached_folder()


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
                    choices=("ascii", "unidecode", "raw"),
                ),
                toolkit.Param("url", str, URL, "Where to download the data from."),
            ),
        )
    )
