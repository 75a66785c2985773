"""Hostile inputs against what prediction and the other commands write and print (issue 26):
CSV cells that a spreadsheet would run as formulas, output folders that fail, signals in the
middle of writing, and run folders that others prepared."""

from __future__ import annotations

import csv
import http.server
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import run_toolkit

from toolkit import batch

#: Texts a spreadsheet would run as formulas, one per OWASP trigger, and two harmless ones.
HOSTILE = ['=HYPERLINK("http://evil.example","Smith")', "+Smith", "-Smith", "@Smith", "\tSmith",
           "\rSmith", "Smith", "O'Neill"]


@pytest.fixture(scope="module")
def formula_run(trained_run, tmp_path_factory):
    """A copy of the trained run whose class names all start with '=' (as a stranger's could)."""
    folder = tmp_path_factory.mktemp("formula-run") / "run"
    shutil.copytree(trained_run.run_dir, folder)
    classes = ["=" + name for name in json.loads((folder / "labels.json").read_text(encoding="utf-8"))]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["classes"] = classes
    (folder / "labels.json").write_text(json.dumps(classes), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _hostile_csv(path):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name"])
        writer.writerows([text] for text in HOSTILE)
    return path


def _escaped(text: str) -> str:
    return "'" + text if text[0] in "=+-@\t\r" else text


def test_predicted_csv_cells_cannot_run_as_formulas(cli, formula_run, tmp_path):
    source = _hostile_csv(tmp_path / "in.csv")
    base = ["predict", "--run", str(formula_run), "--input", str(source), "--column", "name"]
    to_stdout = cli(base)
    to_file = cli([*base, "--output", str(tmp_path / "out.csv")])
    raw = cli([*base, "--raw-csv"])
    assert to_stdout.exit_code == to_file.exit_code == raw.exit_code == 0, to_stdout.output
    for text in (to_stdout.stdout, (tmp_path / "out.csv").read_bytes().decode("utf-8")):
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert [r["input"] for r in rows] == [_escaped(t) for t in HOSTILE]
        for row in rows:
            assert row["predicted"].startswith("'=") and row["class_2"].startswith("'=")
            assert not row["probability"].startswith("'")
    rows = list(csv.DictReader(io.StringIO(raw.stdout, newline="")))
    assert [r["input"] for r in rows] == HOSTILE and rows[0]["predicted"].startswith("=")


def test_batch_csv_partitions_cannot_run_as_formulas(formula_run, tmp_path):
    source = _hostile_csv(tmp_path / "in.csv")
    result = batch.predict_files(formula_run, str(source), tmp_path / "out", column="name",
                                 output_format="csv")
    frame = pd.read_csv(tmp_path / "out" / result.files[0], keep_default_na=False)
    assert frame["input"].tolist() == [_escaped(t) for t in HOSTILE]
    assert all(c.startswith("'=") for c in frame["class_1"]) and (frame["log_probability_1"] <= 0).all()
    raw = batch.predict_files(formula_run, str(source), tmp_path / "raw", column="name",
                              output_format="csv", escape_csv=False)
    frame = pd.read_csv(tmp_path / "raw" / raw.files[0], keep_default_na=False)
    assert frame["input"].tolist() == HOSTILE and frame["class_1"].str.startswith("=").all()


# -- helpers: real processes, real signals, a real small filesystem ------------------------


def _start(args, **kwargs) -> subprocess.Popen:
    """The real `toolkit` command, started in the background (stdout and stderr captured)."""
    return subprocess.Popen([sys.executable, "-m", "toolkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(found, process: subprocess.Popen, seconds: float = 120):
    """Poll `found()` until it returns something truthy (the process must still be running)."""
    deadline = time.monotonic() + seconds
    while not (result := found()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
    return result


def _one_line(stderr: str) -> str:
    """The one error line of `stderr` (after training's progress lines, if any)."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("epoch ")]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@dataclass
class SmallDisk:
    """A real filesystem of a few kilobytes: a tmpfs when this process may mount one (root),
    else a folder under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored so writes fail with
    EFBIG) that applies to the processes started with `preexec`."""

    path: Path
    preexec: Any = None


@contextmanager
def small_disk(tmp_path: Path, kilobytes: int) -> Iterator[SmallDisk]:
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
                                 capture_output=True)
        if mounted.returncode == 0:
            try:
                yield SmallDisk(folder)
            finally:
                subprocess.run(["umount", "-l", str(folder)], check=True)
            return

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, kilobytes * 1024))

    yield SmallDisk(folder, limit)


@contextmanager
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into, root included: a read-only tmpfs when this process may
    mount one, else a folder without write permission."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(folder)], check=True)
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=True)
        return
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def _many_names(path: Path, names_dir: Path, copies: int) -> Path:
    lines = [line for line in (names_dir / "English.txt").read_text(encoding="utf-8").splitlines() if line]
    path.write_text("\n".join(lines * copies) + "\n", encoding="utf-8")
    return path


# -- 7: a Dask scheduler that is silent or answers garbage -----------------------------------


def _fake_scheduler(answer: bytes | None) -> tuple[socket.socket, threading.Thread]:
    """A TCP server on 127.0.0.1 that accepts connections and stays silent (`answer` None) or
    sends `answer` and then keeps the connection open."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00abc" * 4])
def test_a_silent_or_garbage_scheduler_is_refused_in_one_line_within_the_timeout(
    trained_run, tmp_path, names_dir, answer
):
    server, _ = _fake_scheduler(answer)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    source = _many_names(tmp_path / "in.txt", names_dir, 1)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "toolkit", "predict", "--run", str(trained_run.run_dir), "--input",
             str(source), "--output", f"{tmp_path}/out/", "--engine", "dask", "--scheduler", address],
            capture_output=True, text=True, timeout=batch.CONNECT_TIMEOUT + 90,
        )
    finally:
        server.close()
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert line.startswith(f"Error: cannot reach the Dask scheduler at '{address}' within 10 s"), line
    assert time.monotonic() - started < batch.CONNECT_TIMEOUT + 60
    assert not (tmp_path / "out").exists()


