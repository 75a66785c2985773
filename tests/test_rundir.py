"""The run folder: written whole and atomically, read back, re-rendered, compared."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

import toolkit
from toolkit.compare import compare_runs
from toolkit.rundir import CLAIM, REQUIRED, claim_default_run_dir, read_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_a_run_folder_has_every_file(trained_run):
    folder = trained_run.run_dir
    expected = set(REQUIRED) | {
        "per_class.md", "confusion.md", "loss.png", "confusion.png", "report.html", "mistakes.csv",
        "config.toml",
        "explain.json",
        "calibration.json", "reliability.png", "abstention.png",
    }
    assert {p.name for p in folder.iterdir()} == expected  # and no leftover temporary files
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_config_records_everything_needed_to_repeat_the_run(trained_run):
    config = json.loads((trained_run.run_dir / "config.json").read_text())
    assert config["format_version"] == 1 and config["seed"] == 0
    assert config["dataset"]["name"] == "names" and config["dataset"]["plugin"] == "toolkit.datasets.names"
    assert config["model"] == {
        "name": "gru", "plugin": "toolkit.plugins.torch_rnn", "distribution": "toolkit",
        "version": toolkit.__version__, "params": trained_run.plan.params["model"],
    }
    assert config["model"]["params"]["hidden_size"] == 48
    assert config["train"]["epochs"] == 2
    assert config["split"]["strategy"] == "leakage-free"
    assert config["split"]["sizes"] == trained_run.split.sizes()
    assert config["provenance"]["counts"]["Arabic"] == 2000
    assert len(config["provenance"]["sha256"]) == 18
    assert config["classes"] == list(trained_run.classes)


def test_weights_encoder_and_labels_are_safe_formats(trained_run):
    folder = trained_run.run_dir
    weights = load_file(folder / "model.safetensors")
    state = trained_run.model.state_dict()
    assert set(weights) == set(state)
    assert all((weights[k] == state[k]).all() for k in state)
    encoder = json.loads((folder / "encoder.json").read_text())
    assert encoder["name"] == "onehot" and encoder["state"] == trained_run.encoder.state()
    assert json.loads((folder / "labels.json").read_text()) == list(trained_run.classes)


def test_tables_read_back_equal_the_report(trained_run):
    record = read_run(trained_run.run_dir)
    report = trained_run.report
    pd.testing.assert_frame_equal(record.report.confusion, report.confusion, check_dtype=False)
    pd.testing.assert_frame_equal(
        record.report.per_class.drop(columns="confused_with"),
        report.per_class.drop(columns="confused_with"), check_dtype=False,
    )
    assert record.report.summary.loc["accuracy", "value"] == pytest.approx(trained_run.test_accuracy())
    assert len(record.history) == 2 and {"train_loss", "val_loss"} <= set(record.history.columns)
    assert "| Arabic" in (trained_run.run_dir / "per_class.md").read_text()


def test_plots_are_real_pngs(trained_run):
    import matplotlib.image

    for name in ("loss.png", "confusion.png"):
        path = trained_run.run_dir / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        assert 300 <= width <= 3000 and 250 <= height <= 3000
        assert image.std() > 0.01  # not a blank canvas


def test_html_report_names_every_class_and_embeds_the_plots(trained_run):
    page = (trained_run.run_dir / "report.html").read_text()
    per_class = page.split('<table id="per-class">')[1].split("</table>")[0]
    for name in trained_run.classes:
        assert f"<td>{name}</td>" in per_class
    assert page.count('src="data:image/png;base64,') == 4  # loss, confusion, reliability, abstention
    assert "gru on names" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # self-contained: nothing fetched


def test_html_report_reads_like_a_report(trained_run):
    page = (trained_run.run_dir / "report.html").read_text()
    assert "{&#39;" not in page and "{'" not in page  # no Python dict reprs
    examples = f"{len(trained_run.test_targets):,}"
    assert f"<b>{examples}</b>" in page and f"{len(trained_run.test_targets)}.000" not in page
    for group in ("model", "train"):  # one row per parameter
        for param in trained_run.plan.params[group]:
            assert f"<tr><th>{param}</th><td>" in page
    assert "<tr><th>hidden_size</th><td>48</td></tr>" in page
    assert "<tr><th>lr</th><td>0.005</td></tr>" in page
    assert "Interrupted" not in page
    # Per-class rows sorted by F1, best first (ties in any order: they are broken by accuracy).
    f1 = trained_run.report.per_class["f1"].fillna(-1)
    per_class = page.split('<table id="per-class">')[1].split("</table>")[0]
    shown_order = sorted(f1.index, key=lambda name: per_class.index(f"<td>{name}</td>"))
    assert [f1[name] for name in shown_order] == sorted(f1, reverse=True)


def test_mistakes_are_real_bounded_and_shown(trained_run):
    from toolkit.evaluation import MISTAKES_PER_PAIR

    mistakes = read_run(trained_run.run_dir).mistakes
    classes = trained_run.classes
    test = trained_run.split.test
    truth, predicted = trained_run.test_targets, trained_run.test_predictions()
    wrong = {
        (text, classes[t], classes[p])
        for text, t, p in zip(test.texts, truth, predicted, strict=True)
        if t != p
    }
    assert len(mistakes) > 0
    assert {(r.text, r.true, r.predicted) for r in mistakes.itertuples()} <= wrong
    assert mistakes.groupby(["true", "predicted"]).size().max() <= MISTAKES_PER_PAIR
    page = (trained_run.run_dir / "report.html").read_text()
    confused = page.split('<table id="confused">')[1].split("</table>")[0]
    first = mistakes.iloc[0]  # the most frequent pair comes first, with its examples
    row = confused.split("</tr>")[1]
    assert f"<td>{first.true}</td><td>{first.predicted}</td>" in row
    assert str(first.text) in row


def test_report_escapes_what_the_run_folder_says(trained_run, tmp_path):
    from toolkit.rendering import rerender

    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    hostile = '<img src=x onerror="alert(1)">'
    for name in ("per_class.csv", "confusion.csv", "mistakes.csv", "config.json", "labels.json"):
        path = copy / name
        path.write_text(path.read_text().replace("Scottish", hostile.replace('"', "'")))
    config = json.loads((copy / "config.json").read_text())
    config["model"]["params"]["pooling"] = "</td><script>alert(2)</script>"
    (copy / "config.json").write_text(json.dumps(config))
    page = rerender(copy).read_text()
    assert "<img src=x" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=" in page and "&lt;/td&gt;&lt;script&gt;" in page


def test_an_interrupted_run_says_so(tmp_path, monkeypatch):
    from toolkit import training

    real_epoch = training._Loop.run_epoch

    def interrupt_in_epoch_two(self, epoch, batches, report):
        if epoch == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises
        return real_epoch(self, epoch, batches, report)

    monkeypatch.setattr(training._Loop, "run_epoch", interrupt_in_epoch_two)
    result = toolkit.run(
        dataset="names", model="gru",
        params={"model.hidden_size": 8, "train.epochs": 3, "train.threads": 1},
        output=tmp_path / "run", progress=False,
    )
    assert result.stop_reason.startswith("interrupted")
    page = (result.run_dir / "report.html").read_text()
    assert "Interrupted after 1 of 3 epochs" in page


def test_report_command_rerenders(cli, trained_run, tmp_path):
    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    (copy / "report.html").unlink()
    (copy / "loss.png").unlink()
    (copy / "mistakes.csv").unlink()  # runs written before it existed still render
    result = cli(["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").is_file() and (copy / "loss.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "accuracy" in result.stdout and "Vietnamese" in result.stdout
    examples = f"{len(trained_run.test_targets):,}"  # a count, printed as one
    [examples_line] = [line for line in result.stdout.splitlines() if " examples " in line]
    assert f" {examples} " in examples_line and ".000" not in examples_line


def test_compare_two_runs(cli, trained_run, tmp_path):
    other = shutil.copytree(trained_run.run_dir, tmp_path / "other")
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["summary"]["accuracy"] = 0.5
    (other / "metrics.json").write_text(json.dumps(metrics))
    summary, per_class = compare_runs([trained_run.run_dir, other])
    assert list(summary.columns) == [trained_run.run_dir.name, "other"]
    assert summary.loc["accuracy", "other"] == 0.5
    assert summary.loc["model", "other"] == "gru"
    assert list(per_class.index) == list(trained_run.classes)
    assert (per_class.iloc[:, 0] == per_class.iloc[:, 1]).all()
    result = cli(["compare", str(trained_run.run_dir), str(other)])
    assert result.exit_code == 0, result.output
    assert "Per-class accuracy" in result.stdout and "Scottish" in result.stdout
    nowhere = tmp_path / "missing" / "page.html"
    refused = cli(["compare", str(trained_run.run_dir), str(other), "--html", str(nowhere)])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert refused.stdout == ""  # refused before any table is printed


def test_existing_output_folder_is_refused_before_training(cli, trained_run):
    result = cli(["run", "--dataset", "names", "--model", "gru", "-o", str(trained_run.run_dir)])
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.stderr


def test_a_crash_leaves_no_folder_that_looks_complete(tmp_path, trained_run):
    from toolkit import rundir

    def broken(record):
        assert (record.path / "model.safetensors").is_file()  # the data files were written first
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        rundir.write_run(
            tmp_path / "run", config=read_run(trained_run.run_dir).config,
            weights=trained_run.model.state_dict(),
            encoder={"name": "onehot", "params": {}, "state": trained_run.encoder.state()},
            classes=trained_run.classes, report=trained_run.report, history=trained_run.history,
            mistakes=read_run(trained_run.run_dir).mistakes, render=broken,
        )
    assert list(tmp_path.iterdir()) == []


def test_malformed_mistakes_file_is_one_line_error(cli, trained_run, tmp_path):
    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    (copy / "mistakes.csv").write_text("name,guess\nHinton,English\n")
    result = cli(["report", str(copy)])
    assert result.exit_code == 2
    assert "malformed table" in result.stderr and "Traceback" not in result.output


def test_incomplete_folder_is_refused(cli, trained_run, tmp_path):
    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    (copy / "metrics.json").unlink()
    result = cli(["report", str(copy)])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: '{copy}' is not a complete toolkit run folder (missing metrics.json); "
                             "copy the run folder whole, or train it again.\n")


def test_class_names_read_back_exactly(trained_run, tmp_path):
    from toolkit.evaluation import evaluate_predictions

    # names pandas would otherwise read as a number or as missing
    odd = evaluate_predictions([0, 1, 2, 1], np.array([
        [0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7],
    ]), ["1", "NA", "None"])
    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    odd.per_class.to_csv(copy / "per_class.csv")
    odd.confusion.to_csv(copy / "confusion.csv")
    report = read_run(copy).report
    assert list(report.per_class.index) == ["1", "NA", "None"]
    assert list(report.confusion.index) == list(report.confusion.columns) == ["1", "NA", "None"]
    assert report.per_class.loc["NA", "confused_with"] == "None"
    assert pd.isna(report.per_class.loc["1", "confused_with"])
    assert report.per_class.loc["None", "precision"] == pytest.approx(0.5)


def test_default_run_folders_of_the_same_second_do_not_collide(tmp_path, monkeypatch):
    from datetime import datetime

    import toolkit.rundir

    class FrozenClock:
        @staticmethod
        def now(tz=None):
            return datetime(2026, 11, 26, 14, 30, 5, tzinfo=tz)

    monkeypatch.setattr(toolkit.rundir, "datetime", FrozenClock)
    first = claim_default_run_dir("names", "gru", root=tmp_path)
    assert first.path == tmp_path / "20261126-143005-names-gru"
    assert (first.path / CLAIM).is_file()  # claimed: created, with a lock in it
    second = claim_default_run_dir("names", "gru", root=tmp_path)
    assert second.path == tmp_path / "20261126-143005-names-gru-2"
    third = claim_default_run_dir("names", "gru", root=tmp_path)
    assert third.path.name == "20261126-143005-names-gru-3"
    second.release()
    assert not second.path.exists() and first.path.is_dir()


def rerendered_copy(trained_run, folder, config_changes=None, epochs=None):
    """A copy of the shared run with parts of its config.json's sections replaced (and its
    history cut to `epochs` rows), re-rendered; returns the copy's folder."""
    from toolkit.rendering import rerender

    copy = shutil.copytree(trained_run.run_dir, folder)
    config = json.loads((copy / "config.json").read_text())
    for section, values in (config_changes or {}).items():
        config[section].update(values)
    (copy / "config.json").write_text(json.dumps(config))
    if epochs is not None:
        history = (copy / "history.csv").read_text().splitlines()
        (copy / "history.csv").write_text("\n".join(history[:1 + epochs]) + "\n")
    rerender(copy)
    return copy


def test_a_fresh_report_names_the_run_by_its_folder(trained_run):
    """Written by `toolkit run` (not re-rendered): the run is named by its own folder, never
    by the private folder its files were written in, in the text and the page's title."""
    page = (trained_run.run_dir / "report.html").read_text()
    name = trained_run.run_dir.name
    assert ".partial-" not in page
    assert f"Run <code>{name}</code>" in page
    assert f"<title>{name}: gru on names</title>" in page


def test_patience_out_on_the_last_epoch_is_no_early_stop_and_the_kept_epoch_is_named(trained_run, tmp_path):
    early = "early stop: no better validation loss for 1 epochs"
    last = rerendered_copy(trained_run, tmp_path / "last", {"training": {
        "stop_reason": early, "best_epoch": 1, "epochs_planned": 2}})
    page = (last / "report.html").read_text()
    assert "Stopped early" not in page and 'class="banner' not in page
    assert '<p id="status">Completed 2 of 2 epochs; best: epoch 1 ' in page

    stopped = rerendered_copy(trained_run, tmp_path / "stopped", {"training": {
        "stop_reason": early, "best_epoch": 1, "epochs_planned": 5}}, epochs=2)
    banner = (stopped / "report.html").read_text().split('<div class="banner')[1].split("</div>")[0]
    assert "Stopped early after 2 of 5 epochs; best: epoch 1" in banner

    fresh = (trained_run.run_dir / "report.html").read_text()  # a run that completed, as written
    assert f"Completed 2 of 2 epochs; best: epoch {trained_run.best_epoch} " in fresh


