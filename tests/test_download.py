"""Downloading the names data from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import toolkit
from toolkit.datasets import names

#: How often a test server's serve_forever() checks for shutdown(): the default 0.5 s made every
#: test that stops a server wait that long.
POLL_INTERVAL = 0.01


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the server's access log out of stderr
        pass


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/www over HTTP on a free port of 127.0.0.1; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(folder))
    return folder


def build_zip(
    path: Path, names_dir: Path, skip: str = "", extra_line: str = "",
    edit: Callable[[str, bytes], bytes] = lambda name, data: data,
) -> Path:
    """The tutorial's data.zip built from `names_dir`; `edit(file_name, data)` may change a file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(names_dir.glob("*.txt")):
            if file.stem == skip:
                continue
            data = file.read_bytes()
            if file.stem == extra_line:
                data += b"Extra\n"
            zf.writestr(f"data/names/{file.name}", edit(file.name, data))
    return path


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_good_zip_is_downloaded_checked_and_installed(served, cache, names_dir, cli):
    www, base = served
    build_zip(www / "data.zip", names_dir)
    result = cli(["datasets", "download", "names", "--param", f"url={base}/data.zip"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache / "names")
    assert leftovers(cache) == ["names"]
    assert len(list((cache / "names").glob("*.txt"))) == 18
    data = names.load(normalization="raw")  # now read from the cache, no URL needed
    assert len(data) == 20074
    assert data.provenance["source"] == str((cache / "names").resolve())


def test_loading_never_downloads(cache, cli, tmp_path):
    closed = http.server.HTTPServer(("127.0.0.1", 0), QuietHandler)
    unreachable = f"http://127.0.0.1:{closed.server_address[1]}/data.zip"
    closed.server_close()
    assert len(names.load(url=unreachable)) == 20074
    result = cli([
        "run", "--dataset", "names", "--model", "scratch-rnn", "--output", str(tmp_path / "run"),
        "--param", f"dataset.url={unreachable}", "--param", "train.epochs=1",
        "--param", "hidden_size=16", "--param", "train.threads=1",
    ])
    assert result.exit_code == 0, result.output
    assert "Test (2,693 texts): accuracy" in result.stdout
    assert leftovers(cache) == []  # nothing fetched, nothing cached


def test_truncated_zip_is_refused_and_nothing_is_left(served, cache, names_dir):
    www, base = served
    whole = build_zip(www / "whole.zip", names_dir).read_bytes()
    (www / "data.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(toolkit.ToolkitError) as info:
        names.download(url=f"{base}/data.zip")
    assert str(info.value).startswith(f"'{base}/data.zip' is not a readable zip archive")
    assert leftovers(cache) == []


def one_name_changed(name: str, data: bytes) -> bytes:
    return data.replace(b"Adamidis", b"Adamides") if name == "Greek.txt" else data


@pytest.mark.parametrize(("skip", "extra", "edit", "complaint"), [
    ("Korean", "", None, "missing: Korean.txt"),
    ("", "Greek", None, "Greek.txt differs from the recorded content"),
    ("", "", one_name_changed, "Greek.txt differs from the recorded content"),
])
def test_a_download_that_differs_is_refused_naming_the_file(
    served, cache, names_dir, cli, skip, extra, edit, complaint
):
    www, base = served
    build_zip(www / "data.zip", names_dir, skip=skip, extra_line=extra, **({"edit": edit} if edit else {}))
    result = cli(["datasets", "download", "names", "--param", f"url={base}/data.zip"])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.startswith(f"Error: the data from {base}/data.zip is not the tutorial's names data: ")
    assert complaint in message and message.endswith("nothing was installed.")
    assert message.count("\n") == 0
    assert leftovers(cache) == []


def test_a_download_that_differs_only_in_line_endings_is_accepted(served, cache, names_dir):
    www, base = served
    build_zip(www / "data.zip", names_dir, edit=lambda name, data: data.replace(b"\n", b"\r\n"))
    installed = names.download(url=f"{base}/data.zip")
    assert (installed / "Greek.txt").read_bytes().startswith(b"Adamidis\r\n")  # kept byte for byte
    build_zip(www / "data.zip", names_dir, edit=lambda name, data: data.rstrip(b"\n"))
    names.download(url=f"{base}/data.zip")
    assert names.load().provenance["counts"] == names.load(data_dir=str(names_dir)).provenance["counts"]


def test_zip_without_names_folder_is_refused(served, cache):
    www, base = served
    with zipfile.ZipFile(www / "data.zip", "w") as zf:
        zf.writestr("data/eng-fra.txt", "hello\tbonjour\n")
    with pytest.raises(toolkit.ToolkitError, match="has no 'names/' folder"):
        names.download(url=f"{base}/data.zip")
    assert leftovers(cache) == []


@pytest.mark.parametrize("where", ["missing file", "closed port"])
def test_no_network_says_what_failed_and_how_to_supply_the_data(served, cache, cli, where):
    _, base = served
    if where == "closed port":
        closed = http.server.HTTPServer(("127.0.0.1", 0), QuietHandler)
        base = f"http://127.0.0.1:{closed.server_address[1]}"
        closed.server_close()
    result = cli(["datasets", "download", "names", "--param", f"url={base}/missing.zip"])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert message.startswith(f"Error: could not download the names data from {base}/missing.zip")
    assert "the copy bundled with toolkit needs no download" in message
    assert "--param dataset.data_dir=PATH" in message and "TOOLKIT_DATA_DIR=PATH" in message
    assert leftovers(cache) == []


def test_installed_files_are_the_zips_bytes_and_remember_the_url(served, cache, names_dir, cli):
    www, base = served
    build_zip(www / "data.zip", names_dir)
    names.download(url=f"{base}/data.zip")
    data = names.load(normalization="raw")
    sums = {file.name: hashlib.sha256(file.read_bytes()).hexdigest() for file in names_dir.glob("*.txt")}
    assert data.provenance["sha256"] == sums
    assert data.provenance["downloaded_from"] == f"{base}/data.zip"
    shown = cli(["datasets", "show", "names"])
    assert shown.exit_code == 0, shown.output
    assert f"downloaded from: {base}/data.zip" in shown.stdout


def refused_download(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[str, str]:
    """Serve `handler` on 127.0.0.1, download from it, and return the URL and the refusal."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/data.zip"
    try:
        with pytest.raises(toolkit.ToolkitError) as info:
            names.download(url=url)
    finally:
        server.shutdown()
        server.server_close()
    return url, str(info.value)


class CutOffHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file, sends half of it, and hangs up: an interrupted download."""

    payload = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def test_interrupted_download_is_refused_and_nothing_is_left(tmp_path, cache, names_dir):
    handler = type("Handler", (CutOffHandler,), {
        "payload": build_zip(tmp_path / "whole.zip", names_dir).read_bytes(),
    })
    url, message = refused_download(handler)
    assert message.startswith(f"could not download the names data from {url} (the connection closed after")
    assert "\n" not in message and "TOOLKIT_DATA_DIR=PATH" in message
    assert leftovers(cache) == []


def test_a_failed_download_keeps_the_data_already_installed(served, cache, names_dir):
    www, base = served
    build_zip(www / "data.zip", names_dir)
    names.download(url=f"{base}/data.zip")
    build_zip(www / "data.zip", names_dir, skip="Korean")
    with pytest.raises(toolkit.ToolkitError, match="missing: Korean.txt"):
        names.download(url=f"{base}/data.zip")
    assert leftovers(cache) == ["names"]
    assert names.load().provenance["counts"]["Korean"] == 94


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Announces a file, then sends a byte every `pause` seconds (`pause` None: nothing at all)."""

    pause: float | None = None

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.flush()
        for _ in range(1000):
            time.sleep(self.pause if self.pause is not None else 5)
            if self.pause is None:
                return
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, format, *args):
        pass


@pytest.mark.parametrize(("pause", "complaint"), [
    (None, "the server sent nothing for 0.5 s"),
    (0.05, "it took longer than 1 s"),
])
def test_a_stalled_or_trickling_download_times_out(cache, monkeypatch, pause, complaint):
    monkeypatch.setattr(names, "STALL_TIMEOUT", 0.5)
    monkeypatch.setattr(names, "DOWNLOAD_TIMEOUT", 1.0)
    started = time.monotonic()
    _, message = refused_download(type("H", (SlowHandler,), {"pause": pause}))
    assert complaint in message and time.monotonic() - started < 10
    assert leftovers(cache) == []
