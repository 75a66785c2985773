"""Probabilities you can act on: temperature scaling, ECE, abstention and conformal prediction
sets, as numbers (hand-made and generated cases) and through every prediction path."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import live_server

import toolkit
from toolkit.calibration import (
    BINS,
    Calibration,
    conformal_scores,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    prediction_sets,
    with_temperature,
)
from toolkit.datasets import names
from toolkit.inference import predict_proba
from toolkit.splits import split_dataset

NAMES = ["Hinton", "Nakamura", "Abel"]


def test_ece_of_a_hand_made_case():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    truth = np.array([0, 1, 0, 1])
    # Bins of width 1/15: 0.9 -> bin 13 (two texts, one right: |0.5 - 0.9| = 0.4, weight 1/2);
    # 0.6 sits on an inner edge and goes to the bin above it (right: 0.4, weight 1/4);
    # 0.7 -> bin 10 (right: 0.3, weight 1/4).
    assert BINS == 15
    by_hand = 0.5 * 0.4 + 0.25 * 0.4 + 0.25 * 0.3
    assert expected_calibration_error(probabilities, truth) == pytest.approx(by_hand)
    # A sure and right prediction (top probability exactly 1) falls in the last bin: no gap.
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == 0.0


def _known(count: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Texts whose true class probabilities are known: drawn, then a class drawn from them."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(classes, 0.3), size=count)
    truth = np.array([rng.choice(classes, p=row) for row in probabilities])
    return probabilities, truth


def test_temperature_undoes_overconfidence():
    probabilities, truth = _known(4000, 5, seed=1)
    overconfident = with_temperature(probabilities, 0.5)  # what a model trained too long reports
    temperature = fit_temperature(overconfident, truth)
    assert temperature == pytest.approx(2.0, rel=0.1)
    repaired = with_temperature(overconfident, temperature)
    assert expected_calibration_error(repaired, truth) < expected_calibration_error(overconfident, truth) / 2
    assert (repaired.argmax(axis=1) == overconfident.argmax(axis=1)).all()  # the answers stay


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_sets_cover_the_true_class_as_often_as_asked_on_generated_data(coverage):
    calibration_part = _known(3000, 6, seed=2)
    test_probabilities, test_truth = _known(20000, 6, seed=3)
    fitted = fit_calibration("none", calibration_part, calibration_part)
    inside = prediction_sets(test_probabilities, fitted.threshold(coverage))
    covered = inside[np.arange(len(test_truth)), test_truth].mean()
    assert coverage - 0.015 <= covered <= coverage + 0.03
    # and not by answering everything: sets stay smaller than all six classes
    assert inside.sum(axis=1).mean() < 5


def test_too_few_calibration_texts_give_every_class():
    fitted = Calibration("none", 1.0, (0.1, 0.2, 0.3), "calibration")
    assert math.isinf(fitted.threshold(0.9))  # ceil(4 * 0.9) = 4 > 3 scores
    assert prediction_sets(np.array([[0.7, 0.2, 0.1]]), fitted.threshold(0.9)).all()


def test_the_calibration_part_is_carved_from_training_and_kept_apart(names_data):
    for strategy in ("leakage-free", "stratified", "tutorial"):
        plain = split_dataset(names_data, strategy, seed=0)
        carved = split_dataset(names_data, strategy, seed=0, calibration_size=0.1)
        assert carved.calibration is not None and plain.calibration is None
        assert len(carved.test) == len(plain.test) and len(carved.val) == len(plain.val)
        assert len(carved.train) + len(carved.calibration) == len(plain.train)
        assert len(carved.calibration) == pytest.approx(0.1 * len(plain.train), rel=0.05)
        held = set(carved.calibration.texts)
        if strategy == "leakage-free":  # no calibration text is seen in training
            assert not held & set(carved.train.texts)
            assert not held & (set(carved.val.texts) | set(carved.test.texts))


@pytest.fixture(scope="module")
def names_data(names_dir):
    return names.load(data_dir=str(names_dir), normalization="raw")


# -- a real run ------------------------------------------------------------------------------


def test_temperature_is_fitted_on_validation_and_the_sets_on_the_calibration_part(trained_run):
    split, model, encoder = trained_run.split, trained_run.model, trained_run.encoder
    val_raw = predict_proba(model, encoder, split.val.texts)
    recorded = json.loads((trained_run.run_dir / "calibration.json").read_text())
    assert recorded["method"] == "temperature" and recorded["source"] == "calibration"
    assert recorded["temperature"] == pytest.approx(fit_temperature(val_raw, split.val.targets), rel=1e-6)
    # The conformal scores are those of the calibration part, with that temperature.
    held_raw = predict_proba(model, encoder, split.calibration.texts)
    temperature = recorded["temperature"]
    expected = conformal_scores(with_temperature(held_raw, temperature), split.calibration.targets)
    np.testing.assert_allclose(recorded["scores"], np.sort(expected), atol=1e-7)
    assert set(split.calibration.texts).isdisjoint(split.train.texts + split.val.texts + split.test.texts)
    # Every prediction uses the temperature: the loaded run, the in-memory one and the test split.
    # (in torch; the numpy runtime is within float32 rounding of it: tests/test_torch_rnn_numpy.py)
    loaded = toolkit.load_run(trained_run.run_dir, runtime="torch")
    raw = predict_proba(model, encoder, NAMES)
    np.testing.assert_allclose(loaded.predict_proba(NAMES), with_temperature(raw, recorded["temperature"]),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(trained_run.predict_proba(NAMES), loaded.predict_proba(NAMES), rtol=1e-6)
    test_raw = predict_proba(model, encoder, split.test.texts)
    np.testing.assert_allclose(trained_run.test_probabilities, with_temperature(test_raw, temperature),
                               rtol=1e-6, atol=1e-9)


def test_metrics_hold_calibration_conformal_and_abstention(trained_run):
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    numbers = metrics["calibration"]
    truth = trained_run.test_targets
    ece = expected_calibration_error(trained_run.test_probabilities, truth)
    assert numbers["ece_after"] == pytest.approx(ece)
    for key in ("ece", "brier", "log_loss"):
        assert numbers[f"{key}_after"] >= 0 and numbers[f"{key}_before"] >= 0
    assert [level["coverage"] for level in metrics["conformal"]["levels"]] == [0.8, 0.9, 0.95]
    sizes = [level["mean_set_size"] for level in metrics["conformal"]["levels"]]
    assert sizes == sorted(sizes) and sizes[0] >= 1
    assert metrics["summary"]["ece"] == numbers["ece_after"]
    assert metrics["summary"]["set_size_90"] == sizes[1]
    table = metrics["abstention"]["table"]
    assert [row["accuracy_target"] for row in table] == [0.8, 0.9, 0.95, 0.99]
    for row in table:  # answering above the threshold reaches the target on the test split
        if row["accuracy"] is not None:
            answered = trained_run.test_probabilities.max(axis=1) >= row["min_confidence"]
            right = trained_run.test_probabilities.argmax(axis=1) == truth
            assert right[answered].mean() >= row["accuracy_target"]
            assert answered.mean() == pytest.approx(row["coverage"])
    page = (trained_run.run_dir / "report.html").read_text()
    for anchor in ('id="calibration-numbers"', 'id="abstention-table"', 'id="sets-table"',
                   'id="sets-by-class"', 'alt="reliability diagram before and after calibration"'):
        assert anchor in page


def test_compare_shows_ece_and_set_size(cli, trained_run, tmp_path):
    import re
    import shutil

    from toolkit.rendering import compare_html

    other = shutil.copytree(trained_run.run_dir, tmp_path / "other")
    metrics = json.loads((other / "metrics.json").read_text())
    changed = {"ece": metrics["summary"]["ece"] + 0.1, "set_size_90": 9.5, "set_coverage_90": 0.99}
    metrics["summary"] |= changed
    (other / "metrics.json").write_text(json.dumps(metrics))
    result = cli(["compare", str(trained_run.run_dir), str(other)])
    assert result.exit_code == 0, result.output
    assert "ece" in result.stdout and "set_size_90" in result.stdout and "9.5" in result.stdout
    page = compare_html([trained_run.run_dir, other])

    def row(name: str) -> str:
        return re.search(rf"<tr><th>{name}</th>.*?</tr>", page).group(0)

    assert row("ece").index("best") < row("ece").index("+0.100")  # lower is better: the first run
    assert "best" in row("set size 90").split("</td>")[0]
    assert "best" not in row("set coverage 90")  # near 0.9 is right, not high


# -- every output format -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(trained_run):
    return toolkit.load_run(trained_run.run_dir)


def _confidences(predictor, names):
    return predictor.predict_proba(names).max(axis=1)


def test_python_api_abstains_and_gives_sets(predictor):
    confidences = _confidences(predictor, NAMES)
    cut = float(np.median(confidences))  # some names answer, some abstain
    predictions = predictor.predict(NAMES, 2, min_confidence=cut, coverage=0.9)
    for prediction, confidence in zip(predictions, confidences, strict=True):
        assert prediction.abstained is bool(confidence < cut)
        assert (prediction.label == "") is prediction.abstained
        members = [g.probability for g in prediction.set]
        assert members == sorted(members, reverse=True)
        assert prediction.set[0].label == prediction.guesses[0].label
    wide = predictor.predict(NAMES, 2, coverage=0.95)
    assert all(len(w.set) >= len(p.set) for w, p in zip(wide, predictions, strict=True))
    plain = predictor.predict(NAMES, 2)[0]
    assert plain.abstained is None and plain.set is None and set(plain.to_dict()) == {"input", "predictions"}


def test_cli_text_and_json(cli, trained_run, predictor):
    run = str(trained_run.run_dir)
    result = cli(["predict", "--run", run, "--min-confidence", "1", "--coverage", "0.9", "Nakamura"])
    assert result.exit_code == 0, result.output
    assert "unknown (abstained" in result.stdout and "\nset: " in result.stdout
    result = cli(["predict", "--run", run, "--json", "--min-confidence", "0", "--coverage", "0.9", *NAMES])
    rows = json.loads(result.stdout)
    expected = predictor.predict(NAMES, 3, min_confidence=0, coverage=0.9)
    assert [r["abstained"] for r in rows] == [False] * 3
    assert [[m["label"] for m in r["set"]] for r in rows] == [[g.label for g in p.set] for p in expected]


def test_cli_csv_and_json_lines_files(cli, trained_run, predictor, tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("\n".join(NAMES) + "\n")
    cut = float(np.median(_confidences(predictor, NAMES)))
    out = tmp_path / "out.csv"
    args = ["predict", "--run", str(trained_run.run_dir), "--input", str(source),
            "--min-confidence", str(cut), "--coverage", "0.9"]
    result = cli([*args, "-o", str(out), "-n", "2"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    expected = predictor.predict(NAMES, 2, min_confidence=cut, coverage=0.9)
    assert [r["abstained"] for r in rows] == [str(p.abstained).lower() for p in expected]
    assert "true" in {r["abstained"] for r in rows} and "false" in {r["abstained"] for r in rows}
    for row, prediction in zip(rows, expected, strict=True):
        class_cells = [row["predicted"], row["probability"], row["class_1"], row["class_2"]]
        assert (class_cells == ["", "", "", ""]) is prediction.abstained
        assert json.loads(row["set"]) == [g.label for g in prediction.set]
    lines = cli([*args, "--json"]).stdout.splitlines()
    assert [json.loads(line)["abstained"] for line in lines] == [p.abstained for p in expected]
    assert [len(json.loads(line)["set"]) for line in lines] == [len(p.set) for p in expected]


def test_partitions_carry_abstained_and_set(trained_run, predictor, tmp_path):
    from toolkit.batch import predict_files

    source = tmp_path / "in"
    source.mkdir()
    (source / "a.txt").write_text("\n".join(NAMES) + "\n")
    cut = float(np.median(_confidences(predictor, NAMES)))
    result = predict_files(trained_run.run_dir, str(source), tmp_path / "out", top=2,
                           min_confidence=cut, coverage=0.9)
    frame = pd.read_parquet(tmp_path / "out" / result.files[0])
    expected = predictor.predict(NAMES, 2, min_confidence=cut, coverage=0.9)
    assert frame["abstained"].tolist() == [p.abstained for p in expected]
    assert [json.loads(s) for s in frame["set"]] == [[g.label for g in p.set] for p in expected]
    assert frame["class_1"].isna().tolist() == [p.abstained for p in expected]
    as_csv = predict_files(trained_run.run_dir, str(source), tmp_path / "csv", top=2, output_format="csv",
                           min_confidence=cut, coverage=0.9)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "csv" / as_csv.files[0]).read_text())))
    assert [r["abstained"] for r in rows] == [str(p.abstained).lower() for p in expected]  # as predict's CSV


def test_server_abstains_and_gives_sets(predictor):
    import httpx

    from toolkit.server import create_app

    with live_server(create_app(predictor)) as url:
        one = httpx.get(f"{url}/predict/Nakamura", params={"min_confidence": 1, "coverage": 0.9}).json()
        assert one["abstained"] is True and one["set"][0]["label"] == one["predictions"][0]["label"]
        body = {"names": NAMES, "min_confidence": 0, "coverage": 0.8}
        many = httpx.post(f"{url}/predict", json=body).json()
        assert [r["abstained"] for r in many["results"]] == [False] * 3
        assert all(r["set"] for r in many["results"])
        plain = httpx.get(f"{url}/predict/Nakamura").json()
        assert "abstained" not in plain and "set" not in plain
        for params in ({"coverage": 1}, {"coverage": 0}, {"min_confidence": 1.5}):
            assert httpx.get(f"{url}/predict/Nakamura", params=params).status_code == 422
        assert httpx.post(f"{url}/predict", json={"names": NAMES, "min_confidence": -0.1}).status_code == 422


@pytest.mark.parametrize("option, value, message", [
    ("--coverage", "1", "coverage must be between 0 and 1 (exclusive)"),
    ("--coverage", "0", "coverage must be between 0 and 1 (exclusive)"),
    ("--coverage", "-0.5", "coverage must be between 0 and 1 (exclusive)"),
    ("--min-confidence", "1.01", "min confidence must be between 0 and 1"),
    ("--min-confidence", "-0.1", "min confidence must be between 0 and 1"),
])
def test_bad_values_are_refused_in_one_line_before_the_model_loads(cli, tmp_path, option, value, message):
    # The run folder does not even exist: the value is refused before anything is read.
    result = cli(["predict", "--run", str(tmp_path / "nowhere"), option, value, "Hinton"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_an_old_run_without_calibration_predicts_but_refuses_sets(cli, trained_run, tmp_path):
    import shutil

    folder = shutil.copytree(trained_run.run_dir, tmp_path / "old")
    (folder / "calibration.json").unlink()
    # a run whose metrics were measured calibrated is damaged without the file, not old
    damaged = cli(["predict", "--run", str(folder), "Hinton"])
    assert damaged.exit_code == 2 and damaged.stderr == (
        f"Error: '{folder}' is not a complete toolkit run folder (missing calibration.json, which its "
        "metrics.json was measured with); copy the run folder whole, or train it again.\n")
    metrics = json.loads((folder / "metrics.json").read_text())
    del metrics["calibration"]  # as a run written before calibration existed
    (folder / "metrics.json").write_text(json.dumps(metrics))
    old = toolkit.load_run(folder)
    assert old.calibration is None
    result = cli(["predict", "--run", str(folder), "--coverage", "0.9", "Hinton"])
    assert result.exit_code == 2 and "holds no conformal scores" in result.stderr
    import httpx

    from toolkit.server import create_app

    with live_server(create_app(old)) as url:
        refused = httpx.get(f"{url}/predict/Hinton", params={"coverage": 0.9})
        assert refused.status_code == 422 and "holds no conformal scores" in refused.json()["detail"]
        assert httpx.get(f"{url}/predict/Hinton", params={"min_confidence": 0.5}).status_code == 200
    (folder / "calibration.json").write_text(json.dumps({"method": "temperature", "temperature": "hot"}))
    result = cli(["predict", "--run", str(folder), "Hinton"])
    assert result.exit_code == 2 and "calibration.json' is malformed" in result.stderr