# -- 8: two batch predictions into one output folder --------------------------------------


def test_a_second_batch_prediction_into_a_busy_output_folder_is_refused_at_once(
    trained_run, tmp_path, names_dir
):
    source = _many_names(tmp_path / "in.txt", names_dir, 20)
    out = tmp_path / "out"
    args = ["predict", "--run", str(trained_run.run_dir), "--input", str(source), "--output", f"{out}/",
            "--batch-size", "64"]
    first = _start(args)
    try:
        _wait_for(lambda: list(out.glob(".partial-*")), first)  # it claimed the folder and works
        first.send_signal(signal.SIGSTOP)  # held mid-work, whatever the machine's speed
        started = time.monotonic()
        second = run_toolkit(args, timeout=120)
        assert second.returncode == 2
        assert "is being written by another toolkit run" in _one_line(second.stderr)
        assert time.monotonic() - started < 60
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]  # no lock, no staging left
    assert len(pd.read_parquet(out / "part-00000.parquet")) == len(source.read_text().splitlines())


# -- 11: output folder faults, a full disk, a full stdout ---------------------------------


def test_output_folder_faults_are_one_line_and_leave_nothing(cli, trained_run, tmp_path, names_dir):
    source = _many_names(tmp_path / "in.txt", names_dir, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "link-to-empty").symlink_to(empty)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    base = ["predict", "--run", str(trained_run.run_dir), "--input", str(source)]
    for output, message in [(tmp_path / "link-to-empty", "is a symbolic link"),
                            (tmp_path / "dangling", "is a symbolic link")]:
        result = cli([*base, "--output", f"{output}/"])
        assert result.exit_code == 2 and message in _one_line(result.stderr)
    assert list(empty.iterdir()) == [] and not (tmp_path / "nowhere").exists()
    with read_only_folder(tmp_path) as locked:
        result = cli([*base, "--output", f"{locked}/out/"])
        assert result.exit_code == 2
        assert "cannot create output" in _one_line(result.stderr) and list(locked.iterdir()) == []
    with small_disk(tmp_path, 32) as disk:
        done = subprocess.run([sys.executable, "-m", "toolkit", *base, "--output", f"{disk.path}/out/",
                               "--format", "csv"], capture_output=True, text=True, preexec_fn=disk.preexec)
        assert done.returncode == 2
        line = _one_line(done.stderr)
        assert f"cannot write the predictions into '{disk.path}/out/'" in line
        assert "nothing was left there" in line and list(disk.path.iterdir()) == []


def test_a_full_disk_under_dask_workers_is_one_line_and_leaves_nothing(trained_run, tmp_path, names_dir):
    sources = tmp_path / "in"
    sources.mkdir()
    for i in range(2):
        _many_names(sources / f"names-{i}.txt", names_dir, 1)
    with small_disk(tmp_path, 32) as disk:
        done = subprocess.run(
            [sys.executable, "-m", "toolkit", "predict", "--run", str(trained_run.run_dir), "--input",
             str(sources), "--output", f"{disk.path}/out/", "--engine", "dask", "--workers", "1",
             "--format", "csv"], capture_output=True, text=True, preexec_fn=disk.preexec, timeout=300,
        )
        assert done.returncode == 2
        assert f"cannot write the predictions into '{disk.path}/out/'" in _one_line(done.stderr)
        assert list(disk.path.iterdir()) == []


