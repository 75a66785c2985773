"""`toolkit tune`: search parameters with Optuna, scoring on the validation split only.

The data is loaded and split once (the seed fixes the split, so every trial is scored on
the same validation texts); each trial samples the searched parameters, trains, and scores
the best-validation weights on the validation texts. The test split is never read here:
only the final run, an ordinary `toolkit run` with the best parameters, evaluates on it.
Trials report their validation results after every epoch so Optuna's median pruner can stop
hopeless ones; a trial that fails (NaN, out of memory, a bad combination) is recorded as
failed with its reason and the study goes on. The study lives in a SQLite file, so a second
call with the same file resumes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.api import (
    DEFAULT_ENCODER,
    RunPlan,
    build_model,
    fitted_encoder,
    load_split,
    plan_run,
)
from toolkit.errors import ToolkitError
from toolkit.file_lock import exclusive_lock
from toolkit.params import Param, Space, locate, parse_space, plain_value
from toolkit.safe_files import shown

if TYPE_CHECKING:
    import optuna

    from toolkit.api import RunResult
    from toolkit.splits import Split

#: What a trial is scored by, and which way is better.
METRICS = {"val_accuracy": "maximize", "val_macro_f1": "maximize", "val_micro_f1": "maximize",
           "val_loss": "minimize"}
MAX_TRIALS = 10_000
MAX_TIMEOUT = 30 * 24 * 3600  # seconds
STUDY_NAME = "toolkit"
STUDY_FILE = "study.db"
#: Beside the study file while a `toolkit tune` works on it (flock: a killed process frees it).
LOCK_SUFFIX = ".lock"
#: The trial user attribute holding the defaults trial 0 used outside the searched space.
OUTSIDE = "defaults_outside_space"
#: Parameters no search may change: they change which texts are trained and scored on.
UNTUNABLE = ("dataset", "split", "train.max_length")
#: What the study records about itself: a resumed study takes these from the file, and
#: refuses different ones.
IDENTITY = ("dataset", "model", "encoder", "seed", "metric", "params", "space")


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: `key` is `group.name`, e.g. `model.hidden_size`."""

    key: str
    param: Param
    space: Space

    def suggest(self, trial: optuna.Trial) -> Any:
        space = self.space
        if space.values is not None:
            return trial.suggest_categorical(self.key, list(space.values))
        if self.param.type is int:
            return trial.suggest_int(self.key, int(space.low), int(space.high), log=space.log)
        return trial.suggest_float(self.key, float(space.low), float(space.high), log=space.log)


@dataclass(frozen=True)
class TuneResult:
    """A finished (or interrupted) study and what came of it."""

    study: optuna.Study
    study_path: Path
    best_params: dict[str, Any]  # the best trial's searched values with the fixed ones, by key
    best_value: float | None
    command: str  # the `toolkit run ...` that trains the best parameters, as typed
    best_run: RunResult | None  # the final run trained now (None when final=False, no trial
    #: finished, or the best trial's run from an earlier call was kept)
    interrupted: bool = False  # Ctrl-C ended the study, or the final run (which is then partly trained)
    final_run_dir: Path | None = None  # the best trial's run folder, trained now or kept


