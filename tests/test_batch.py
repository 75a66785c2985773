"""Batch prediction into a folder of partitions: the local engine, and Dask with real worker
processes (a LocalCluster of 2), identical row for row; bad input refused in one line."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import run_toolkit

from toolkit import batch
from toolkit.errors import ToolkitError
from toolkit.predictor import load_run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, names_dir):
    """Real names in three CSV files (one with a blank name and another column), one Parquet
    file and one text file (with a blank line)."""
    root = tmp_path_factory.mktemp("inputs")
    russian = (names_dir / "Russian.txt").read_text(encoding="utf-8").split("\n")
    names = [n for n in russian if n][:900] + ["Nguyễn", "O'Neill", "Dvořák"]
    csvs = root / "csv"
    csvs.mkdir()
    for i in range(3):
        part = names[i * 301:(i + 1) * 301]
        frame = pd.DataFrame({"id": range(len(part)), "name": part})
        if i == 1:
            frame.loc[5, "name"] = ""
        frame.to_csv(csvs / f"names-{i}.csv", index=False)
    mixed = root / "mixed"
    mixed.mkdir()
    pd.DataFrame({"name": names[:250]}).to_parquet(mixed / "a.parquet")
    (mixed / "b.txt").write_text("\n".join(names[250:400]) + "\n\n", encoding="utf-8")
    return root, names


def read_partitions(folder, files) -> pd.DataFrame:
    reader = pd.read_parquet if str(files[0]).endswith(".parquet") else pd.read_csv
    return pd.concat([reader(folder / name) for name in files], ignore_index=True)


def test_local_engine_writes_a_partition_per_file_with_top_classes(inputs, trained_run, tmp_path):
    root, names = inputs
    result = batch.predict_files(trained_run.run_dir, str(root / "csv" / "*.csv"), tmp_path / "out",
                                 column="name", top=3)
    assert result.files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == result.files  # nothing else left
    frame = read_partitions(tmp_path / "out", result.files)
    assert list(frame.columns) == ["input", "class_1", "log_probability_1", "class_2",
                                   "log_probability_2", "class_3", "log_probability_3"]
    kept = [n for i, n in enumerate(names) if i != 301 + 5]  # the blank name is skipped
    assert frame["input"].tolist() == kept and result.rows == len(kept)
    expected = load_run(trained_run.run_dir).predict(kept[:50], top=3)  # the single-name path agrees
    for row, prediction in zip(frame.head(50).itertuples(), expected, strict=True):
        assert row.class_1 == prediction.guesses[0].label and row.class_3 == prediction.guesses[2].label
        # float32 sums in another batch (50 names, not 301) differ in the last bits, not more
        assert row.log_probability_1 == pytest.approx(prediction.guesses[0].log_probability, abs=1e-5)
    assert (frame["log_probability_1"] >= frame["log_probability_2"]).all()
    assert (frame["log_probability_1"] <= 0).all()


def test_parquet_and_text_inputs_and_csv_output(inputs, trained_run, tmp_path):
    root, names = inputs
    result = batch.predict_files(trained_run.run_dir, str(root / "mixed" / "*.txt"), tmp_path / "out",
                                 top=2, output_format="csv")
    assert result.rows == 150 and result.files == ["part-00000.csv"]  # the blank line skipped
    assert read_partitions(tmp_path / "out", result.files)["input"].tolist() == names[250:400]
    with pytest.raises(ToolkitError, match="is a PARQUET file; name the text column with --column"):
        batch.predict_files(trained_run.run_dir, str(root / "mixed"), tmp_path / "o2")
    result = batch.predict_files(trained_run.run_dir, str(root / "mixed" / "*.parquet"), tmp_path / "o3",
                                 column="name", top=2, output_format="csv")
    frame = read_partitions(tmp_path / "o3", result.files)
    assert frame["input"].tolist() == names[:250] and "class_3" not in frame.columns


def test_bad_input_is_refused_in_one_line(inputs, trained_run, tmp_path, cli):
    root, _ = inputs
    run = str(trained_run.run_dir)
    cases = [
        (["--input", str(tmp_path / "none-*.csv"), "--column", "name", "--output", f"{tmp_path}/a/"],
         "no input files match"),
        (["--input", str(root / "csv" / "*.csv"), "--column", "surname", "--output", f"{tmp_path}/b/"],
         "cannot read column 'surname'"),
        (["--input", str(root / "csv" / "*.csv"), "--output", f"{tmp_path}/c/"],
         "name the text column with --column"),
        (["--input", str(root / "csv" / "*.csv"), "--column", "name", "--output", f"{root / 'csv'}/"],
         "already exists and is not empty"),
        (["--input", str(root / "csv" / "*.csv"), "--column", "name", "--json", "--output", f"{tmp_path}/d/"],
         "--json is for names and single files"),
        (["--input", str(root / "csv" / "*.csv"), "--column", "name", "--output", f"{tmp_path}/e/",
          "--workers", "2"], "--scheduler and --workers belong to --engine dask"),
        (["--input", str(root / "csv" / "*.csv"), "--column", "name", "--output", f"{tmp_path}/f/",
          "--engine", "spark"], "unknown engine 'spark'"),
    ]
    for args, message in cases:
        result = cli(["predict", "--run", run, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output folder, no staging left


def test_a_bad_scheduler_address_is_refused_in_one_line(trained_run, inputs, tmp_path, cli, monkeypatch):
    """In-process with a 1 s connect timeout, so the quick loop does not wait out the real 10 s
    (the next test waits it out, in a real process)."""
    monkeypatch.setattr(batch, "CONNECT_TIMEOUT", 1)
    root, _ = inputs
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(root / "csv" / "*.csv"),
                  "--column", "name", "--output", f"{tmp_path}/out/", "--engine", "dask",
                  "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 1 s"), result.stderr
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_bad_scheduler_address_is_refused_in_one_line_by_a_real_process(trained_run, inputs, tmp_path):
    root, _ = inputs
    started = time.monotonic()
    done = run_toolkit(["predict", "--run", str(trained_run.run_dir), "--input", str(root / "csv" / "*.csv"),
                        "--column", "name", "--output", f"{tmp_path}/out/", "--engine", "dask",
                        "--scheduler", "tcp://127.0.0.1:9"], timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 10 s"), done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_dask_cluster_of_two_processes_equals_the_local_engine_row_for_row(inputs, trained_run, tmp_path):
    from distributed import Client, LocalCluster

    root, _ = inputs
    pattern = str(root / "csv" / "*.csv")
    local = batch.predict_files(trained_run.run_dir, pattern, tmp_path / "local", column="name", top=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        on_dask = batch.predict_files(trained_run.run_dir, pattern, tmp_path / "dask", column="name", top=4,
                                      engine="dask", scheduler=cluster.scheduler_address)
        loads = client.run(lambda: __import__("toolkit.batch").batch.LOADS["count"])
    assert on_dask.workers == 2 and len(loads) == 2
    assert all(count <= 1 for count in loads.values()) and sum(loads.values()) >= 1  # once per process
    assert on_dask.files == local.files and on_dask.rows == local.rows
    left = read_partitions(tmp_path / "local", local.files)
    right = read_partitions(tmp_path / "dask", on_dask.files)
    pd.testing.assert_frame_equal(left, right, check_exact=True)
    assert not math.isnan(right["log_probability_4"].sum())


@pytest.mark.slow
def test_cli_starts_a_local_cluster_with_workers(inputs, trained_run, tmp_path):
    root, _ = inputs
    done = run_toolkit(["predict", "--run", str(trained_run.run_dir), "--input", str(root / "csv"),
                        "--column", "name", "--output", f"{tmp_path}/out/", "--engine", "dask",
                        "--workers", "2", "--format", "csv"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Wrote 902 predictions in 3 csv partitions" in done.stderr and "on 2 Dask workers" in done.stderr
    local = batch.predict_files(trained_run.run_dir, str(root / "csv"), tmp_path / "local", column="name",
                                output_format="csv")
    pd.testing.assert_frame_equal(read_partitions(tmp_path / "out", local.files),
                                  read_partitions(tmp_path / "local", local.files), check_exact=True)


def test_the_cli_does_not_import_dask_for_other_commands():
    code = (
        "import sys\nfrom toolkit.cli import main\n"
        "try:\n    main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('dask' in sys.modules, 'distributed' in sys.modules, 'toolkit.batch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False False False"


@pytest.mark.slow
def test_local_cluster_workers_keep_glibc_s_default_memory_trimming(monkeypatch):
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 made the workers predict at half the local
    engine's speed (docs/benchmarks.md); the engine's own cluster leaves it unset."""
    from distributed import Client, LocalCluster

    # Another test's plain LocalCluster set it in this process (a nanny sets its pre-spawn
    # variables in the process that starts it); a fresh `toolkit predict` has none.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    def trim_setting():
        return __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_")

    with batch.local_cluster(2) as cluster, Client(cluster) as client:
        assert set(client.run(trim_setting).values()) == {None}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as plain, Client(plain) as client:
        assert set(client.run(trim_setting).values()) == {"65536"}  # what Dask does by default
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # and in this process


@pytest.mark.skipif(not shutil.which("taskset"), reason="pins CPUs with taskset")
def test_dask_workers_are_bounded_by_this_machine_s_cpus(inputs, trained_run, tmp_path):
    root, _ = inputs
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-m", "toolkit", "predict", "--run", str(trained_run.run_dir),
         "--input", str(root / "csv"), "--column", "name", "--output", f"{tmp_path}/out/", "--engine", "dask",
         "--workers", "2", "--format", "csv"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--workers 2 is more than this machine runs: 1 CPU and " in done.stderr
    assert "allow at most 1; give --workers 1 or fewer." in done.stderr
    assert not (tmp_path / "out").exists()
