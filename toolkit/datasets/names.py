"""`names`: the surnames-by-language data of PyTorch's char-RNN tutorial.

The 18 files of the tutorial's data.zip (`data/names/<Language>.txt`, 20,074 lines) ship
inside this package, so the dataset works offline on a fresh machine. They come from the
PyTorch tutorials (https://github.com/pytorch/tutorials, BSD-3-Clause; the licence is
beside the files, in `data/names/LICENSE`).

Where the data comes from, first match wins:
1. the `data_dir` parameter: a folder of `<Language>.txt` files (or a folder holding
   `names/` or `data/names/`), or the tutorial's data.zip itself;
2. the TOOLKIT_DATA_DIR environment variable, read the same way;
3. the official zip fetched by `toolkit datasets download names` into the user cache;
4. the copy bundled with the package (the default).
The bundled copy and the downloaded one are checked against `CONTENT_SHA256` on every
load; a folder the user names is read as it is (it may be other data on purpose).
Nothing is ever downloaded unless asked for.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import toolkit

URL = "https://download.pytorch.org/tutorial/data.zip"
ORIGIN = "PyTorch tutorials (https://github.com/pytorch/tutorials), data/names in " + URL
LICENSE = "BSD-3-Clause"
DATA_ENV = "TOOLKIT_DATA_DIR"
#: Written beside the installed files: where and when they were downloaded.
SOURCE_FILE = "SOURCE.json"
#: Seconds to wait for the connection and for each read of a download (the socket's timeout),
#: and for the whole download, so a server that trickles bytes cannot hold it open for ever.
STALL_TIMEOUT = 30.0
DOWNLOAD_TIMEOUT = 600.0
#: SHA-256 of each file's *content* (`toolkit.content_sha256`: decoded as UTF-8, line endings
#: read as LF, one final newline dropped), not of its bytes. Nobody here could confirm that the
#: files inside the published zip are byte-identical to the bundled copies (line endings, final
#: newline), so a download is checked in a form that such harmless differences cannot change,
#: while one changed name still changes the sum.
CONTENT_SHA256 = {
    "Arabic": "7958e263b21262e7dfc2b89f60c789eb10a2abedde0960b5a1b6d54cffb0e2b5",
    "Chinese": "4902758aacda902ca57a54f2af556036c63c650c1e3f9387de22f0a4bbe44763",
    "Czech": "582db367ed4762c3f71e383fd19e4e48b957375a39de2528201ec840bac6b489",
    "Dutch": "d101a9ace502517639fb744b457b7ad83eda218f4b6555e79f3865bc31babb9f",
    "English": "52826b9a9a6cc794126e772655b406a67282c5435008f5192da0cdb188cf9c11",
    "French": "0696e9275d661963013419d83ea151857ca2bb31481e13bf4bcaa589e731491c",
    "German": "954484da746ee55e86e35fa3da28476022bf2b05b014b42a6e572169b7369f93",
    "Greek": "0330859b54b5a15612cad97e463eb1f715563f605f7f026a5dc704714bf03ff8",
    "Irish": "6b931e3d5c2645b0a0352168c8e83cb6e0f2596f42d9d5b727898b816fa67d50",
    "Italian": "3aeb87e1ddf6c794692c46fcbfeb7e713a50e86aa7243fae6f2246bb03658bf9",
    "Japanese": "a68ff2ca5783e0ed186f8f73c0db762d7b84a16a8d669c2107a9ef49a3e4d8b2",
    "Korean": "a7d2fca95d2bbe92a570c9ba46dd59df1ad1b7a72e39e2ca9d082ec0f6cdd576",
    "Polish": "2619c5e78fd95cae2bfd52d02ba9912933d31681ef7b9ed1dbdffe9e927997c5",
    "Portuguese": "5aa1349fcc1970f1d631a624030e5c1d1d42e2ce1458f24c2e50649676bd48e1",
    "Russian": "39b090ed95d90b202517d5dc5272a0427f6bf7e5c16aba7566d88d7ddf258606",
    "Scottish": "f15950ed027c035405670d05bdf48d13b3807d8c54795224f21bf57dfdfece30",
    "Spanish": "a229b7a8157b555af7e7f1b6c8a99dd3a17b56c020287aefdc100947d4ad0fdb",
    "Vietnamese": "477962929e0aaa87e8b7623e8d146686ace381c8f59f68137dea7904babdfeed",
}
#: Lines per file, for messages about a copy that differs.
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


def bundled_folder() -> Path:
    """The copy of the 18 files that ships inside the package."""
    return Path(str(files(__package__) / "data" / "names"))


def cached_folder() -> Path:
    """Where `toolkit datasets download names` installs the official files."""
    return toolkit.cache_dir() / "names"


@dataclass(frozen=True)
class NamesConfig(toolkit.Config):
    """`names`'s parameters (for `load`, `location` and `download` alike)."""

    owner = "dataset 'names'"
    data_dir: str = toolkit.param_field(
        "",
        "A folder of <Language>.txt files or the tutorial's data.zip (default: "
        f"${DATA_ENV}, then a copy fetched by `toolkit datasets download names`, then the copy "
        "bundled with toolkit).", path=True,
    )
    normalization: str = toolkit.normalization_field("ascii")
    labels: str = toolkit.labels_field()
    verify: bool = toolkit.param_field(
        True,
        "Check a folder holding the tutorial's 18 files against their recorded content (false: "
        "read an edited copy as it is). The bundled copy is always checked.",
    )
    url: str = toolkit.param_field(URL, "Where `toolkit datasets download names` fetches the zip from.")