def tune(
    dataset: str | None = None,
    model: str | None = None,
    encoder: str | None = None,
    trials: int = 20,
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    space: Mapping[str, str | Space] | None = None,
    study: str | Path | None = None,
    metric: str | None = None,
    seed: int | None = None,
    device: str = "auto",
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
    final: bool = True,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search the parameters of `model` on `dataset` for the best validation `metric`.

    `trials` is the size of the study: a resumed study (`study`, a SQLite file) runs only
    the trials it lacks. `params` fixes parameters; `space` maps `group.name` to a search
    space (`Space`, or `low:high[:log]` / `a,b,c`) over the declared defaults
    (`Param.search`). With `final`, the best parameters are trained as an ordinary run in
    `output/run-trial-N` that records the study. A new study's trial 0 tries the defaults
    (also those outside the search space). `echo` gets one line per trial. `progress` shows the
    study's progress bar; by default there is one when stderr is a terminal, and otherwise a
    plain line on stderr after every epoch of every trial.
    Ctrl-C ends the study after the current trial's epoch, keeping what finished.
    """
    optuna = _import_optuna()
    study_path, output_dir = _locations(study, output, dataset, model)
    if not 1 <= trials <= MAX_TRIALS:
        raise ToolkitError(f"--trials must be between 1 and {MAX_TRIALS:,}; got {trials}.")
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:
        raise ToolkitError(f"--timeout must be above 0 and at most {MAX_TIMEOUT:,} seconds; got {timeout}.")
    if study_path.exists():
        check_study_file(study_path)  # read-only: a file that is refused is never changed
    created = not study_path.parent.exists()
    _make_folder(study_path.parent)
    try:
        with exclusive_lock(study_path.with_name(study_path.name + LOCK_SUFFIX), _busy(study_path)):
            return _tune_locked(optuna, study_path, output_dir, dataset, model, encoder, trials, timeout,
                                dict(params or {}), {k: str(v) for k, v in (space or {}).items()}, metric,
                                seed, device, plugins, final, progress, echo or (lambda line: None))
    except BaseException:
        if created:  # a study that failed before writing anything leaves no folder either
            with contextlib.suppress(OSError):
                study_path.parent.rmdir()
        raise


def _tune_locked(optuna: Any, study_path: Path, output_dir: Path, dataset: str | None, model: str | None,
                 encoder: str | None, trials: int, timeout: float | None, params: dict[str, Any],
                 given_space: dict[str, str], metric: str | None, seed: int | None, device: str,
                 plugins: Sequence[str], final: bool, progress: bool | None,
                 say: Callable[[str], None]) -> TuneResult:
    """`tune` while this process holds the study's lock."""
    stored = _open_study(optuna, study_path, create=False) if study_path.exists() else None
    setup = _setup(stored, dataset, model, encoder, seed, metric, params, given_space)
    plan = plan_run(setup["dataset"], setup["model"], setup["encoder"], setup["params"], setup["seed"],
                    device, None, plugins)
    fixed = _qualified(plan, setup["params"])
    before = stored.user_attrs.get("params") if stored is not None else None
    if before is not None and params and fixed != before:
        raise ToolkitError(
            f"the study was run with --param {_assignments(before)}, not {_assignments(fixed)}; resume "
            "it with the same (or no) --param, or start a new study (another --study file)."
        )
    dimensions = search_space(plan, setup["space"], fixed)
    if not dimensions:
        raise ToolkitError(
            f"nothing to search: model '{plan.model.name}' and the trainer declare no search space "
            "left after --param; add one with --space KEY=low:high or KEY=a,b,c."
        )
    split, _ = load_split(plan)  # before the study is written: a failed load leaves no study behind
    _make_folder(output_dir)
    handle = stored or _open_study(optuna, study_path, create=True, direction=METRICS[setup["metric"]])
    for name in IDENTITY:
        handle.set_user_attr(name, fixed if name == "params" else setup[name])
    handle.set_user_attr("plugins", list(plugins))
    # A trial's epochs: a line each in a log; on a terminal the study's bar shows alone.
    trial_progress = None if progress is None and not sys.stderr.isatty() else False
    objective = _Objective(plan, fixed, dimensions, split, setup["metric"], plugins, trial_progress)
    if not handle.trials:  # trial 0 scores the real defaults, so the table shows what tuning won
        inside, outside = _defaults(plan, dimensions)
        handle.enqueue_trial(inside, user_attrs={OUTSIDE: outside} if outside else None)
        if outside:
            say("defaults outside the searched space, which trial 0 trains all the same: "
                + ", ".join(f"{k}={plain_value(v)}" for k, v in outside.items()))
    for trial in handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # We hold the study's lock: a running trial is one whose process was killed.
        handle.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        say(f"trial {trial.number} was left running by a process that stopped; recorded as failed.")
    done = len([t for t in handle.trials if t.state.is_finished()])
    remaining = max(trials - done, 0)
    say(f"study {study_path}: {done} trials done, {remaining} to run; searching "
        + ", ".join(f"{d.key}={d.space}" for d in dimensions))
    interrupted = _optimize(optuna, handle, objective, remaining, timeout, say, progress)
    best = _best_trial(handle)
    best_params = {**fixed, **trial_values(best)} if best is not None else dict(fixed)
    command = run_command(plan, best_params, plugins)
    best_run, final_dir = None, None
    if best is not None and final and not interrupted:
        final_dir, best_run = _final_run(plan, best_params, best, handle, study_path, output_dir, plugins,
                                         say, progress)
        interrupted = best_run is not None and best_run.interrupted
    return TuneResult(handle, study_path, best_params, best.value if best is not None else None,
                      command, best_run, interrupted, final_dir)


def search_space(
    plan: RunPlan, overrides: Mapping[str, str | Space], fixed: Mapping[str, Any]
) -> list[Dimension]:
    """The searched parameters: every declared `search` of the model, encoder and trainer,
    with `overrides` applied and the `fixed` keys left out."""
    sections = plan.sections()
    by_name = {section.name: section for section in sections}
    dimensions: dict[str, Dimension] = {}
    for group in ("encoder", "model", "train"):
        for param in by_name[group].params:
            key = f"{group}.{param.name}"
            if param.search is not None and key not in fixed and key not in UNTUNABLE:
                dimensions[key] = Dimension(key, param, param.search)
    for raw_key, raw_space in overrides.items():
        group, param = locate(raw_key, sections)
        key = f"{group}.{param.name}"
        if group in UNTUNABLE or key in UNTUNABLE:
            raise ToolkitError(
                f"--space cannot search {key}: it changes which texts every trial trains and is "
                "scored on; fix it with --param instead."
            )
        if key in fixed:
            raise ToolkitError(f"{key} is both fixed (--param) and searched (--space); give one.")
        owner = by_name[group].owner
        chosen = raw_space if isinstance(raw_space, Space) else parse_space(str(raw_space), param, owner)
        dimensions[key] = Dimension(key, param, chosen)
    return list(dimensions.values())


def run_command(plan: RunPlan, values: Mapping[str, Any], plugins: Sequence[str] = ()) -> str:
    """The `toolkit run` command line that trains `values`, exactly as a shell takes it."""
    words = ["toolkit", *[w for p in plugins for w in ("--plugin", p)], "run",
             "--dataset", plan.dataset.name, "--model", plan.model.name]
    if plan.encoder.name != DEFAULT_ENCODER:
        words += ["--encoder", plan.encoder.name]
    if plan.seed:
        words += ["--seed", str(plan.seed)]
    for key in sorted(values):
        words += ["--param", f"{key}={plain_value(values[key])}"]
    return shlex.join(words)


def show_study(study: str | Path) -> tuple[Any, dict[str, float]]:
    """The trials of a study file as a pandas table, and Optuna's parameter importances
    ({} until two trials with different values have finished)."""
    import pandas as pd

    optuna = _import_optuna()
    path = Path(study)
    if not path.is_file():
        raise ToolkitError(f"no study file at {shown(path)}; give the --study file a `toolkit tune` wrote.")
    check_study_file(path)
    handle = _open_study(optuna, path, create=False)
    table = handle.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    for trial in handle.trials:  # trial 0's defaults outside the space, in their parameters' columns
        for key, value in trial.user_attrs.get(OUTSIDE, {}).items():
            column = f"params_{key}"
            table[column] = table[column].astype(object) if column in table else None
            table.loc[table["number"] == trial.number, column] = value
    table = table.drop(columns=f"user_attrs_{OUTSIDE}", errors="ignore")
    if "duration" in table:
        table["duration"] = table["duration"].dt.total_seconds().round(1)
    table.columns = [shown(c.removeprefix("params_").removeprefix("user_attrs_")) for c in table.columns]
    for column in table.columns:  # the file may come from someone else: no control sequences
        if not (pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_datetime64_any_dtype(
                table[column]) or pd.api.types.is_timedelta64_dtype(table[column])):
            table[column] = table[column].map(lambda v: shown(v) if isinstance(v, str) else v)
    # fANOVA named, as `toolkit tune --show` says it (Optuna's default evaluator changed in 5.x),
    # seeded so a study shows the same numbers every time; its warning that a few trials make
    # rough importances is said by the heading's trial count, not as a Python warning.
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    complete = [t for t in handle.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:  # one trial says nothing of what matters: Optuna returns equal shares
        return table, {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(handle, evaluator=evaluator)
        importances = {shown(k): v for k, v in found.items()}
    except (ValueError, RuntimeError):
        importances = {}
    return table, importances


class _Objective:
    """Trains one trial's parameters and scores the best-validation weights on the validation texts."""

    def __init__(self, plan: RunPlan, fixed: Mapping[str, Any], dimensions: list[Dimension],
                 split: Split, metric: str, plugins: Sequence[str], progress: bool | None = False) -> None:
        self.plan, self.fixed, self.dimensions = plan, fixed, dimensions
        self.split, self.metric, self.plugins, self.progress = split, metric, plugins, progress

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        outside = trial.user_attrs.get(OUTSIDE, {})
        values = {**self.fixed, **{d.key: outside[d.key] if d.key in outside else d.suggest(trial)
                                   for d in self.dimensions}}
        started = time.perf_counter()
        try:
            plan = plan_run(self.plan.dataset.name, self.plan.model.name, self.plan.encoder.name,
                            values, self.plan.seed, self.plan.device, None, self.plugins)
            scores = self._train(plan, trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", _one_line(exc))
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        for name, value in scores.items():
            trial.set_user_attr(name, value)
        value = scores[self.metric]
        if not math.isfinite(value):
            raise ToolkitError(f"the trial's {self.metric} is {value}")
        return value

    def _train(self, plan: RunPlan, trial: optuna.Trial) -> dict[str, float]:
        import numpy as np
        import optuna

        from toolkit.inference import predict_proba, resolve_device
        from toolkit.memory import check_fits
        from toolkit.training import train

        split, device = self.split, resolve_device(plan.device)
        text_encoder = fitted_encoder(plan, split.train.texts)
        # a trial too large for the memory fails alone, with the estimate as its reason
        check_fits(plan.model, plan.params, text_encoder, len(split.train.classes), device)
        multi = split.train.multi_label
        network = build_model(plan, text_encoder, len(split.train.classes), multi)
        use_loss = self.metric == "val_loss"

        def report(row: Mapping[str, Any]) -> None:
            value = row["val_loss"] if use_loss else row["val_acc"]
            if math.isfinite(value):
                trial.report(float(value), int(row["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {int(row['epoch'])}")

        trained = train(network, text_encoder, split.train, split.val, plan.params["train"], seed=plan.seed,
                        device=device, progress=self.progress, epoch_callbacks=[report])
        if trained.interrupted:
            raise KeyboardInterrupt
        trial.set_user_attr("epochs", trained.epochs_completed)
        probabilities = predict_proba(trained.model, text_encoder, split.val.texts, device, multi)
        if multi:
            from toolkit.multilabel import multi_hot

            truth = multi_hot(split.val.label_sets or (), len(split.val.classes))
            return multi_label_validation_scores(probabilities, truth, plan.params["train"])
        return validation_scores(probabilities, np.asarray(split.val.targets), len(split.val.classes))


def validation_scores(probabilities: Any, targets: Any, classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 (over the classes in the truth or the predictions, as reports
    count it) and mean cross-entropy of `probabilities` (texts, classes) against `targets`."""
    import numpy as np
    from sklearn.metrics import f1_score

    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(targets)), targets]
    accuracy = float((predicted == targets).mean())
    return {
        "val_accuracy": accuracy,
        "val_macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
        "val_micro_f1": accuracy,  # one class per text, one prediction per text: micro-F1 is accuracy
        "val_loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
    }


def multi_label_validation_scores(
    probabilities: Any, truth: Any, train: Mapping[str, Any]
) -> dict[str, float]:
    """A multi-label trial's validation scores, deciding as its run would (thresholds chosen on
    validation by `train.threshold`): subset accuracy as val_accuracy, macro- and micro-F1, and
    the mean binary cross-entropy of every (text, class) as val_loss."""
    import numpy as np

    from toolkit.multilabel import choose_thresholds, decide, summary_values

    thresholds = choose_thresholds(probabilities, truth, train["threshold"], train["allow_empty"])
    scores = summary_values(truth, decide(probabilities, thresholds, train["allow_empty"]))
    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    return {
        "val_accuracy": scores["subset_accuracy"], "val_macro_f1": scores["macro_f1"],
        "val_micro_f1": scores["micro_f1"],
        "val_loss": float(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean()),
    }


def _optimize(optuna: Any, handle: optuna.Study, objective: _Objective, remaining: int,
              timeout: float | None, say: Callable[[str], None], progress: bool | None) -> bool:
    """Run up to `remaining` trials; True when Ctrl-C ended the study."""
    if remaining == 0:
        return False
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    show = sys.stderr.isatty() if progress is None else progress
    columns = (TextColumn("tuning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=not show) as bar:
        task = bar.add_task("tuning", total=remaining)

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            bar.advance(task)
            say(trial_line(optuna, study, trial))

        try:
            handle.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                            callbacks=[after_trial], gc_after_trial=True)
        except KeyboardInterrupt:
            say("interrupted: the study keeps the trials that finished; run the same command to go on.")
            return True
    return False


def trial_line(optuna: Any, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One line for a finished trial: number, outcome, seconds, best so far, parameters."""
    seconds = trial.user_attrs.get("seconds", 0.0)
    settings = shown(" ".join(f"{k}={plain_value(v)}" for k, v in trial_values(trial).items()))
    states = optuna.trial.TrialState
    if trial.state == states.COMPLETE:
        outcome = f"{study.user_attrs.get('metric', 'value')} {trial.value:.4f}"
    elif trial.state == states.PRUNED:
        outcome = f"pruned after epoch {max(trial.intermediate_values, default=0)}"
    else:
        outcome = f"failed: {shown(trial.user_attrs.get('error', 'no reason recorded'))}"
    best = _best_trial(study)
    so_far = f"best {best.value:.4f} (trial {best.number})" if best is not None else "no trial finished yet"
    return f"trial {trial.number}: {outcome} in {seconds:.0f} s; {so_far} | {settings}"


def _final_run(plan: RunPlan, values: Mapping[str, Any], best: optuna.trial.FrozenTrial,
               handle: optuna.Study, study_path: Path, output_dir: Path, plugins: Sequence[str],
               say: Callable[[str], None], progress: bool | None) -> tuple[Path, RunResult | None]:
    """Train the best trial's parameters as a run in output/run-trial-N, or keep the complete run
    an earlier call trained for the same trial of this study (None then)."""
    from toolkit.api import run
    from toolkit.safe_files import write_atomic

    finished = len([t for t in handle.trials if t.state.is_finished()])
    record = {
        "study": str(study_path.resolve()), "study_name": handle.study_name, "trial": best.number,
        "metric": handle.user_attrs.get("metric"), "value": best.value, "trials_finished": finished,
        "params": dict(values),
    }
    folder, kept = _final_folder(output_dir / f"run-trial-{best.number}", record)
    if kept:
        say(f"trial {best.number} is still the best; its run in {folder} is kept, not trained again")
        write_atomic(folder / "tune.json", json.dumps(record, indent=2) + "\n")
        return folder, None
    say(f"training the best parameters (trial {best.number}) as a run in {folder}")
    result = run(plan.dataset.name, plan.model.name, plan.encoder.name, dict(values), plan.seed,
                 plan.device, folder, plugins, progress)
    write_atomic(folder / "tune.json", json.dumps(record, indent=2) + "\n")
    return folder, result


def _final_folder(base: Path, record: Mapping[str, Any]) -> tuple[Path, bool]:
    """Where the final run goes: `base` (or base-2, base-3... when that holds something else),
    and whether it already holds this trial's complete, uninterrupted run of this study. A
    folder that only a killed final run left (its lock and private files) is cleared: this
    process holds the study's lock, so no other final run of the study writes there."""
    from toolkit.rundir import CLAIM, CONFIG
    from toolkit.safe_files import read_json

    for number in range(1, 1000):
        folder = base if number == 1 else base.with_name(f"{base.name}-{number}")
        if not folder.exists() and not folder.is_symlink():
            return folder, False
        if folder.is_symlink() or not folder.is_dir():
            continue
        if _left_by_a_killed_run(folder, CLAIM):
            for leftover in folder.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            return folder, False
        try:
            earlier = read_json(folder / "tune.json")
            training = read_json(folder / CONFIG)["training"]
        except (ToolkitError, OSError, KeyError, TypeError):
            continue
        same = isinstance(earlier, dict) and all(
            earlier.get(key) == record[key] for key in ("study", "study_name", "trial", "params"))
        if same and not (folder / CLAIM).exists() and training.get("interrupted") is False:
            return folder, True
    raise ToolkitError(f"too many folders named '{shown(base)}-N'; give another --output.")


def _left_by_a_killed_run(folder: Path, claim: str) -> bool:
    """Whether `folder` holds only a run lock (and the private files of the run) of a process
    that no longer runs."""
    names = [path.name for path in folder.iterdir()]
    if claim not in names or any(name != claim and not name.startswith(".partial-") for name in names):
        return False
    try:
        pid = int((folder / claim).read_text().strip())
    except (ValueError, OSError):
        return True
    if pid == os.getpid():  # a process before this one had our number (a fresh container's)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it lives, under another user
        return False
    return False


def _setup(stored: optuna.Study | None, dataset: str | None, model: str | None, encoder: str | None,
           seed: int | None, metric: str | None, params: dict[str, Any],
           space: dict[str, str]) -> dict[str, Any]:
    """The study's dataset, model, encoder, seed, metric, fixed parameters and search-space
    changes: as given, else as the resumed study recorded them; a resumed study refuses
    different ones (the fixed parameters compared once checked, in `tune`)."""
    given = {"dataset": dataset, "model": model, "encoder": encoder, "seed": seed, "metric": metric,
             "params": params or None, "space": space or None}
    recorded = dict(stored.user_attrs) if stored is not None else {}
    setup: dict[str, Any] = {}
    for name in IDENTITY:
        value, before = given[name], recorded.get(name)
        if value is not None and before is not None and name != "params" and value != before:
            raise ToolkitError(
                f"the study was run with {name} {before!r}, not {value!r}; resume it with the same "
                f"{name} or start a new study (another --study file)."
            )
        setup[name] = value if value is not None else before
    defaults = {"encoder": DEFAULT_ENCODER, "seed": 0, "metric": "val_accuracy", "params": {}, "space": {}}
    for name, default in defaults.items():
        setup[name] = default if setup[name] is None else setup[name]
    for name in ("dataset", "model"):
        if setup[name] is None:
            raise ToolkitError(f"--{name} is required to start a study (a resumed --study knows it).")
    if setup["metric"] not in METRICS:
        raise ToolkitError(f"unknown metric '{setup['metric']}'; use one of {', '.join(METRICS)}.")
    return setup


def _locations(study: str | Path | None, output: str | Path | None, dataset: str | None,
               model: str | None) -> tuple[Path, Path]:
    if study is not None:
        study_path = Path(study)
        output_dir = Path(output) if output is not None else study_path.parent
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output_dir = Path(output) if output is not None else Path("tunes") / f"{stamp}-{dataset}-{model}"
        study_path = output_dir / STUDY_FILE
    if study_path.is_symlink():
        raise ToolkitError(f"the study file {study_path} is a symbolic link; give the file itself.")
    if study_path.exists() and not study_path.is_file():
        raise ToolkitError(f"the study path {study_path} is not a file; give a .db file path.")
    return study_path, output_dir


def _open_study(optuna: Any, path: Path, create: bool, direction: str = "maximize") -> optuna.Study:
    url = f"sqlite:///{path.resolve()}"
    try:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
        if create:
            return optuna.create_study(study_name=STUDY_NAME, storage=url, direction=direction,
                                       sampler=optuna.samplers.TPESampler(seed=0), pruner=pruner)
        return optuna.load_study(study_name=STUDY_NAME, storage=url, pruner=pruner)
    except KeyError:
        raise ToolkitError(
            f"{path} holds no toolkit study; give a --study file `toolkit tune` wrote."
        ) from None
    except Exception as exc:  # sqlalchemy's errors for a file that is not SQLite
        raise ToolkitError(
            f"cannot open the study file {path} ({_one_line(exc)}); give a --study file `toolkit tune` wrote."
        ) from None


def check_study_file(path: Path) -> None:
    """Refuse, reading `path` only, a file that is not a SQLite database holding a toolkit study:
    Optuna would write its tables into any SQLite file it opens."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            names = [row[0] for row in db.execute("SELECT study_name FROM studies")]
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise ToolkitError(
                f"cannot open the study file {shown(path)} ({_one_line(exc)}); give a --study file "
                "`toolkit tune` wrote."
            ) from None
        names = []
    except sqlite3.DatabaseError as exc:
        raise ToolkitError(
            f"cannot open the study file {shown(path)} ({_one_line(exc)}); give a --study file "
            "`toolkit tune` wrote."
        ) from None
    if STUDY_NAME not in names:
        raise ToolkitError(
            f"{shown(path)} holds no toolkit study; give a --study file `toolkit tune` wrote, or a new path."
        )


def _busy(study_path: Path) -> Callable[[str], str]:
    def message(holder: str) -> str:
        return (f"the study {shown(study_path)} is being tuned by another `toolkit tune` ({holder}); wait "
                "for it to finish, or give another --study file.")
    return message


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolkitError(
            f"cannot create the folder {shown(path)} ({exc.strerror or exc}); choose a writable --output."
        ) from None


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no trial has completed yet
        return None


def _defaults(plan: RunPlan, dimensions: list[Dimension]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's value of every searched parameter: those inside their search space (Optuna
    records them as the trial's parameters) and those outside it (a model's own default the
    trainer's space does not hold; the trial uses them all the same, and records them apart)."""
    inside, outside = {}, {}
    for dimension in dimensions:
        group, name = dimension.key.split(".", 1)
        value, space = plan.params[group][name], dimension.space
        fits = (value in space.values if space.values is not None
                else value is not None and space.low <= value <= space.high)
        (inside if fits else outside)[dimension.key] = value
    return inside, outside


def trial_values(trial: optuna.trial.FrozenTrial | optuna.Trial) -> dict[str, Any]:
    """The searched values a trial trained with: its parameters, and for trial 0 the defaults
    that lie outside the searched space."""
    return {**trial.params, **trial.user_attrs.get(OUTSIDE, {})}


def _qualified(plan: RunPlan, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` keyed `group.name`, each converted to its declared type."""
    sections = plan.sections()
    qualified = {}
    for key in values:
        group, param = locate(key, sections)
        qualified[f"{group}.{param.name}"] = plan.params[group][param.name]
    return qualified


def _assignments(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={plain_value(v)}" for k, v in sorted(values.items())) or "(none)"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ToolkitError) else f"{type(exc).__name__}: {text}"


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ToolkitError(
            "toolkit tune needs Optuna; install it with: pip install -e '.[tune]' in toolkit's folder."
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna
