"""`toolkit explain`, `Predictor.explain`, the /explain API: on real runs trained here.

The toy data set's class is decided by the last character alone (a or e: front; o or u: back,
after 3 to 7 letters of bcdfghjklmnp), so a faithful explanation puts the largest score on the
last character, and the smallest edit that changes the answer changes that character.
"""

from __future__ import annotations

import csv
import json
import random

import httpx
import numpy as np
import pytest
from conftest import live_server

import toolkit
from toolkit.explain import MAX_CANDIDATES, model_text, ngram_shares
from toolkit.explain_report import EXPLAIN_JSON
from toolkit.rendering import rerender
from toolkit.server import create_app

BUILT_IN_MODELS = ("scratch-rnn", "scratch-gru", "rnn", "lstm", "gru", "cnn", "ngram", "ensemble")
BODY, FRONT, BACK = "bcdfghjklmnp", "ae", "ou"


def toy_text(rng: random.Random) -> tuple[str, str]:
    last = rng.choice(FRONT + BACK)
    body = "".join(rng.choice(BODY) for _ in range(rng.randint(3, 7)))
    return body + last, "front" if last in FRONT else "back"


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> dict[str, toolkit.Predictor]:
    """Every built-in model trained on the toy data set, loaded back from its run folder."""
    root = tmp_path_factory.mktemp("toy")
    rng = random.Random(0)
    with (root / "toy.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(toy_text(rng) for _ in range(1600))
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKIT_CACHE_DIR", str(tmp_path_factory.mktemp("toy-cache")))
    runs = {}
    try:
        for model in BUILT_IN_MODELS:
            result = toolkit.run(
                dataset="csv", model=model, output=root / model, progress=False,
                params={"dataset.path": str(root / "toy.csv"), "train.epochs": 12, "train.threads": 1},
            )
            runs[model] = toolkit.load_run(result.run_dir)
    finally:
        mp.undo()
    return runs


@pytest.fixture(scope="module")
def names_predictor(trained_run) -> toolkit.Predictor:
    return toolkit.load_run(trained_run.run_dir)


@pytest.mark.parametrize("model", BUILT_IN_MODELS)
def test_the_deciding_last_character_scores_highest_and_the_flip_changes_it(toy_runs, model):
    predictor = toy_runs[model]
    rng = random.Random(1)
    texts = [toy_text(rng) for _ in range(8)]
    for explanation, (text, truth) in zip(predictor.explain([t for t, _ in texts]), texts, strict=True):
        assert explanation.label == truth, f"{model} got the toy text {text} wrong"
        scores = [score for _, score in explanation.attributions]
        assert int(np.argmax(scores)) == len(text) - 1, (text, scores)
        flip = explanation.flip
        assert flip is not None and flip.label != truth
        # One edit is enough (the last character replaced, or a letter inserted or deleted next
        # to it: which one flips a given model is that model's own), and it is re-predicted.
        assert len(flip.to_dict()["edit"]) == 1 and flip.text != text
        assert predictor.predict([flip.text])[0].label == flip.label


def test_asking_for_a_class_that_is_not_the_top_one_flips_onto_it(toy_runs):
    predictor = toy_runs["gru"]
    [explanation] = predictor.explain(["kbdfa"], "back")
    assert explanation.label == "back" and explanation.probability < 0.5
    assert explanation.attributions[-1][1] < 0  # the 'a' speaks against 'back'
    assert explanation.flip is not None and explanation.flip.label == "back"
    assert predictor.predict([explanation.flip.text])[0].label == "back"


def test_ngram_shares_sum_exactly_to_the_centred_logit(toy_runs):
    import torch

    predictor = toy_runs["ngram"]
    text = "kbdfka"
    target = predictor.classes.index("front")
    shares = ngram_shares(predictor, text, target)
    indices, lengths = predictor.encoder.encode([text])
    with torch.inference_mode():
        logits = predictor.model(indices, lengths)[0].double()
    bias = predictor.model.bias.detach().double()
    centred = float(logits[target] - logits.mean())
    total = sum(s.score for s in shares) + float(bias[target] - bias.mean())
    assert total == pytest.approx(centred, abs=1e-6)  # the model adds in float32
    assert {"k", "<k", "a>"} <= {s.ngram for s in shares}  # the repeated 'k' listed once
    assert shares[0].ngram in {"a", "a>", "ka>", "fka>", "ka", "fka"}  # an n-gram with the deciding 'a'
    [explanation] = predictor.explain([text])
    assert [n.ngram for n in explanation.ngrams] == [s.ngram for s in shares[:len(explanation.ngrams)]]
    assert toy_runs["gru"].explain([text])[0].ngrams == ()  # only the linear ngram has them


def test_one_score_per_input_character_and_zero_for_what_normalisation_drops(names_predictor):
    predictor = names_predictor
    assert predictor.config["provenance"]["normalization"] == "ascii"
    text = " Dvořák😀 "
    prepared, owners = model_text(predictor, text)
    assert prepared == "Dvorak" and [text[i] for i in owners] == list("Dvořák")
    [explanation] = predictor.explain([text])
    assert [char for char, _ in explanation.attributions] == list(text)
    scores = dict(enumerate(score for _, score in explanation.attributions))
    assert all(scores[i] == 0 for i in (0, 7, 8))  # the spaces and the emoji never reach the model
    assert all(scores[i] != 0 for i in range(1, 7))
    assert predictor.explain(["😀"])[0].label == ""  # nothing left: no class, no flip
    assert predictor.explain(["😀"])[0].flip is None


def test_flips_are_re_predicted_through_normalisation(names_predictor):
    predictor = names_predictor
    names = ["Nakamura", "Schmidhuber", "Hinton", "Dvořák", "Nguyen", "Rossi"]
    for explanation in predictor.explain(names):
        flip = explanation.flip
        assert flip is not None, explanation.text
        assert 1 <= len(flip.edits) <= 2
        again = predictor.predict([flip.text])[0]
        assert again.label == flip.label != explanation.label
        assert again.probability == pytest.approx(flip.probability)
        edited = model_text(predictor, explanation.text)[0]
        for edit in flip.edits:
            edited = edit.apply(edited)
        assert edited == flip.text


def test_a_long_text_stays_within_the_candidate_bound(names_predictor, monkeypatch):
    predictor = names_predictor
    sizes = []
    original = predictor._probabilities
    monkeypatch.setattr(predictor, "_probabilities",
                        lambda texts: sizes.append(len(texts)) or original(texts))
    predictor.explain(["Abcdefghijklmnopqrstuvwxyz" * 4])
    assert max(sizes) <= MAX_CANDIDATES


def test_unknown_class_is_one_line(names_predictor):
    with pytest.raises(toolkit.ToolkitError, match="unknown class 'Martian'; use one of Arabic, Chinese"):
        names_predictor.explain(["Hinton"], "Martian")


def test_cli_terminal_output_colours_the_characters_and_shows_the_flip(toy_runs, cli):
    run = toy_runs["gru"].path
    result = cli(["explain", "--run", str(run), "kbdfa"], env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stdout  # coloured
    plain = cli(["explain", "--run", str(run), "kbdfa", "pgmnhu"]).stdout
    assert "\x1b[" not in plain
    lines = plain.splitlines()
    assert lines[0].startswith("> kbdfa  front (")
    assert lines[1].startswith("  most for front: 'a' +")
    flip = toy_runs["gru"].explain(["kbdfa"])[0].flip
    assert lines[2] == f"  flip: {flip.edits[0].describe()} -> '{flip.text}' is back ({flip.probability:.1%})"
    assert lines[3].startswith("> pgmnhu  back (")


def test_cli_json_and_errors(toy_runs, cli):
    run = str(toy_runs["ngram"].path)
    result = cli(["explain", "--run", run, "kbdfa", "--class", "back", "--json"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert set(item) == {"input", "label", "probability", "attributions", "flip", "ngrams"}
    assert item["input"] == "kbdfa" and item["label"] == "back"
    assert [a["char"] for a in item["attributions"]] == list("kbdfa")
    assert item["flip"]["label"] == "back"
    assert item["flip"]["edit"][0]["op"] in ("replace", "insert", "delete")
    assert item["ngrams"] and all(n["kind"] == "char" for n in item["ngrams"])

    bad = cli(["explain", "--run", run, "kbdfa", "--class", "middle"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "Error: unknown class 'middle'; use one of back, front."
    missing = cli(["explain", "--run", str(toy_runs["ngram"].path.parent / "nope"), "kbdfa"])
    assert missing.exit_code == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_cli_says_when_a_text_is_cut_to_what_the_model_reads(toy_runs, cli):
    run = toy_runs["ngram"]
    long = "kbdfa" * ((run.max_length // 5) + 2)
    result = cli(["explain", "--run", str(run.path), long, "kbdfa"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"1 text was longer than {run.max_length:,} characters and cut to that length, "
                             "as at training.\n")
    assert cli(["explain", "--run", str(run.path), "kbdfa"]).stderr == ""


def test_cli_refuses_a_text_the_normalisation_empties(names_predictor, cli):
    result = cli(["explain", "--run", str(names_predictor.path), "😀"])
    assert result.exit_code == 2
    assert "nothing of '😀' is left after the run's normalisation" in result.stderr


def test_api_explains_one_name_and_a_batch(toy_runs):
    predictor = toy_runs["gru"]
    app = create_app(predictor, max_length=16, max_batch=3)
    with live_server(app) as url, httpx.Client(base_url=url) as http:
        one = http.get("/explain/kbdfa")
        assert one.status_code == 200
        assert one.json() == json.loads(json.dumps(predictor.explain(["kbdfa"])[0].to_dict()))
        other = http.get("/explain/kbdfa", params={"class": "back"}).json()
        assert other["label"] == "back" and other["flip"]["label"] == "back"

        many = http.post("/explain", json={"names": ["kbdfa", "pgmnhu"], "class": "front"})
        assert many.status_code == 200
        assert [r["label"] for r in many.json()["results"]] == ["front", "front"]
        assert [r["label"] for r in http.post("/explain", json=["kbdfa", "pgmnhu"]).json()["results"]] == [
            "front", "back"]

        assert http.post("/explain", json=["a", "b", "c", "d"]).status_code == 413
        too_long = http.post("/explain", json=["kbdfa", "x" * 17])
        assert too_long.status_code == 422
        problem = "it has 17 characters; the limit is 16"
        assert too_long.json()["invalid"] == [{"index": 1, "problem": problem}]
        unknown = http.get("/explain/kbdfa", params={"class": "middle"})
        assert unknown.status_code == 422 and "unknown class 'middle'" in unknown.json()["detail"]


@pytest.mark.parametrize(("model", "method"), [("gru", "occlusion"), ("ngram", "ngram weights")])
def test_report_lists_the_deciding_characters_per_class(toy_runs, model, method):
    folder = toy_runs[model].path
    section = json.loads((folder / EXPLAIN_JSON).read_text(encoding="utf-8"))
    assert section["method"] == method
    top = {row["class"]: row["ngrams"][0]["ngram"] for row in section["classes"]}
    letters = {"front": FRONT, "back": BACK}
    for name, gram in top.items():  # the deciding last letter (">" marks the end for ngram)
        assert gram.rstrip(">")[-1] in letters[name] and set(gram) <= set(BODY + letters[name] + "<>"), top
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "What the model looks at" in page and f"<code>{top['front'].replace('>', '&gt;')}</code>" in page


def test_report_explains_the_confused_pairs_and_survives_a_rerender(trained_run, tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, folder)
    section = json.loads((folder / EXPLAIN_JSON).read_text(encoding="utf-8"))
    assert [row["class"] for row in section["classes"]] == list(trained_run.classes)
    pair = section["pairs"][0]
    predictor = toolkit.load_run(folder)
    for example in pair["examples"]:
        if example["flip"] is not None:  # the edit makes the model say the true class
            assert predictor.predict([example["flip"]])[0].label == pair["true"]
    (folder / "report.html").unlink()
    page = rerender(folder).read_text(encoding="utf-8")
    assert "What separates the most-confused pairs" in page and pair["examples"][0]["text"] in page

    (folder / EXPLAIN_JSON).write_text('{"method": "occlusion", "classes": [{"class": 3}]}', encoding="utf-8")
    with pytest.raises(toolkit.ToolkitError, match="explain.json' is malformed .* the run folder is damaged"):
        rerender(folder)


LAST_CHARACTER_PLUGIN = '''
import toolkit


class LastCharacter:
    """Reads only the last character of each text."""

    def __new__(cls, vocab_size, num_classes):
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(vocab_size, num_classes)

            def forward(self, indices, lengths):
                last = indices[torch.arange(len(indices)), lengths - 1]
                return self.embedding(last)

        return Model()


@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="last-character", help="The last character alone.",
                               factory=LastCharacter))
'''


def test_a_plugin_model_is_explained_through_the_cli(toy_runs, tmp_path):
    from conftest import run_toolkit

    plugin = tmp_path / "last_character.py"
    plugin.write_text(LAST_CHARACTER_PLUGIN, encoding="utf-8")
    toy_csv = toy_runs["gru"].path.parent / "toy.csv"
    result = toolkit.run(dataset="csv", model="last-character", plugins=[str(plugin)], progress=False,
                         params={"dataset.path": str(toy_csv), "train.epochs": 4, "train.lr": 0.05,
                                 "train.threads": 1},
                         output=tmp_path / "run")
    explained = run_toolkit(["--plugin", str(plugin), "explain", "--run", str(result.run_dir),
                             "kbdfa", "pgmnhu", "--json"], cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    for item, text, label in zip(json.loads(explained.stdout), ["kbdfa", "pgmnhu"], ["front", "back"],
                                 strict=True):
        assert item["label"] == label
        scores = [a["score"] for a in item["attributions"]]
        assert scores[:-1] == [0.0] * (len(text) - 1) and scores[-1] > 0  # it reads nothing else
        assert item["flip"]["text"][-1] != text[-1] and item["flip"]["label"] != label
    assert (result.run_dir / EXPLAIN_JSON).is_file()
