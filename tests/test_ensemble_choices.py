"""bench/ensemble_choices.py scores the ensemble's combination rules as the plugin computes them,
and scores a rule that fits weights only on texts it was not fitted to."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO, names_folder


@pytest.fixture(scope="module")
def choices():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import ensemble_choices
    finally:
        sys.path.remove(str(REPO / "bench"))
    return ensemble_choices


@pytest.fixture(scope="module")
def trained(choices, tmp_path_factory):
    """The bench's ensemble (ngram,cnn) trained on four real languages (150 names each), as the bench
    trains it."""
    folder = tmp_path_factory.mktemp("four-languages")
    names_folder(folder, 150)
    params = {"dataset.data_dir": str(folder), "train.threads": 1, "train.epochs": 3,
              "model.members": "ngram,cnn"}
    return choices.ensemble_members("folder", params, seed=0)


def test_the_bench_fits_the_weights_and_reports_the_accuracy_the_ensemble_does(choices, trained):
    log_probs, targets = trained["log_probs"], trained["targets"]
    assert log_probs.shape == (2, len(targets), 4) and trained["names"] == ["ngram", "cnn"]
    weights = choices.mixture_weights(log_probs, targets)
    np.testing.assert_allclose(weights, trained["weights"], atol=1e-4)
    in_sample = choices.accuracy(choices.combined(log_probs, weights, str(trained["combine"])), targets)
    assert in_sample == pytest.approx(trained["reported"])


def test_a_fitted_rule_scores_each_validation_text_once_with_weights_fitted_on_the_other_half(
    choices, trained
):
    log_probs, targets = trained["log_probs"], trained["targets"]
    seen: list[int] = []

    def weigh(fit_log_probs: np.ndarray, fit_targets: np.ndarray) -> np.ndarray:
        seen.append(len(fit_targets))
        return choices.mixture_weights(fit_log_probs, fit_targets)

    value = choices.cross_fitted(log_probs, targets, weigh, "log-probability", seed=0)
    assert sum(seen) == len(targets) and max(seen) - min(seen) <= len(set(targets.tolist()))
    # equal weights fit nothing, so cross-fitting them is scoring them on the whole split
    equal = choices.cross_fitted(log_probs, targets, choices.equal_weights, "probability", seed=0)
    plain_mean = choices.combined(log_probs, np.array([0.5, 0.5]), "probability")
    assert equal == choices.accuracy(plain_mean, targets)
    assert 0.25 < value <= 1


def test_a_fitted_rule_is_listed_cross_fitted_and_in_sample_as_the_ensemble_reports_it(choices, trained):
    log_probs, targets = trained["log_probs"], trained["targets"]
    rows = choices.rule_rows("four", 0, log_probs, targets, "", ["log-probability, mixture"])
    by_system = {row["system"]: row["val_accuracy"] for row in rows}
    assert list(by_system) == [f"log-probability, mixture ({how})" for how in ("cross-fitted", "in-sample")]
    weights = choices.mixture_weights(log_probs, targets)
    assert by_system["log-probability, mixture (in-sample)"] == choices.accuracy(
        choices.combined(log_probs, weights, "log-probability"), targets)
    assert by_system["log-probability, mixture (cross-fitted)"] == choices.cross_fitted(
        log_probs, targets, choices.mixture_weights, "log-probability", seed=0)


def test_a_candidate_is_scored_on_top_of_the_baseline_member_and_in_its_place(choices, trained):
    log_probs = trained["log_probs"]
    third, fourth = log_probs[0] - 1.0, log_probs[1] - 2.0  # stand-ins told apart by their values
    sets = choices.member_sets(log_probs, {"third": third, "fourth": fourth}, on_top="third")
    assert list(sets) == ["", "+ third: ", "+ third + fourth: ", "fourth for third: "]
    np.testing.assert_array_equal(sets["+ third: "], np.stack([*log_probs, third]))
    np.testing.assert_array_equal(sets["+ third + fourth: "], np.stack([*log_probs, third, fourth]))
    np.testing.assert_array_equal(sets["fourth for third: "], np.stack([*log_probs, fourth]))
    # without a baseline member, each candidate joins the trained members alone
    plain = choices.member_sets(log_probs, {"third": third, "fourth": fourth})
    assert list(plain) == ["", "+ third: ", "+ fourth: "]
    np.testing.assert_array_equal(plain["+ fourth: "], np.stack([*log_probs, fourth]))
