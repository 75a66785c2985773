"""How `ensemble` should combine its members: measured on the validation split of the panel only.

For each panel data set (bench/panel.py) and seed it trains an `ensemble` once (`--members`,
by default ngram,cnn; `toolkit.run`, members trained separately as the ensemble does), keeps
each member's class log-probabilities for the validation texts, and scores several combination rules on them
without retraining. Beside them: each member alone, any extra candidate member (`--extra`,
trained on its own by `toolkit.run` on the same split and added to the members), and TF-IDF
character + word n-grams with LinearSVC fitted on the same training part (word_defaults.svm_val).
The test split is never looked at.

Rules (members' log-probabilities combined, the class with the highest score predicted):

- probability / log-probability: the weighted mean of the members' probabilities, or of their
  log-probabilities (a weighted geometric mean), with weights
  - equal: nothing fitted;
  - mixture: the mixture of the members' probabilities most likely on held-out texts, fitted by
    expectation-maximisation, as `weighting=validation` does (for both combines, as the plugin does);
  - pooled: (log-probability only) the weights, not summing to one, that make the normalised
    weighted geometric mean most likely (a log-linear pool fitted by maximum likelihood);
  - accuracy: the weights on a grid of the simplex with the most correct held-out texts (ties: the
    one nearest equal weights).

A rule that fits weights on validation texts and is scored on the same texts is optimistic, so
each fitted rule is scored by cross-fitting: the validation split is cut in two stratified halves
(seeded), weights fitted on one half score the other, and the accuracy counts every validation
text once. The ensemble's own figure (weights fitted on all of validation and scored there, what
its history reports) is listed too, marked "in-sample". Usage:

    python bench/ensemble_choices.py --datasets manpages,names --seeds 0 1 2
    python bench/ensemble_choices.py --extra "ngram:train.weight_decay=0.1" --cache /tmp/ens-cache
    python bench/ensemble_choices.py --on-top "ngram:train.weight_decay=0.1" \
        --extra "ngram:model.max_n=5;ngram:model.word_ngrams=0" --rules "log-probability, mixture" \
        --against "log-probability, mixture (cross-fitted)" --cache /tmp/ens-cache

The second command is how the default ensemble's third member was chosen: with the ngram,cnn
members and the default rule (log-probability, mixture), adding it was as accurate or more on
six of the seven panel sets' validation splits (medians over seeds 0 1 2) and 0.06 point lower
on names. The third scores candidates against that three-member default: `--on-top` joins the
ngram,cnn members to make the baseline ("+ ON_TOP: RULE"), and each `--extra` is scored added
to it ("+ ON_TOP + EXTRA: RULE") and in its place ("EXTRA for ON_TOP: RULE"). Only members not
in `--cache` are trained, so with a filled cache only the candidates are. Each fitted rule is
also listed scored in-sample, as the ensemble's history reports it.

The default's members now (`members=auto`) were chosen so, on the validation splits only:

    python bench/ensemble_choices.py --on-top "ngram:train.weight_decay=0.1" \
        --extra "ngram:model.max_n=5:train.weight_decay=0.1" --rules "log-probability, mixture" \
        --against "log-probability, mixture (cross-fitted)" --params train.threads=1
    python bench/ensemble_choices.py --datasets names,first-names-gender,words-language \
        --on-top "ngram:model.max_n=5:train.weight_decay=0.1" --extra gru \
        --rules "log-probability, mixture" --against "log-probability, mixture (cross-fitted)" \
        --params train.threads=1

The first put the 1-5-gram ngram with weight decay in the third member's place (as accurate or
more on six of the seven sets, medians over seeds 0 1 2; first names +0.38 point); the second
added a `gru` on the sets of names and single words, where it gained on every set's median.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from panel import panel_params
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp
from sklearn.model_selection import StratifiedKFold
from train_bench import load, machine
from word_defaults import svm_val

import toolkit
from toolkit.params import parse_assignments

DATASETS = "manpages,names,first-names-gender,words-language,package-summaries,ui-messages,ui-programs"
#: Expectation-maximisation as `Ensemble.weigh_members`: most steps and the stopping tolerance.
EM_STEPS, EM_TOLERANCE = 500, 1e-6
#: Grid step of the accuracy-chosen weights, by member count (a finer grid for two members).
GRID_STEP = {2: 0.05, 3: 0.1}
#: The rule `ensemble` used before this script chose one: the paired comparisons are against it.
DEFAULT_RULE = "probability, mixture (cross-fitted)"

Weigher = Callable[[np.ndarray, np.ndarray], np.ndarray]


def mixture_weights(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The mixture of the members' probabilities most likely on these texts (members, texts,
    classes), by expectation-maximisation from equal weights: what `weighting=validation` fits."""
    truth = np.take_along_axis(log_probs, targets[None, :, None], axis=2)[:, :, 0]  # (members, texts)
    weights = np.full(len(log_probs), 1 / len(log_probs))
    for _ in range(EM_STEPS):
        joint = truth + np.log(weights)[:, None]
        updated = np.exp(joint - logsumexp(joint, axis=0)).mean(axis=1)
        done = np.abs(updated - weights).max() < EM_TOLERANCE
        weights = updated
        if done:
            break
    return weights