def load(**params: Any) -> toolkit.TextDataset:
    """The names data as a TextDataset, normalised, with its provenance; `params` are
    `NamesConfig`'s. `url` is used only by `download`: loading never touches the network.
    The bundled and downloaded copies are always checked; another folder holding the
    tutorial's 18 files is checked too unless `verify` is false (an edited copy on purpose),
    so a truncated copy is never read silently."""
    config = NamesConfig(**params)
    data_dir = config.data_dir
    with toolkit.reading_folder(cached_folder()):  # `toolkit datasets download names` may be replacing it now
        path = _location(data_dir)
        _check_exists(path, data_dir)
        label_files = _read(path)
        record = _download_record(path)
    extra: dict[str, Any] = {}
    tutorial_files = {name.removesuffix(".txt") for name in label_files.content_sha256} == set(CONTENT_SHA256)
    if path in (bundled_folder(), cached_folder()) or (config.verify and tutorial_files):
        if path == bundled_folder():
            shown, repair = "the names data bundled with toolkit", _how_to_repair(path)
        elif path == cached_folder():
            shown, repair = "the names data downloaded into the cache", _how_to_repair(path)
        else:
            shown = "the names data"
            repair = "pass --param dataset.verify=false to read an edited copy as it is"
        _verify(label_files, f"{shown} ({path})", repair)
        extra = {"origin": ORIGIN, "license": LICENSE, "verified": "content SHA-256 of all 18 files"}
    extra.update(record)
    return toolkit.dataset_from_files(label_files, config.normalization, extra, labels=config.labels)


def _read(path: Path) -> toolkit.LabelFiles:
    """A zip (the tutorial's data.zip) or a folder of <Language>.txt files."""
    return toolkit.read_label_zip(path, "names") if path.is_file() else toolkit.read_label_folder(path)


def location(**params: Any) -> Path:
    """Where `load` reads the data from now; `params` are `NamesConfig`'s."""
    return _location(NamesConfig(**params).data_dir)


def _location(data_dir: str) -> Path:
    if data_dir:
        return _names_folder(Path(data_dir).expanduser())
    env = _env_dir()
    if env is not None:
        return _names_folder(env)
    return cached_folder() if cached_folder().is_dir() else bundled_folder()


