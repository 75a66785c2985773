"""Hostile inputs against what prediction and the other commands write and print (issue 26):
CSV cells that a spreadsheet would run as formulas, output folders that fail, signals in the
middle of writing, and run folders that others prepared."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pandas as pd
import pytest

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
