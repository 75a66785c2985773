"""Using a trained run: predict from Python and the CLI, batch files, the interactive prompt,
and refusing tampered or incomplete run folders."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil

import numpy as np
import pytest
from conftest import run_toolkit
from safetensors.torch import load_file, save_file

import toolkit

NAMES = ["Hinton", "Schmidhuber", "Nakamura", "O'Neill", "Dvořák"]


@pytest.fixture(scope="module")
def predictor(trained_run):
    return toolkit.load_run(trained_run.run_dir)


def test_loaded_run_predicts_like_the_trained_model(trained_run, predictor):
    assert predictor.classes == trained_run.classes
    np.testing.assert_allclose(
        predictor.predict_proba(NAMES), trained_run.predict_proba(NAMES), rtol=1e-5, atol=1e-7
    )


def test_a_finished_run_predicts_without_reading_its_folder(trained_run, predictor):
    """`RunResult.predictor()` is the in-memory twin of `load_run`: same texts, same answers,
    the same cut at train.max_length."""
    in_memory = trained_run.predictor()
    assert in_memory.path == trained_run.run_dir and in_memory.max_length == predictor.max_length
    for ours, loaded in zip(in_memory.predict(NAMES), predictor.predict(NAMES), strict=True):
        assert [g.label for g in ours.guesses] == [g.label for g in loaded.guesses]
        assert [g.probability for g in ours.guesses] == pytest.approx(
            [g.probability for g in loaded.guesses], rel=1e-5, abs=1e-7
        )
    in_memory.predict_proba(["x" * (in_memory.max_length + 1), "Hinton"])
    assert in_memory.truncated == 1


def test_new_texts_are_normalised_as_the_training_data_was(trained_run, predictor):
    assert trained_run.split.train.provenance["normalization"] == "ascii"  # the names default
    accented = predictor.predict_proba(["Dvořák", "Ślusàrski"])
    np.testing.assert_array_equal(accented, predictor.predict_proba(["Dvorak", "Slusarski"]))
    np.testing.assert_allclose(trained_run.predict_proba(["Dvořák"]), accented[:1], rtol=1e-5, atol=1e-7)
    assert predictor.predict(["Dvořák"])[0].text == "Dvořák"  # the answer names the input as given
    # Without the normalisation, the model would read 'Dvo__k' and answer differently.
    raw = trained_run.encoder.encode(["Dvořák"])[0]
    assert trained_run.encoder.decode(raw[0].tolist()) == "Dvo__k"


def test_predictions_are_consistent_probabilities(predictor):
    predictions = predictor.predict(NAMES, top=4)
    full = predictor.predict_proba(NAMES)
    for prediction, row in zip(predictions, full, strict=True):
        probs = [g.probability for g in prediction.guesses]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True)
        assert prediction.label == predictor.classes[int(row.argmax())]
        assert probs == pytest.approx(sorted(row, reverse=True)[:4])
        assert all(g.log_probability == pytest.approx(math.log(g.probability)) for g in prediction.guesses)
    assert full.sum(axis=1) == pytest.approx(np.ones(len(NAMES)))


def test_predict_cli_prints_like_the_tutorial(cli, trained_run, predictor):
    result = cli(["predict", "--run", str(trained_run.run_dir), "Hinton", "Nakamura"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 8 and lines[0] == "> Hinton" and lines[4] == "> Nakamura"
    expected = predictor.predict(["Hinton"])[0]
    for line, guess in zip(lines[1:4], expected.guesses, strict=True):
        assert line == f"({guess.log_probability:.2f}) {guess.label}"


def test_predict_cli_json_and_top(cli, trained_run):
    result = cli(["predict", "--run", str(trained_run.run_dir), "--json", "--top", "2", *NAMES])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [item["input"] for item in data] == NAMES
    for item in data:
        assert len(item["predictions"]) == 2
        for guess in item["predictions"]:
            assert guess["label"] in trained_run.classes
            assert math.exp(guess["log_probability"]) == pytest.approx(guess["probability"])


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_batch_text_file_matches_single_predictions(cli, trained_run, predictor, tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("\n".join(NAMES[:3]) + "\n\n" + "\n".join(NAMES[3:]) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(source), "-o", str(out),
                  "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = _rows(out.read_text(encoding="utf-8"))
    assert [r["input"] for r in rows] == NAMES  # the blank line is skipped
    for row, single in zip(rows, predictor.predict(NAMES), strict=True):
        assert row["predicted"] == single.label == row["class_1"]
        assert float(row["probability"]) == pytest.approx(single.probability, abs=1e-6)
        assert [row[f"class_{i}"] for i in (1, 2, 3)] == [g.label for g in single.guesses]
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_batch_file_as_json_lines(cli, trained_run, predictor, tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(source), "--json", "-n", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [p.to_dict() for p in predictor.predict(NAMES, top=2)]


def test_batch_csv_column_to_stdout(cli, trained_run, predictor, tmp_path):
    source = tmp_path / "people.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "surname"])
        writer.writerows([[i, name] for i, name in enumerate(NAMES)])
    run = str(trained_run.run_dir)
    result = cli(["predict", "--run", run, "--input", str(source), "--column", "surname"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert [r["predicted"] for r in rows] == [p.label for p in predictor.predict(NAMES)]
    missing = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(source), "--column", "name"])
    assert missing.exit_code == 2
    assert "has no column 'name'; its columns are id, surname." in missing.stderr


def test_interactive_loop_through_stdin(trained_run, predictor, cli):
    result = run_toolkit(["interactive", "--run", str(trained_run.run_dir), "--top", "2"],
                         input="Hinton\nNakamura\n\nNever reached\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:] == [
        "> Hinton",
        *(f"({g.log_probability:.2f}) {g.label}" for g in predictor.predict(["Hinton"], 2)[0].guesses),
        "> Nakamura",
        *(f"({g.log_probability:.2f}) {g.label}" for g in predictor.predict(["Nakamura"], 2)[0].guesses),
    ]
    eof = cli(["interactive", "--run", str(trained_run.run_dir)], input="Sato\n")  # Ctrl-D, in-process
    assert eof.exit_code == 0 and "> Sato" in eof.stdout


def test_names_longer_than_the_run_reads_are_cut_with_a_notice(cli, trained_run, predictor):
    long = "Nakamura" * 40  # 320 characters
    best = predictor.predict([long[:predictor.max_length]], 1)[0].guesses[0]
    notice = f"1 text was longer than {predictor.max_length:,} characters and cut to that length, as at "
    given = cli(["predict", "--run", str(trained_run.run_dir), long, "Hinton"])
    assert given.exit_code == 0, given.output
    assert given.stderr == notice + "training.\n"
    assert given.stdout.splitlines()[1] == f"({best.log_probability:.2f}) {best.label}"  # as the cut name
    typed = run_toolkit(["interactive", "--run", str(trained_run.run_dir)], input=f"Hinton\n{long}\nSato\n")
    assert typed.returncode == 0, typed.stderr
    assert typed.stderr == notice + "training.\n"  # once: for the long name only


def _copy(trained_run, tmp_path):
    return shutil.copytree(trained_run.run_dir, tmp_path / "run")


def _refused(cli, folder) -> str:
    result = cli(["predict", "--run", str(folder), "Hinton"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    return result.stderr


def test_tampered_or_incomplete_runs_are_refused(cli, trained_run, tmp_path):
    folder = _copy(trained_run, tmp_path)
    (folder / "model.safetensors").unlink()
    assert "missing model.safetensors" in _refused(cli, folder)
    shutil.rmtree(folder)

    folder = _copy(trained_run, tmp_path)
    weights = load_file(folder / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name][:-1]
    save_file(weights, folder / "model.safetensors")
    assert "do not fit the model in its config (wrong shape:" in _refused(cli, folder)
    shutil.rmtree(folder)

    folder = _copy(trained_run, tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x80\x04 a pickle is never loaded")
    assert "is not a valid safetensors file" in _refused(cli, folder)
    shutil.rmtree(folder)

    folder = _copy(trained_run, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    assert "has format version 99; this toolkit reads version 1" in _refused(cli, folder)
    config["format_version"] = 1
    config["model"]["params"]["hidden_size"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    assert "do not fit the model in its config" in _refused(cli, folder)
    config["model"]["name"] = "no-such-model"
    (folder / "config.json").write_text(json.dumps(config))
    assert "unknown model 'no-such-model'" in _refused(cli, folder)
    (folder / "config.json").write_text("{not json")
    assert "config.json' is not valid JSON" in _refused(cli, folder)
    shutil.rmtree(folder)

    folder = _copy(trained_run, tmp_path)
    (folder / "labels.json").write_text(json.dumps(["just-one"]))
    assert "malformed labels.json" in _refused(cli, folder)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a run")
    assert "is not a complete toolkit run folder" in _refused(cli, foreign)
    assert "does not exist" in _refused(cli, tmp_path / "nowhere")


def test_predict_needs_names_or_a_file(cli, trained_run):
    result = cli(["predict", "--run", str(trained_run.run_dir)])
    assert result.exit_code == 2 and "give names to classify, or --input FILE" in result.stderr


def test_threads_change_speed_not_answers(trained_run, predictor):
    import torch

    before = torch.get_num_threads()
    two = toolkit.load_run(trained_run.run_dir, threads=2)
    np.testing.assert_allclose(two.predict_proba(NAMES), predictor.predict_proba(NAMES), rtol=1e-5, atol=1e-7)
    assert torch.get_num_threads() == before  # restored after each forward pass
    with pytest.raises(toolkit.ToolkitError, match="threads must be between 1 and"):
        toolkit.load_run(trained_run.run_dir, threads=0)


def test_top_above_the_class_count_keeps_the_csv_rectangular(cli, trained_run, tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("Hinton\nNakamura\n", encoding="utf-8")
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(source), "--top", "50"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    classes = len(trained_run.classes)
    assert {len(row) for row in rows} == {3 + 2 * classes}
    assert rows[0][-2:] == [f"class_{classes}", f"probability_{classes}"]


@pytest.mark.parametrize(("file", "content", "message"), [
    ("config.json", {"model": {"name": "gru", "params": [48]}}, "malformed config.json"),
    ("config.json", {"model": "gru"}, "malformed config.json"),
    ("encoder.json", {"name": "onehot", "params": {}}, "malformed encoder.json (no encoder state)"),
    ("encoder.json", [], "malformed encoder.json"),
])
def test_malformed_json_shapes_are_refused(cli, trained_run, tmp_path, file, content, message):
    folder = _copy(trained_run, tmp_path)
    if file == "config.json":
        config = json.loads((folder / file).read_text())
        config.update(content)
        content = config
    (folder / file).write_text(json.dumps(content))
    assert message in _refused(cli, folder)


def test_a_large_input_file_shows_progress_in_a_log_as_plain_lines(cli, trained_run, tmp_path, monkeypatch):
    from toolkit.cli import predict

    monkeypatch.setattr(predict, "PROGRESS_FROM_BYTES", 1)  # a large file, as far as progress goes
    source = tmp_path / "names.txt"
    source.write_text("\n".join(NAMES * 20) + "\n", encoding="utf-8")
    result = cli(["predict", "--run", str(trained_run.run_dir), "--input", str(source),
                  "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert [line.split(" (")[0] for line in lines[:-1]] == [
        f"Predicting names.txt: {percent}% read" for percent in range(10, 100, 10)
    ]
    assert lines[-1] == f"Wrote {len(NAMES) * 20} predictions to {tmp_path / 'out.csv'}"


def test_an_output_that_is_one_of_the_run_s_own_files_is_refused(cli, trained_run, tmp_path):
    folder = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    names = tmp_path / "names.txt"
    names.write_text("Hinton\nNakamura\n", encoding="utf-8")
    weights = (folder / "model.safetensors").read_bytes()
    for target in (folder / "model.safetensors", folder / "config.json"):
        result = cli(["predict", "--run", str(folder), "--input", str(names), "--output", str(target)])
        assert result.exit_code == 2 and result.stderr == (
            f"Error: --output '{target}' is the run's own {target.name}; write the predictions elsewhere.\n")
    assert (folder / "model.safetensors").read_bytes() == weights
    preds = folder / "preds.csv"
    beside = cli(["predict", "--run", str(folder), "--input", str(names), "--output", str(preds)])
    assert beside.exit_code == 0 and len(preds.read_text().splitlines()) == 3