def pooled_weights(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Non-negative weights whose normalised weighted geometric mean is most likely on these texts."""
    rows = np.arange(len(targets))

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        pooled = log_softmax(np.tensordot(weights, log_probs, axes=1), axis=1)
        gradient = np.exp(pooled)
        gradient[rows, targets] -= 1
        return -pooled[rows, targets].mean(), np.einsum("mnc,nc->m", log_probs, gradient) / len(targets)

    start = np.full(len(log_probs), 1 / len(log_probs))
    return minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(log_probs)).x


def combined(log_probs: np.ndarray, weights: np.ndarray, combine: str) -> np.ndarray:
    """Scores (texts, classes): log of the weighted mean probability, or weighted mean log-probability."""
    if combine == "log-probability":
        return np.tensordot(weights, log_probs, axes=1)
    with np.errstate(divide="ignore"):
        return logsumexp(log_probs + np.log(weights)[:, None, None], axis=0)


def accuracy_weights(combine: str) -> Weigher:
    def weigh(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        count = len(log_probs)
        steps = round(1 / GRID_STEP.get(count, 0.1))
        grid = [np.array(c) / steps for c in itertools.product(range(steps + 1), repeat=count)
                if sum(c) == steps]
        equal = np.full(count, 1 / count)
        return max(grid, key=lambda w: (accuracy(combined(log_probs, w, combine), targets),
                                        -np.abs(w - equal).sum()))
    return weigh


def equal_weights(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.full(len(log_probs), 1 / len(log_probs))


def accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == targets).mean())


def cross_fitted(
    log_probs: np.ndarray, targets: np.ndarray, weigh: Weigher, combine: str, seed: int
) -> float:
    """Accuracy over all texts, each scored with weights fitted on the other stratified half."""
    hits = 0
    halves = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for fit, score in halves.split(np.zeros(len(targets)), targets):
        weights = weigh(log_probs[:, fit], targets[fit])
        hits += int((combined(log_probs[:, score], weights, combine).argmax(axis=1) == targets[score]).sum())
    return hits / len(targets)


RULES: dict[str, tuple[str, Weigher]] = {
    "probability, equal": ("probability", equal_weights),
    "probability, mixture": ("probability", mixture_weights),
    "probability, accuracy": ("probability", accuracy_weights("probability")),
    "log-probability, equal": ("log-probability", equal_weights),
    "log-probability, mixture": ("log-probability", mixture_weights),
    "log-probability, pooled": ("log-probability", pooled_weights),
    "log-probability, accuracy": ("log-probability", accuracy_weights("log-probability")),
}


def val_log_probs(model: Any, result: toolkit.RunResult) -> np.ndarray:
    probabilities = toolkit.predict_proba(model, result.encoder, result.split.val.texts)
    return np.log(np.clip(probabilities, 1e-300, 1))


def ensemble_members(dataset: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """An ensemble trained once: its members' validation log-probabilities, the validation
    targets and texts, and what the ensemble itself reported (in-sample)."""
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset=dataset, model="ensemble", params=params, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    model = result.model
    return {
        "names": list(model.names), "log_probs": np.stack([val_log_probs(m, result) for m in model.members]),
        "targets": np.asarray(result.split.val.targets), "texts": list(result.split.val.texts),
        "reported": float(result.history["val_acc"].iloc[-1]),
        "weights": model.member_weights.double().numpy(), "combine": model.combine,
        "train_s": result.train_seconds,
    }


def extra_member(dataset: str, params: dict[str, Any], seed: int, spec: str) -> dict[str, Any]:
    """A candidate member `MODEL[:GROUP.NAME=VALUE...]` (as in model.members) trained on its own
    on the same split."""
    model, *settings = spec.split(":")
    extra = params | parse_assignments(settings)
    with tempfile.TemporaryDirectory() as scratch:
        result = toolkit.run(dataset=dataset, model=model, params=extra, seed=seed, progress=False,
                             output=Path(scratch) / "run")
    return {"log_probs": val_log_probs(result.model, result), "texts": list(result.split.val.texts),
            "train_s": result.train_seconds}


def candidate_member(
    cache: Path | None, name: str, dataset: str, params: dict[str, Any], seed: int, spec: str,
    texts: Sequence[str],
) -> dict[str, Any]:
    """`extra_member` on panel set `name` (kept in `cache`), checked to share the ensemble's split."""
    key = f"{name}-{seed}-{file_key(spec)}"
    extra = cached(cache, key, partial(extra_member, dataset, params, seed, spec))
    if list(extra["texts"]) != list(texts):
        raise SystemExit(f"{spec}: its validation split differs from the ensemble's")
    return extra


def cached(cache: Path | None, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`compute()`, kept in `cache` (one .npz per key) so another run of rules does not retrain."""
    path = cache / f"{key}.npz" if cache else None
    if path and path.is_file():
        stored = np.load(path, allow_pickle=False)
        return json.loads(str(stored["meta"])) | {k: stored[k] for k in stored.files if k != "meta"}
    value = compute()
    if path:
        arrays = {k: v for k, v in value.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in value.items() if k not in arrays}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, meta=json.dumps(meta), **arrays)
        partial.replace(path)
    return value


def rule_rows(
    name: str, seed: int, log_probs: np.ndarray, targets: np.ndarray, label: str, rules: Sequence[str]
) -> list[dict[str, Any]]:
    rows = []
    for rule in rules:
        combine, weigh = RULES[rule]
        scores = {"": cross_fitted(log_probs, targets, weigh, combine, seed)}
        if weigh is not equal_weights:
            in_sample = accuracy(combined(log_probs, weigh(log_probs, targets), combine), targets)
            scores = {" (cross-fitted)": scores[""], " (in-sample)": in_sample}
        rows += [{"dataset": name, "seed": seed, "system": f"{label}{rule}{how}", "val_accuracy": value}
                 for how, value in scores.items()]
    return rows


def member_sets(
    log_probs: np.ndarray, candidates: dict[str, np.ndarray], on_top: str = ""
) -> dict[str, np.ndarray]:
    """The ensembles to score, by row label: the trained members, then each candidate added to them;
    with `on_top` (one of the candidates), the baseline is the members and it, and each other
    candidate is added to that baseline and put in place of `on_top`."""
    sets = {"": log_probs}
    grown = {spec: np.concatenate([log_probs, extra[None]]) for spec, extra in candidates.items()}
    if not on_top:
        return sets | {f"+ {spec}: ": members for spec, members in grown.items()}
    sets[f"+ {on_top}: "] = grown.pop(on_top)
    for spec, members in grown.items():
        sets[f"+ {on_top} + {spec}: "] = np.concatenate([sets[f"+ {on_top}: "], candidates[spec][None]])
        sets[f"{spec} for {on_top}: "] = members
    return sets


def file_key(spec: str) -> str:
    return spec.replace(":", "_").replace("=", "").replace(",", "_")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--extra", default="",
                        help="Candidate members separated by ';', each MODEL[:GROUP.NAME=VALUE...].")
    parser.add_argument("--members", default="ngram,cnn", help="The ensemble's members (model.members).")
    parser.add_argument("--on-top", default="",
                        help="A member MODEL[:GROUP.NAME=VALUE...] joining --members as the baseline; "
                             "each --extra is then scored added to it and in its place.")
    parser.add_argument("--rules", default=";".join(RULES),
                        help=f"Rules to score, separated by ';' (of: {'; '.join(RULES)}).")
    parser.add_argument("--against", default=DEFAULT_RULE,
                        help="The rule of the baseline ensemble the paired changes are taken against.")
    parser.add_argument("--params", default="", help="KEY=VALUE,... for every run (e.g. train.threads=1).")
    parser.add_argument("--cache", type=Path, help="Folder keeping members' validation log-probabilities.")
    parser.add_argument("--rows", type=Path, help="Also write every row to this JSON file.")
    args = parser.parse_args(argv)
    rules = [r.strip() for r in args.rules.split(";") if r.strip()]
    for rule in rules:
        if rule not in RULES:
            parser.error(f"--rules: unknown rule {rule!r}; choose among {'; '.join(RULES)}")
    print(f"Machine: {machine()}\nBefore: {load()}", flush=True)
    common = parse_assignments([p for p in args.params.split(",") if p])
    extras = [e for e in args.extra.split(";") if e]
    base_label = f"+ {args.on_top}: " if args.on_top else ""
    rows: list[dict[str, Any]] = []

    def add(**row: Any) -> None:
        rows.append(row)
        print(row, flush=True)

    for name in args.datasets.split(","):
        dataset, base = panel_params(name)
        base = base | common  # without model.members, which a lone ngram (and the SVM's plan) refuses
        for seed in args.seeds:
            svm, svm_seconds = svm_val(dataset, base, seed)
            add(dataset=name, seed=seed, system="tfidf char+word LinearSVC", val_accuracy=svm,
                train_s=svm_seconds)
            key = f"{name}-{seed}-ensemble-{file_key(args.members)}"
            trained = partial(ensemble_members, dataset, base | {"model.members": args.members}, seed)
            found = cached(args.cache, key, trained)
            log_probs, targets = found["log_probs"], found["targets"]
            weights = mixture_weights(log_probs, targets)
            in_sample = accuracy(combined(log_probs, weights, str(found["combine"])), targets)
            add(dataset=name, seed=seed, system="ensemble as reported (probability, mixture, in-sample)",
                val_accuracy=found["reported"], train_s=found["train_s"],
                recomputed=in_sample, weights=np.round(weights, 3).tolist(),
                its_weights=np.round(found["weights"], 3).tolist())
            for member, part in zip(found["names"], log_probs, strict=True):
                add(dataset=name, seed=seed, system=f"{member} alone", val_accuracy=accuracy(part, targets))
            candidates = {spec: candidate_member(args.cache, name, dataset, base, seed, spec,
                                                 found["texts"])
                          for spec in [args.on_top, *extras] if spec}
            for spec, extra in candidates.items():
                add(dataset=name, seed=seed, system=f"{spec} alone",
                    val_accuracy=accuracy(extra["log_probs"], targets), train_s=extra["train_s"])
            added = {spec: extra["log_probs"] for spec, extra in candidates.items()}
            for label, members in member_sets(log_probs, added, args.on_top).items():
                for rule_row in rule_rows(name, seed, members, targets, label, rules):
                    add(**rule_row)
    runs = pd.DataFrame(rows)
    if args.rows:
        args.rows.write_text(runs.to_json(orient="records", indent=1), encoding="utf-8")
    table = runs.pivot_table(index="system", columns="dataset", values="val_accuracy", aggfunc="median",
                             sort=False)
    table = table[[n for n in args.datasets.split(",") if n in table.columns]]
    svm = table.loc["tfidf char+word LinearSVC"]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 80):
        print(f"\nAfter: {load()}\n\nMedian validation accuracy (%) over seeds {args.seeds}:\n")
        print((100 * table).round(2).to_string())
        print("\nPoints above the LinearSVC (medians):\n")
        print((100 * (table - svm)).round(2).to_string())
        print(f"\nPoints above {base_label + args.against!r} on the same seed, mean over the seeds:\n")
        print(paired_change(runs, base_label + args.against).round(2).to_string())


def paired_change(runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each system's accuracy minus `baseline`'s on the same data set and seed (points), averaged."""
    base = runs[runs["system"] == baseline].set_index(["dataset", "seed"])["val_accuracy"]
    change = runs.join(base.rename("baseline"), on=["dataset", "seed"])
    change["points"] = 100 * (change["val_accuracy"] - change["baseline"])
    table = change.pivot_table(index="system", columns="dataset", values="points", aggfunc="mean", sort=False)
    return table[[c for c in runs["dataset"].unique() if c in table.columns]]


if __name__ == "__main__":
    main()