def test_a_full_disk_while_saving_the_weights_is_one_line_and_leaves_nothing(tmp_path):
    with small_disk(tmp_path, 8) as disk:
        done = subprocess.run(
            [sys.executable, "-m", "toolkit", "run", "--dataset", "names", "--model", "gru",
             "--param", "model.hidden_size=48", "--param", "train.epochs=1", "--param", "train.threads=1",
             "--output", str(disk.path / "run")],
            capture_output=True, text=True, preexec_fn=disk.preexec, timeout=600,
        )
        assert done.returncode == 2
        line = _one_line(done.stderr)
        assert f"cannot write the run folder '{disk.path}/run'" in line and "was not saved" in line
        assert list(disk.path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("what", ["names", "file"])
def test_predicting_into_a_full_stdout_is_one_line(trained_run, tmp_path, names_dir, what):
    source = _many_names(tmp_path / "in.txt", names_dir, 3)
    args = ["Hinton", "Schmidhuber"] if what == "names" else ["--input", str(source)]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "toolkit", "predict", "--run", str(trained_run.run_dir),
                               *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 2
    assert "cannot write to standard output (No space left on device)" in _one_line(done.stderr)


@pytest.mark.parametrize("command", [["report"], ["compare"], ["explain"]])
def test_a_reader_that_stops_early_is_one_line_for_every_command(trained_run, command):
    """`toolkit report RUN | head`: rich's tables on a closed pipe are the one line a print's are
    (rich alone exits with code 1 and says nothing)."""
    run = str(trained_run.run_dir)
    args = {"report": [run], "compare": [run, run], "explain": ["--run", run, "Hinton"]}[command[0]]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as `head` may be: no race
    done = subprocess.run([sys.executable, "-m", "toolkit", *command, *args], stdout=write_end,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(write_end)
    assert done.returncode == 2
    assert _one_line(done.stderr) == ("Error: cannot write to standard output (Broken pipe); the output is "
                                 "incomplete: the program reading it stopped early.")


# -- 12: SIGTERM leaves no temporary files -------------------------------------------------


def test_sigterm_during_predict_to_a_file_leaves_no_temporary_file(trained_run, tmp_path, names_dir):
    source = _many_names(tmp_path / "in.txt", names_dir, 40)
    out = tmp_path / "out"
    out.mkdir()
    process = _start(["predict", "--run", str(trained_run.run_dir), "--input", str(source),
                      "--output", str(out / "predictions.csv"), "--batch-size", "32"])
    _wait_for(lambda: list(out.glob(".predictions.csv.*.tmp")), process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and list(out.iterdir()) == []


def test_sigterm_during_batch_prediction_leaves_no_staging_folder(trained_run, tmp_path, names_dir):
    source = _many_names(tmp_path / "in.txt", names_dir, 40)
    out = tmp_path / "out"
    process = _start(["predict", "--run", str(trained_run.run_dir), "--input", str(source),
                      "--output", f"{out}/", "--batch-size", "32"])
    _wait_for(lambda: list(out.glob(".partial-*")), process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Announces a zip of 100,000 bytes and sends a byte every 20 ms."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(100_000):
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.02)

    def log_message(self, format, *args):
        pass


def test_sigterm_during_a_download_leaves_no_temporary_files(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    try:
        process = _start(["datasets", "download", "names", "--param",
                          f"url=http://127.0.0.1:{server.server_address[1]}/data.zip"],
                         env={**os.environ, "TOOLKIT_CACHE_DIR": str(cache)})
        # The staging file exists once the download writes (its first bytes may sit in the file's
        # buffer for minutes at this trickle, so its size says nothing yet).
        _wait_for(lambda: list(cache.glob(".names-download-*/data.zip")), process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and list(cache.iterdir()) == []


# -- 17: plugins new with a very long name or a read-only folder ---------------------------


def test_plugins_new_with_a_long_name_or_a_read_only_folder_is_one_line(tmp_path):
    long_name = run_toolkit(["plugins", "new", "a" * 300, "--directory", str(tmp_path)])
    assert long_name.returncode == 2
    assert "has 300 characters; give at most 64" in _one_line(long_name.stderr)
    assert list(tmp_path.iterdir()) == []
    with read_only_folder(tmp_path) as locked:
        refused = run_toolkit(["plugins", "new", "mine", "--directory", str(locked)])
        assert refused.returncode == 2
        assert f"cannot write into '{locked}'" in _one_line(refused.stderr)
        assert list(locked.iterdir()) == []


# -- 10: report and compare --html on hostile run folders ----------------------------------


def _edit_json(name: str, change):
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    return edit


def _edit_config(change):
    def apply(text: str) -> str:
        config = json.loads(text)
        change(config)
        return json.dumps(config)
    return _edit_json("config.json", apply)


def _history_epoch(value: str):
    def edit(folder: Path) -> None:
        history = pd.read_csv(folder / "history.csv")
        history["epoch"] = history["epoch"].astype(object)
        history.loc[len(history) - 1, "epoch"] = value
        history.to_csv(folder / "history.csv", index=False)
    return edit


HOSTILE_RUNS = {
    "epochs 1e400": _edit_json("config.json", lambda t: t.replace('"epochs": 2', '"epochs": 1e400', 1)),
    "examples 10**400": _edit_json(
        "config.json", lambda t: t.replace('"examples": 0', '"examples": 1' + "0" * 400, 1)),
    "history epoch inf": _history_epoch("inf"),
    "history epoch 1e300": _history_epoch("1e300"),
    "summary examples 10**400": _edit_json(
        "metrics.json", lambda t: t.replace('"examples": ', '"examples": 1' + "0" * 400 + ", \"was\": ", 1)),
    "model not a section": _edit_config(lambda c: c.update(model="gru")),
    "train not a section": _edit_config(lambda c: c.update(train="fast")),
    "training not a section": _edit_config(lambda c: c.update(training=[1])),
    "split sizes a list": _edit_config(lambda c: c["split"].update(sizes=[1, 2])),
    "epochs a word": _edit_config(lambda c: c["train"].update(epochs="many")),
    "model params a list": _edit_config(lambda c: c["model"].update(params=[1])),
    "accuracy a word": _edit_json(
        "metrics.json", lambda t: t.replace('"accuracy": ', '"accuracy": "high", "x": ', 1)),
    "per-class f1 missing": _edit_json("per_class.csv", lambda t: t.replace(",f1,", ",g1,", 1)),
}


@pytest.mark.parametrize("case", list(HOSTILE_RUNS))
def test_report_and_compare_html_on_hostile_run_folders_are_one_line(cli, trained_run, tmp_path, case):
    folder = tmp_path / "hostile"
    shutil.copytree(trained_run.run_dir, folder)
    HOSTILE_RUNS[case](folder)
    report = cli(["report", str(folder)])
    compared = cli(["compare", str(trained_run.run_dir), str(folder), "--html", str(tmp_path / "c.html")])
    for result in (report, compared):
        # a value the page can show is shown (exit 0); one it cannot is one line naming the folder
        assert result.exit_code in (0, 2) and not isinstance(result.exception, Exception), result.exception
        if result.exit_code:
            assert f"run folder '{folder}'" in _one_line(result.stderr)
            assert not (tmp_path / "c.html").exists() or result is report


# -- 18: reading the cached names data while another process reinstalls it ----------------

REINSTALL_FOREVER = """
import shutil, sys
from pathlib import Path
from toolkit.cache import install_folder
from toolkit.datasets import names

def build(folder):
    for file in names.bundled_folder().glob("*.txt"):
        shutil.copyfile(file, folder / file.name)

stop = Path(sys.argv[1])
count = 0
while not stop.exists():
    install_folder(names.cached_folder(), build)
    count += 1
print(count)
"""


def test_readers_of_the_cached_names_data_never_see_a_half_swapped_folder(tmp_path, monkeypatch):
    from toolkit.datasets import names

    cache = tmp_path / "cache"
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(cache))
    stop = tmp_path / "stop"
    installer = subprocess.Popen([sys.executable, "-c", REINSTALL_FOREVER, str(stop)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "TOOLKIT_CACHE_DIR": str(cache)})
    failures: list[str] = []
    try:
        _wait_for(lambda: (cache / "names").is_dir(), installer)
        deadline = time.monotonic() + 20
        reads = 0
        while time.monotonic() < deadline and reads < 400:
            try:
                data = names.load()
                assert data.provenance["counts"]["Dutch"] == 297, data.provenance["counts"]
            except Exception as exc:  # noqa: BLE001 - every way a read can fail counts
                failures.append(f"{type(exc).__name__}: {exc}")
            reads += 1
    finally:
        stop.touch()
        out, err = installer.communicate(timeout=60)
    assert installer.returncode == 0, err
    assert int(out) > 10, "the installer hardly ran: the test proves nothing"
    assert failures == [], f"{len(failures)} of {reads} reads failed, e.g. {failures[0]}"
    assert sorted(p.name for p in cache.iterdir()) == ["names"]  # no lock file, no old copy left
