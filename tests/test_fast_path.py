"""The prediction path gives what the implementation before the fast path gave, row for row:
CSV, JSON Lines, Parquet and CSV partitions, with and without abstention and prediction sets,
for an `ngram` and a `scratch-rnn` run, on 1,000 names and on texts that normalise to nothing
(tests/fixtures/prediction/make_fixture.py made the fixture)."""

from __future__ import annotations

import csv
import io
import json
import lzma
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import toolkit

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "prediction"
NAMES = FIXTURE / "names.txt"
OPTIONS = ["--min-confidence", "0.5", "--coverage", "0.9"]
#: Texts with nothing left after the names data's ASCII normalisation.
UNREADABLE = ["", "   ", "!!!", "Иванов", "李小龍", "😀"]
TOLERANCE = 1e-6


def expected(run: str, output: str) -> bytes:
    return lzma.decompress((FIXTURE / run / f"{output}.xz").read_bytes())


#: The runtime each fixture run is checked through: the one that made the fixture. scratch-rnn's
#: default (auto) is its numpy forward pass, whose logits are torch's within float32 rounding
#: (tests/test_scratch_numpy.py checks it against this fixture).
RUNTIMES = {"ngram": "auto", "scratch-rnn": "torch"}


def predict_file(cli, run: str, tmp_path: Path, output: str, *extra: str) -> bytes:
    target = tmp_path / output
    result = cli(["predict", "--run", str(FIXTURE / run), "--input", str(NAMES), "--top", "3", *extra,
                  "--runtime", RUNTIMES[run], "--output", str(target)])
    assert result.exit_code == 0, result.output
    return target.read_bytes()


def predict_partition(cli, run: str, tmp_path: Path, fmt: str, *extra: str) -> bytes:
    folder = tmp_path / f"{fmt}-partitions"
    result = cli(["predict", "--run", str(FIXTURE / run), "--input", str(NAMES), "--top", "3", *extra,
                  "--runtime", RUNTIMES[run], "--format", fmt, "--output", f"{folder}/"])
    assert result.exit_code == 0, result.output
    return (folder / f"part-00000.{fmt}").read_bytes()


def assert_same_csv(found: bytes, wanted: bytes) -> None:
    """Same rows and cells: text cells exactly, numbers to TOLERANCE; same line ends."""
    assert found.count(b"\r\n") == wanted.count(b"\r\n") and found.count(b"\n") == wanted.count(b"\n")
    found_rows = list(csv.reader(io.StringIO(found.decode("utf-8"), newline="")))
    wanted_rows = list(csv.reader(io.StringIO(wanted.decode("utf-8"), newline="")))
    assert len(found_rows) == len(wanted_rows) > 1000
    header = wanted_rows[0]
    assert found_rows[0] == header
    numeric = [i for i, name in enumerate(header) if name.startswith(("probability", "log_probability"))]
    for number, (got, want) in enumerate(zip(found_rows[1:], wanted_rows[1:], strict=True), start=2):
        assert len(got) == len(want), f"row {number}"
        for i, (cell, wanted_cell) in enumerate(zip(got, want, strict=True)):
            if i in numeric and wanted_cell:
                close = math.isclose(float(cell), float(wanted_cell), abs_tol=TOLERANCE)
                assert close, f"row {number}: {got} != {want}"
            else:
                assert cell == wanted_cell, f"row {number}, column {header[i]}: {got} != {want}"


def assert_close(found: Any, wanted: Any, where: str) -> None:
    if isinstance(wanted, dict):
        assert isinstance(found, dict) and list(found) == list(wanted), where
        for key in wanted:
            assert_close(found[key], wanted[key], f"{where}.{key}")
    elif isinstance(wanted, list):
        assert isinstance(found, list) and len(found) == len(wanted), where
        for i, (got, want) in enumerate(zip(found, wanted, strict=True)):
            assert_close(got, want, f"{where}[{i}]")
    elif isinstance(wanted, float):
        assert isinstance(found, float) and math.isclose(found, wanted, abs_tol=TOLERANCE), where
    else:
        assert type(found) is type(wanted) and found == wanted, f"{where}: {found!r} != {wanted!r}"


def assert_same_json_lines(found: bytes, wanted: bytes) -> None:
    found_lines, wanted_lines = found.decode("utf-8").splitlines(), wanted.decode("utf-8").splitlines()
    assert len(found_lines) == len(wanted_lines) > 1000
    for number, (got, want) in enumerate(zip(found_lines, wanted_lines, strict=True), start=1):
        assert_close(json.loads(got), json.loads(want), f"line {number}")


def assert_same_parquet(found: bytes, wanted: bytes) -> None:
    got, want = pd.read_parquet(io.BytesIO(found)), pd.read_parquet(io.BytesIO(wanted))
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    assert len(got) == len(want) > 1000
    for column in want:
        if want[column].dtype.kind == "f":
            np.testing.assert_allclose(got[column], want[column], rtol=0, atol=TOLERANCE, err_msg=column)
        else:
            assert got[column].tolist() == want[column].tolist(), column


RUNS = ["ngram", "scratch-rnn"]


@pytest.mark.parametrize("run", RUNS)
def test_csv_file_equals_the_fixture(cli, tmp_path, run):
    assert_same_csv(predict_file(cli, run, tmp_path, "out.csv"), expected(run, "out.csv"))


@pytest.mark.parametrize("run", RUNS)
def test_json_lines_equal_the_fixture(cli, tmp_path, run):
    found = predict_file(cli, run, tmp_path, "out.jsonl", "--json")
    assert_same_json_lines(found, expected(run, "out.jsonl"))