def _env_dir() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def _check_exists(path: Path, data_dir: str) -> None:
    if not data_dir and _env_dir() is not None and not path.exists():
        raise toolkit.ToolkitError(
            f"{DATA_ENV} is set to '{_env_dir()}', which does not exist; fix the path or unset it "
            "(without it the copy bundled with toolkit is used)."
        )


def _how_to_repair(path: Path) -> str:
    if path == bundled_folder():
        return ("reinstall toolkit from its folder, or restore the files there "
                "(git checkout -- toolkit/datasets/data/names)")
    return f"run `toolkit datasets download names` again, or delete {path} to use the bundled copy"


def _verify(label_files: toolkit.LabelFiles, shown: str, repair: str) -> None:
    """Every one of the 18 files present, nothing else, each with its recorded content."""
    found = {name.removesuffix(".txt"): digest for name, digest in label_files.content_sha256.items()}
    missing = sorted(set(CONTENT_SHA256) - set(found))
    extra = sorted(set(found) - set(CONTENT_SHA256))
    differs = sorted(k for k in set(found) & set(CONTENT_SHA256) if found[k] != CONTENT_SHA256[k])
    counts = toolkit.line_counts(label_files)
    if missing or extra or differs:
        problems = [
            *(f"{name}.txt differs from the recorded content ({counts[name]:,} lines, the "
              f"tutorial's has {EXPECTED_LINES[name]:,})" for name in differs),
            *([f"missing: {', '.join(m + '.txt' for m in missing)}"] if missing else []),
            *([f"unexpected: {', '.join(e + '.txt' for e in extra)}"] if extra else []),
        ]
        raise toolkit.ToolkitError(
            f"{shown} is not the tutorial's names data: {'; '.join(problems)}; {repair}."
        )


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


def download(**params: Any) -> Path:
    """Fetch the tutorial's zip from `url` (`params` are `NamesConfig`'s) into the cache,
    check it, and install the names folder.

    The zip is downloaded to a temporary file in the cache folder, its `names/` files are
    copied byte for byte into a temporary folder, checked file by file against
    `CONTENT_SHA256`, and only then renamed into place. Any failure leaves the cache as it was.
    """
    url = NamesConfig(**params).url
    target = cached_folder()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".names-download-") as tmp:
        archive = Path(tmp) / "data.zip"
        _fetch(url, archive)

        def build(folder: Path) -> None:
            toolkit.extract_label_zip(archive, "names", folder, shown_as=url)
            _verify(toolkit.read_label_folder(folder), f"the data from {url}", "nothing was installed")
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
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT
    try:
        with urllib.request.urlopen(url, timeout=STALL_TIMEOUT) as response, destination.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            # On stderr, so stdout (e.g. the path `toolkit datasets download` prints) stays clean.
            console = Console(file=sys.stderr)
            received = 0
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("Downloading names data", total=total)
                # read1 returns what has arrived, so the deadline is checked while bytes trickle in.
                while chunk := response.read1(1 << 16):
                    out.write(chunk)
                    received += len(chunk)
                    progress.update(task, advance=len(chunk))
                    if time.monotonic() > deadline:
                        raise _download_failed(
                            url, f"it took longer than {DOWNLOAD_TIMEOUT:g} s; {received:,} bytes arrived"
                        )
            # urllib ends a read early without complaint when the connection drops.
            if total is not None and received != total:
                raise _download_failed(url, f"the connection closed after {received:,} of {total:,} bytes")
    except TimeoutError:
        raise _download_failed(url, f"the server sent nothing for {STALL_TIMEOUT:g} s") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        if isinstance(reason, TimeoutError):
            reason = f"no connection within {STALL_TIMEOUT:g} s"
        raise _download_failed(url, str(reason)) from None


def _download_failed(url: str, reason: str) -> toolkit.ToolkitError:
    return toolkit.ToolkitError(
        f"could not download the names data from {url} ({reason}); the copy bundled with toolkit "
        f"needs no download, or {HOW_TO_SUPPLY}."
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
            config=NamesConfig,
        )
    )
