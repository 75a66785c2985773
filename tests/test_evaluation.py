"""Evaluation numbers on hand-made predictions, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import toolkit
from toolkit.evaluation import evaluate_predictions

CLASSES = ["cat", "dog", "eel", "fox"]
# Truth: 2 cats, 3 dogs, 1 eel, no fox. Nobody is ever predicted to be an eel.
TRUTH = [0, 0, 1, 1, 1, 2]
PROBS = np.array([
    [0.70, 0.10, 0.05, 0.15],  # cat -> cat
    [0.20, 0.50, 0.10, 0.20],  # cat -> dog  (cat is 2nd: top-3 hit)
    [0.10, 0.80, 0.05, 0.05],  # dog -> dog
    [0.10, 0.60, 0.10, 0.20],  # dog -> dog
    [0.40, 0.30, 0.10, 0.20],  # dog -> cat  (dog is 2nd)
    [0.15, 0.20, 0.05, 0.60],  # eel -> fox  (eel last: outside the top 3)
])


@pytest.fixture(scope="module")
def report():
    return evaluate_predictions(TRUTH, PROBS, CLASSES)


def test_per_class_numbers(report):
    table = report.per_class
    assert list(table.index) == CLASSES
    assert table["support"].tolist() == [2, 3, 1, 0]
    assert table["correct"].tolist() == [1, 2, 0, 0]
    assert table.loc["cat", "accuracy"] == pytest.approx(0.5)
    assert table.loc["dog", "accuracy"] == pytest.approx(2 / 3)
    assert table.loc["eel", "accuracy"] == 0.0
    assert math.isnan(table.loc["fox", "accuracy"])  # never present: undefined, not 0
    assert table.loc["cat", "precision"] == pytest.approx(0.5)  # predicted cat twice, once right
    assert table.loc["dog", "precision"] == pytest.approx(2 / 3)
    assert math.isnan(table.loc["eel", "precision"])  # never predicted: undefined
    assert table.loc["fox", "precision"] == 0.0  # predicted once, wrongly
    assert table.loc["cat", "f1"] == pytest.approx(0.5)
    assert table.loc["dog", "f1"] == pytest.approx(2 / 3)
    assert table.loc["cat", "top3_accuracy"] == 1.0
    assert table.loc["eel", "top3_accuracy"] == 0.0
    assert table.loc["cat", "confused_with"] == "dog" and table.loc["cat", "confused_count"] == 1
    assert table.loc["dog", "confused_with"] == "cat" and table.loc["dog", "confused_count"] == 1
    assert table.loc["eel", "confused_with"] == "fox"
    assert pd.isna(table.loc["fox", "confused_with"]) and table.loc["fox", "confused_count"] == 0


def test_overall_numbers(report):
    summary = report.summary["value"]
    assert summary["accuracy"] == pytest.approx(3 / 6)
    # classes present in truth or predictions: cat, dog, eel, fox -> F1 0.5, 2/3, 0, 0
    assert summary["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 4)
    assert summary["weighted_f1"] == pytest.approx((2 * 0.5 + 3 * 2 / 3) / 6)
    assert summary["top3_accuracy"] == pytest.approx(5 / 6)
    expected_loss = -np.mean(np.log(PROBS[np.arange(6), TRUTH]))
    assert summary["log_loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_confusion_rows_are_true_classes(report):
    counts = report.confusion
    assert counts.index.name == "true" and counts.columns.name == "predicted"
    assert counts.loc["cat"].tolist() == [1, 1, 0, 0]
    assert counts.loc["dog"].tolist() == [1, 2, 0, 0]
    assert counts.loc["eel"].tolist() == [0, 0, 0, 1]
    assert counts.loc["fox"].tolist() == [0, 0, 0, 0]
    normalized = report.confusion_normalized
    assert normalized.loc["dog"].tolist() == pytest.approx([1 / 3, 2 / 3, 0, 0])
    assert normalized.loc["fox"].sum() == 0


def test_metrics_are_json_ready(report):
    import json

    data = json.loads(json.dumps(report.metrics()))
    assert data["per_class"]["fox"]["accuracy"] is None
    assert data["summary"]["accuracy"] == pytest.approx(0.5)


def test_shape_mismatch_is_refused():
    with pytest.raises(toolkit.ToolkitError, match="expected probabilities of shape"):
        evaluate_predictions([0, 1], np.ones((2, 3)) / 3, ["a", "b"])


def test_evaluate_a_trained_model_on_data(trained_run):
    report = toolkit.evaluate(trained_run, trained_run.split.test)
    assert isinstance(report.per_class, pd.DataFrame)
    assert report.summary.loc["accuracy", "value"] == pytest.approx(trained_run.test_accuracy())
    assert report.per_class["support"].sum() == len(trained_run.split.test)
    chance = trained_run.split.test.labels().count("Russian") / len(trained_run.split.test)
    assert report.summary.loc["accuracy", "value"] > chance


def test_two_classes():
    # scikit-learn treats two classes as a binary task with its own input rules
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1]])
    report = evaluate_predictions([0, 1, 1, 0, 0], probs, ["female", "male"])
    summary = report.summary["value"]
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["top1_accuracy"] == pytest.approx(3 / 5)  # top-k of two classes is k=1
    assert report.per_class["top1_accuracy"].tolist() == pytest.approx([2 / 3, 1 / 2])
    assert report.per_class["correct"].tolist() == [2, 1]
    assert report.confusion.loc["male"].tolist() == [1, 1]