@pytest.mark.parametrize("run", RUNS)
def test_parquet_partition_equals_the_fixture(cli, tmp_path, run):
    assert_same_parquet(predict_partition(cli, run, tmp_path, "parquet"), expected(run, "part.parquet"))


def test_csv_partition_equals_the_fixture(cli, tmp_path):
    assert_same_csv(predict_partition(cli, "ngram", tmp_path, "csv"), expected("ngram", "part.csv"))


def test_abstention_and_sets_equal_the_fixture(cli, tmp_path):
    assert_same_csv(predict_file(cli, "ngram", tmp_path, "options.csv", *OPTIONS),
                    expected("ngram", "options.csv"))
    assert_same_csv(predict_partition(cli, "ngram", tmp_path, "csv", *OPTIONS),
                    expected("ngram", "part-options.csv"))
    assert_same_parquet(predict_partition(cli, "ngram", tmp_path / "p", "parquet", *OPTIONS),
                        expected("ngram", "part-options.parquet"))


@pytest.mark.parametrize("run", RUNS)
def test_texts_that_normalise_to_nothing_get_no_classes_everywhere(cli, tmp_path, run):
    """The fixture's rows for them are empty, and the Python API gives them no guesses beside
    names it answers as the fixture does."""
    rows = list(csv.DictReader(io.StringIO(expected(run, "out.csv").decode("utf-8"), newline="")))
    empty = [row["input"] for row in rows if not row["predicted"]]
    assert set(UNREADABLE[2:]) <= set(empty)
    predictor = toolkit.load_run(FIXTURE / run, runtime=RUNTIMES[run])
    predictions = predictor.predict(UNREADABLE + [rows[0]["input"]], 3)
    assert [p.guesses for p in predictions[:-1]] == [()] * len(UNREADABLE)
    assert predictions[-1].label == rows[0]["class_1"]
    assert math.isclose(predictions[-1].probability, float(rows[0]["probability_1"]), abs_tol=TOLERANCE)


def test_every_entry_point_answers_through_one_ranking(cli, tmp_path, monkeypatch):
    """Predictor.predict, the server, `toolkit predict --input` and the batch engine all rank
    through `toolkit.ranking.rank` (counted, not replaced) and give the same answers."""
    import httpx
    from conftest import live_server

    from toolkit import ranking
    from toolkit.batch import predict_files
    from toolkit.server import create_app

    calls = []
    real = ranking.rank
    monkeypatch.setattr(ranking, "rank", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    names = NAMES.read_text(encoding="utf-8").splitlines()[:40]
    predictor = toolkit.load_run(FIXTURE / "ngram")

    answers = [p.to_dict() for p in predictor.predict(names, 3)]
    assert len(calls) == 1
    with live_server(create_app(predictor, max_length=40, max_batch=50)) as url:
        served = httpx.post(f"{url}/predict", json={"names": names, "top": 3}).json()["results"]
    assert len(calls) == 2
    source = tmp_path / "names.txt"
    source.write_text("\n".join(names) + "\n", encoding="utf-8")
    result = cli(["predict", "--run", str(FIXTURE / "ngram"), "--input", str(source), "--json",
                  "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert len(calls) == 3
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    predict_files(FIXTURE / "ngram", str(source), tmp_path / "parts", top=3)
    assert len(calls) == 4
    part = pd.read_parquet(tmp_path / "parts" / "part-00000.parquet")

    assert_close(served, answers, "server")
    assert_close(written, answers, "json lines")
    assert part["input"].tolist() == names
    for rank in range(3):
        assert part[f"class_{rank + 1}"].tolist() == [a["predictions"][rank]["label"] for a in answers]
        logs = [a["predictions"][rank]["log_probability"] for a in answers]
        np.testing.assert_allclose(part[f"log_probability_{rank + 1}"], logs, rtol=0, atol=TOLERANCE)


HOSTILE = [",", '"', "\r", "\n", "\t", "=", "+", "-", "@", " ", "'", "a", "é", "😀", "\x00", "\u2028"]


def test_the_columnar_csv_writer_writes_what_csv_writer_writes():
    """Texts of hostile characters (quotes, delimiters, line breaks, formula starts), escaped or
    raw, in cells built by columns: byte for byte what csv.writer writes for the same rows."""
    import random

    from toolkit.csv_cells import safe_cell
    from toolkit.prediction_output import text_cells

    rng = random.Random(0)
    texts = ["".join(rng.choices(HOSTILE, k=rng.randint(1, 6))) for _ in range(3000)] + ["Smith", "a,b"]
    for escape in (True, False):
        cells = text_cells(texts, escape)
        for text, cell in zip(texts, cells, strict=True):
            buffer = io.StringIO()
            csv.writer(buffer).writerow([safe_cell(text) if escape else text, ""])
            assert cell == buffer.getvalue()[:-3], repr(text)


def test_probabilities_are_written_as_python_formats_them():
    from toolkit.prediction_output import fixed6

    rng = np.random.default_rng(0)
    edges = [0.0, 1.0, 0.5e-6, 1.5e-6, 2.5e-6, 0.1234565, 0.9999995, 1e-300]
    values = np.concatenate([rng.random(20000), edges])
    high, low = fixed6(values.reshape(-1, 1))
    assert [h + lo for h, lo in zip(high[:, 0], low[:, 0], strict=True)] == [f",{v:.6f}" for v in values]
