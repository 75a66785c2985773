"""The report's "What the model looks at" section, from a trained model and its test texts.

- For each class, the character n-grams (1 to `MAX_N` characters) that most raise it: over up
  to `PER_CLASS` test texts of the class the model gets right, each n-gram scores the mean of
  its characters' occlusion scores (`toolkit.explain`), summed over the texts it occurs in;
  for a linear `ngram` model, its n-grams' exact shares of the logit instead.
- For the most-confused pairs (true class T taken for P), what separates them: the n-grams of
  the misclassified examples that most raise P, and for each example the smallest edit that
  makes the model say T.

Computed once, when the run is written (`build`), and kept in the run folder as explain.json,
so `toolkit report` renders it again; that file, like every file of a run folder, is checked
when read (`load`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.errors import ToolkitError
from toolkit.explain import Predictor, explain, model_text, ngram_shares
from toolkit.rundir import RunRecord
from toolkit.safe_files import read_json, shown, write_atomic

EXPLAIN_JSON = "explain.json"
#: Test texts explained per class, and in all; n-grams listed per class and per pair.
PER_CLASS = 8
MAX_TEXTS = 160
TOP = 6
MAX_N = 3
#: Confused pairs explained, and examples per pair (each gets a flip search).
PAIRS = 3
EXAMPLES = 2
#: Edited texts predicted per text and step, for the class tables and for the pairs' flips
#: (the alphabet thinned beyond it): the section costs seconds, not minutes, at the end of a run.
CANDIDATES = 256
FLIP_CANDIDATES = 1024


def build(
    predictor: Predictor, texts: Sequence[str], targets: Sequence[int], confusion: pd.DataFrame,
    mistakes: pd.DataFrame | None, folder: Path,
) -> dict[str, Any]:
    """Compute the section and write it to `folder`/explain.json; returns it."""
    classes = list(predictor.classes)
    picked: dict[int, list[str]] = defaultdict(list)
    predictions = predictor.predict(list(texts), top=1)
    for text, target, prediction in zip(texts, targets, predictions, strict=True):
        if prediction.label == classes[target] and len(picked[target]) < PER_CLASS:
            picked[target].append(text)
    budget = MAX_TEXTS
    rows = []
    for target, name in enumerate(classes):
        chosen = picked.get(target, [])[:max(budget, 0)]
        budget -= len(chosen)
        rows.append({"class": name, "texts": len(chosen), "ngrams": _top_ngrams(predictor, chosen, name)})
    section = {"method": _method(predictor), "classes": rows, "pairs": _pairs(predictor, confusion, mistakes)}
    write_atomic(folder / EXPLAIN_JSON, _dumps(section))
    return section


def build_for_run(
    record: RunRecord, model: Any, encoder: Any, texts: Sequence[str], targets: Sequence[int]
) -> dict[str, Any] | None:
    """`build` for a run being written (`record`, a `RunRecord` of its private folder) from its
    model in memory (a plugin's too: nothing is reloaded) and its test texts. A model that fails
    on edited texts costs the section, not the run: a warning says why."""
    import warnings

    from toolkit.predictor import Predictor as Loaded

    classes = list(record.config["classes"])
    predictor = Loaded(model, encoder, classes, record.config, record.path)
    try:
        return build(predictor, texts, targets, record.report.confusion, record.mistakes, record.path)
    except (ToolkitError, RuntimeError, ValueError, IndexError) as exc:
        warnings.warn(f"the report has no explanations: {shown(exc)}", stacklevel=2)
    except KeyboardInterrupt:  # Ctrl-C while the run is saved: save it, without this section
        warnings.warn("the report has no explanations: interrupted", stacklevel=2)
    return None


def _method(predictor: Predictor) -> str:
    return "ngram weights" if _is_linear_ngram(predictor) else "occlusion"


def _is_linear_ngram(predictor: Predictor) -> bool:
    model = predictor.model
    return type(model).__name__ == "NgramModel" and getattr(model, "bias", None) is not None


def _top_ngrams(predictor: Predictor, texts: Sequence[str], label: str) -> list[dict[str, Any]]:
    """The n-grams of `texts` that most raise `label`, summed over the texts."""
    totals: dict[str, float] = defaultdict(float)
    target = predictor.classes.index(label)
    if _is_linear_ngram(predictor):
        for text in texts:
            prepared = model_text(predictor, text)[0]
            for share in ngram_shares(predictor, prepared, target) if prepared else ():
                if share.kind == "char":
                    totals[share.ngram] += share.score
    else:
        for explanation in explain(predictor, texts, label, flip=False, limit=CANDIDATES):
            chars = explanation.attributions
            for n in range(1, MAX_N + 1):
                for start in range(len(chars) - n + 1):
                    gram = "".join(char for char, _ in chars[start:start + n])
                    if gram.strip():
                        totals[gram] += sum(score for _, score in chars[start:start + n]) / n
    ranked = sorted(((g, s) for g, s in totals.items() if s > 0), key=lambda item: (-item[1], item[0]))
    return [{"ngram": gram, "score": score} for gram, score in ranked[:TOP]]


def _pairs(
    predictor: Predictor, confusion: pd.DataFrame, mistakes: pd.DataFrame | None
) -> list[dict[str, Any]]:
    if mistakes is None or mistakes.empty:
        return []
    counts = confusion.to_numpy()
    found = sorted(
        ((int(counts[i, j]), str(confusion.index[i]), str(confusion.columns[j]))
         for i in range(counts.shape[0]) for j in range(counts.shape[1]) if i != j and counts[i, j] > 0),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    pairs = []
    for count, true, predicted in found:
        rows = mistakes[(mistakes["true"].astype(str) == true)
                        & (mistakes["predicted"].astype(str) == predicted)]
        texts = [str(t) for t in rows["text"]][:EXAMPLES]
        if not texts:
            continue
        examples = []
        for explanation in explain(predictor, texts, true, limit=FLIP_CANDIDATES):  # what makes it right
            flip = explanation.flip
            examples.append({"text": explanation.text, "flip": flip.text if flip else None,
                             "edit": flip.to_dict()["description"] if flip else None})
        pairs.append({"true": true, "predicted": predicted, "count": count,
                      "ngrams": _top_ngrams(predictor, texts, predicted), "examples": examples})
        if len(pairs) == PAIRS:
            break
    return pairs


def _dumps(section: dict[str, Any]) -> str:
    import json

    return json.dumps(section, ensure_ascii=False, indent=1) + "\n"


def load(folder: Path) -> dict[str, Any] | None:
    """The section kept in `folder`, checked; None for a run written without it."""
    path = folder / EXPLAIN_JSON
    if not path.is_file():
        return None
    section = read_json(path)
    try:
        _check(section)
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolkitError(
            f"'{shown(path)}' is malformed ({shown(exc)}); the run folder is damaged. Delete the "
            "file to render the report without it."
        ) from None
    return section


def _check(section: Any) -> None:
    if not isinstance(section["method"], str):
        raise TypeError("method")
    for row in section["classes"]:
        _text(row["class"])
        _ngrams(row["ngrams"])
    for pair in section["pairs"]:
        _text(pair["true"])
        _text(pair["predicted"])
        _ngrams(pair["ngrams"])
        for example in pair["examples"]:
            _text(example["text"])
            for key in ("flip", "edit"):
                if example[key] is not None:
                    _text(example[key])


def _text(value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")


def _ngrams(rows: Any) -> None:
    for row in rows:
        _text(row["ngram"])
        score = row["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"score {score!r}")