def test_the_loss_plot_says_when_training_loss_is_not_like_validation_loss(trained_run, tmp_path):
    plain = rerendered_copy(trained_run, tmp_path / "plain")
    assert 'id="loss-note"' not in (plain / "report.html").read_text()
    smoothed = rerendered_copy(trained_run, tmp_path / "smoothed", {"train": {"label_smoothing": 0.1}})
    note = (smoothed / "report.html").read_text().split('id="loss-note">')[1].split("</p>")[0]
    assert "training loss includes label smoothing 0.1" in note and "plain cross-entropy" in note
    # The curve's label in the plot says it too: same curves, different picture.
    assert (smoothed / "loss.png").read_bytes() != (plain / "loss.png").read_bytes()


def test_report_shows_a_majority_class_baseline_beside_accuracy(trained_run):
    support = trained_run.report.per_class["support"]
    share = support.max() / support.sum()
    page = (trained_run.run_dir / "report.html").read_text()
    accuracy_card = page.split('<span class="muted">accuracy</span>')[1].split("</div>")[0]
    assert f"always {support.idxmax()}: {share:.3f}" in accuracy_card


def test_settings_where_zero_means_off_or_auto_say_so(trained_run):
    page = (trained_run.run_dir / "report.html").read_text()
    assert trained_run.plan.params["train"]["patience"] == 0
    assert "<tr><th>patience</th><td>0 (off: never stops early)</td></tr>" in page
    assert "<tr><th>threads</th><td>1</td></tr>" in page  # set: no word
    assert "<tr><th>label_smoothing</th><td>0 (off)</td></tr>" in page
    assert "<tr><th>examples</th><td>0 (off: count epochs)</td></tr>" in page
