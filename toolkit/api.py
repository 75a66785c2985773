"""The Python API behind the CLI: `toolkit.run(...)` does what `toolkit run` does."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.contracts import check_encoded, checked_state, loaded_dataset
from toolkit.errors import ToolkitError
from toolkit.lifecycle import Lifecycle, tracker_plugins
from toolkit.limits import MAX_SEED
from toolkit.params import Param, Section, declaration_problem, resolve
from toolkit.registry import Registry, load_registry
from toolkit.runconfig import CONFIG_TOML, RunFile
from toolkit.splits import SPLIT_PARAMS, Split, SplitConfig
from toolkit.train_config import TRAIN_PARAMS, TrainConfig
from toolkit.types import DatasetSpec, Encoder, EncoderSpec, ModelSpec, TextDataset
from toolkit.warmstart import check_kept_params, init_config, init_params

if TYPE_CHECKING:  # torch, numpy and pandas load on first use, so the CLI starts fast
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from toolkit.calibration import Calibration
    from toolkit.evaluation import Report
    from toolkit.predictor import Predictor
    from toolkit.rundir import RunClaim, RunRecord
    from toolkit.warmstart import WarmStart

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_ENCODER = "onehot"
DEFAULT_MODEL = "scratch-rnn"
#: Training texts encoded to check the encoder's output before training (the trainer checks all).
ENCODER_PROBE = 256


@dataclass(frozen=True)
class RunPlan:
    """A checked run: plugins found, parameters validated, encoder and model compatible.
    `plugins` are the extra plugins it was planned with, `init` the run it starts from,
    `track` the trackers its lifecycle hooks log to."""

    dataset: DatasetSpec
    encoder: EncoderSpec
    model: ModelSpec
    params: dict[str, dict[str, Any]]
    seed: int
    device: str
    output: Path | None
    registry: Registry
    plugins: tuple[str, ...] = ()
    init: Path | None = None
    track: tuple[str, ...] = ()  # trackers (`--track`), whose plugins are in `registry` too

    def sections(self) -> list[Section]:
        """The parameter groups this run's `params` were resolved from (see `run_sections`)."""
        return run_sections(self.dataset, self.encoder, self.model)

    def run_toml(self) -> str:
        """The run as a config file (config.toml): `toolkit run --config FILE` plans it again."""
        from toolkit.runconfig import run_toml

        settings = {
            "dataset": self.dataset.name, "model": self.model.name, "encoder": self.encoder.name,
            "seed": self.seed, "device": self.device,
            "plugins": [_plugin_as_recorded(p) for p in self.plugins],
            "init": str(self.init.resolve()) if self.init is not None else None,
        }
        return run_toml(settings, self.params)


def _plugin_as_recorded(target: str) -> str:
    """A plugin as a config file records it: a .py file by its absolute path."""
    from toolkit.registry import _looks_like_path

    return str(Path(target).expanduser().resolve()) if _looks_like_path(target) else target


def plan_run(
    dataset: str | None = None,
    model: str | None = None,
    encoder: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
    config: str | Path | RunFile | Mapping[str, Any] | None = None,
    init: str | Path | None = None,
    track: Sequence[str] = (),
) -> RunPlan:
    """Resolve names and parameters and check them, before any data is read.

    `params` maps `group.name` (groups: dataset, encoder, model, split, train) or a bare
    name that only one group declares, to a value or its string form.
    `config` is a run config file (TOML, see `toolkit.runconfig`; or its parsed dict): it
    gives whatever the arguments leave unset (None), its plugins come before `plugins`, and
    `params` win over its parameters. `init` is a run folder to start from (a warm start):
    its model and encoder, with their parameters, unless they are set otherwise. `track`
    names trackers (see `toolkit.lifecycle.TRACKERS`) whose plugins log the run.
    """
    from toolkit.runconfig import read_run_file, run_file_from

    if config is None or isinstance(config, RunFile):
        run_file = config or RunFile()
    elif isinstance(config, Mapping):
        run_file = run_file_from(config)
    else:
        run_file = read_run_file(config)
    settings = run_file.run
    init = init if init is not None else settings.get("init")
    started_from = init_config(init) if init is not None else None
    dataset = dataset or settings.get("dataset") or (
        started_from["dataset"]["name"] if started_from else None
    )
    if dataset is None:
        raise ToolkitError("no dataset given; name one with --dataset (or in a --config file's [run]).")
    model = model or settings.get("model") or (
        started_from["model"]["name"] if started_from else DEFAULT_MODEL
    )
    encoder = encoder or settings.get("encoder") or (
        started_from["encoder"]["name"] if started_from else DEFAULT_ENCODER
    )
    same_data = started_from is not None and started_from["dataset"]["name"] == dataset
    seed = seed if seed is not None else settings.get("seed", started_from["seed"] if same_data else 0)
    device = device or settings.get("device", "auto")
    plugins = (*settings.get("plugins", ()), *plugins)
    registry = load_registry((*plugins, *tracker_plugins(track)))
    dataset_spec = registry.dataset(dataset)
    encoder_spec = registry.encoder(encoder)
    model_spec = registry.model(model)
    if encoder_spec.produces not in model_spec.consumes:
        raise ToolkitError(
            f"model '{model}' consumes {' or '.join(model_spec.consumes)}, but encoder "
            f"'{encoder}' produces {encoder_spec.produces}; choose a compatible --encoder."
        )
    if device not in DEVICES:
        raise ToolkitError(f"unknown device '{device}'; use one of {', '.join(DEVICES)}.")
    if not 0 <= seed <= MAX_SEED:
        raise ToolkitError(f"the seed must be between 0 and {MAX_SEED:,} (2**32 - 1); got {seed}.")
    sections = run_sections(dataset_spec, encoder_spec, model_spec)
    values: dict[str, Any] = {}
    if started_from is not None:
        values |= init_params(Path(init), started_from, model, encoder, same_data)
    chosen = {"dataset": dataset, "model": model, "encoder": encoder}
    replaced = {group: name for group, name in chosen.items() if settings.get(group) not in (None, name)}
    values |= run_file.checked_params(sections, replaced)
    resolved = resolve(sections, {**values, **(params or {})})
    if started_from is not None:
        check_kept_params(Path(init), started_from, resolved)
    configs = {"dataset": dataset_spec.config, "encoder": encoder_spec.config, "model": model_spec.config,
               "split": SplitConfig, "train": TrainConfig}
    for section, config_class in configs.items():
        if config_class is not None:
            config_class(**resolved[section])  # each part's rules across its parameters
    return RunPlan(
        dataset_spec, encoder_spec, model_spec, resolved, seed, device,
        Path(output) if output is not None else None, registry, tuple(plugins),
        Path(init) if init is not None else None, tuple(track),
    )


def run_sections(dataset: DatasetSpec, encoder: EncoderSpec, model: ModelSpec) -> list[Section]:
    """The parameter groups of a run, `--param GROUP.NAME=VALUE`'s GROUPs: dataset, encoder,
    model, split and train (the trainer's with the model's own defaults and spaces)."""
    return [
        Section("dataset", f"dataset '{dataset.name}'", dataset.params),
        Section("encoder", f"encoder '{encoder.name}'", encoder.params),
        Section("model", f"model '{model.name}'", model.params),
        Section("split", "the split", SPLIT_PARAMS),
        Section("train", "the trainer", train_params(model)),
    ]


def model_settings(
    model: ModelSpec, settings: Mapping[str, Any], owner: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked `model.NAME` and `train.NAME` settings for `model` as one part of a larger model
    (an ensemble's member, named `owner` in messages): the model's parameters with its defaults
    filled in, and the trainer values the settings set (over the model's train defaults)."""
    sections = {"model": Section("model", owner, model.params),
                "train": Section("train", owner, train_params(model))}
    groups: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for key, value in settings.items():
        group, dot, name = key.partition(".")
        if not dot or group not in groups:
            name = name or key
            owners = [f"{s.name}.{name}" for s in sections.values() if any(p.name == name for p in s.params)]
            raise ToolkitError(
                f"{owner}: setting '{key}' needs its group, model or train"
                + (f": write {' or '.join(owners)}." if owners else f" (e.g. model.{name}).")
            )
        groups[group][name] = value
    model_params = resolve([sections["model"]], groups["model"])["model"]
    trainer = resolve([sections["train"]], groups["train"])["train"]
    return model_params, {name: trainer[name] for name in groups["train"]}


def train_params(model: ModelSpec) -> tuple[Param, ...]:
    """The trainer's parameters with the model's own defaults (`ModelSpec.train_defaults`)
    and search spaces (`ModelSpec.train_search`)."""
    names = {p.name for p in TRAIN_PARAMS}
    unknown = sorted((set(model.train_defaults) | set(model.train_search)) - names)
    if unknown:
        raise ToolkitError(
            f"model '{model.name}' sets train defaults or search spaces for unknown trainer "
            f"parameters: {', '.join(unknown)}; fix the model plugin."
        )
    owner = f"model '{model.name}' train default"
    params = []
    for param in TRAIN_PARAMS:
        if param.name in model.train_defaults:
            param = replace(param, default=param.convert(model.train_defaults[param.name], owner))
        if param.name in model.train_search:
            param = replace(param, search=model.train_search[param.name])
            problem = declaration_problem(param)
            if problem:
                raise ToolkitError(f"model '{model.name}' train search for '{param.name}': {problem}.")
        params.append(param)
    return tuple(params)


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the data split, the fitted encoder, the trained model and its
    training history, the model's class probabilities for the held-out test texts, their
    evaluation and the run folder. `report` and `run_dir` are None only on a torchrun rank
    other than 0: rank 0 alone evaluates and writes the run folder."""

    plan: RunPlan
    split: Split
    encoder: Encoder
    model: nn.Module  # on the CPU, in eval mode, with the best validation weights
    history: pd.DataFrame  # one row per epoch, see toolkit.training.train
    test_probabilities: np.ndarray  # (test texts, classes), calibrated (see `calibration`)
    test_targets: np.ndarray  # (test texts,) indices into `classes`
    classes: tuple[str, ...]
    train_seconds: float  # the fit: encoder fitted, model built and trained (validation included)
    stop_reason: str
    best_epoch: int | None
    device: str
    report: Report | None = None  # the test split's evaluation
    run_dir: Path | None = None  # where the run folder was written
    interrupted: bool = False  # training was stopped by Ctrl-C; the run holds what it learned
    epochs_completed: int = 0
    epochs_planned: int = 0
    truncated_texts: int = 0  # texts longer than train.max_length, cut to it
    world_size: int = 1  # processes that trained it (torchrun ranks); only rank 0 evaluates and writes
    warm_start: WarmStart | None = None  # what the run started from (`init`), None when from scratch
    hook_failures: tuple[str, ...] = ()  # plugins' lifecycle hooks that failed, as warned on stderr
    calibration: Calibration | None = None  # temperature and conformal scores (rank 0 only)
    #: Multi-label runs: the decision rule chosen on validation (toolkit.multilabel.threshold_record),
    #: and the test texts' true classes as a 0/1 matrix (test texts, classes). None otherwise.
    multi_label: dict[str, Any] | None = None
    test_label_sets: np.ndarray | None = None
    engine: str = "torch"  # what computed the training steps (train.engine): torch or compiled

    def predictor(self, threads: int | None = None) -> Predictor:
        """The trained model as a `Predictor`, as `load_run` would give it from the run folder:
        texts normalised as the training data was and cut to `train.max_length`. `threads`:
        torch CPU threads per forward pass (default: as many as training used)."""
        from toolkit.predictor import Predictor

        train = self.plan.params["train"]
        config = {"train": train, "provenance": dict(self.split.train.provenance)}
        if self.multi_label is not None:
            config["multi_label"] = self.multi_label
        return Predictor(self.model, self.encoder, self.classes, config, self.run_dir,
                         threads or train["threads"] or 1, self.calibration)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (len(texts), classes) from the trained model, the texts
        normalised as the training data was."""
        return self.predictor().predict_proba(texts)

    def test_predictions(self) -> np.ndarray:
        """The predicted class index of every test text."""
        return self.test_probabilities.argmax(axis=1)

    def test_accuracy(self) -> float:
        return float((self.test_predictions() == self.test_targets).mean())

    def test_macro_f1(self) -> float:
        """F1 averaged over the classes, each counting the same (scikit-learn's macro average
        over the classes in the truth or the predictions, as in the run's report)."""
        from sklearn.metrics import f1_score

        return float(f1_score(self.test_targets, self.test_predictions(), average="macro", zero_division=0))


def run(
    dataset: str | None = None,
    model: str | None = None,
    encoder: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
    progress: bool | None = None,
    config: str | Path | RunFile | Mapping[str, Any] | None = None,
    init: str | Path | None = None,
    track: Sequence[str] = (),
) -> RunResult:
    """Train `model` on `dataset` and evaluate it on the held-out split.

    The run folder (`output`, or runs/<time>-<dataset>-<model>) is claimed before any data is
    read: a folder with files in it, or one another run is writing, is refused at once.
    Texts longer than `train.max_length` characters are cut to it (`truncated_texts`).
    `progress` shows a progress bar while training; by default there is one when stderr is a
    terminal, and otherwise a plain line on stderr per epoch.
    Ctrl-C stops training early and the run goes on with what was learned so far, marked
    `interrupted` (in metrics.json and the report's title too).
    `config` is a run config file (see `plan_run`; every run folder writes one, config.toml);
    `init` a run folder to start from (a warm start, see `toolkit.warmstart`); `track` the
    trackers to log it to (e.g. "mlflow"). Plugins' lifecycle hooks see the run start, each
    epoch end and the run end; one that fails is a warning, and the run goes on.
    Unset names default to model scratch-rnn, encoder onehot, seed 0, device auto.
    """
    plan = plan_run(dataset, model, encoder, params, seed, device, output, plugins, config, init, track)
    return run_plan(plan, progress)


def run_plan(
    plan: RunPlan, progress: bool | None = None,
    check_data: Callable[[Mapping[str, Any]], None] | None = None,
) -> RunResult:
    """Train and evaluate a checked plan (see `run`); `check_data(provenance)` sees the data's
    provenance after it is loaded, before training, and may refuse it."""
    # only after the checks, so that a bad parameter is refused without loading pandas
    from toolkit import distributed
    from toolkit.inference import resolve_device
    from toolkit.memory import check_fits
    from toolkit.rundir import claim_default_run_dir, claim_run_dir

    ranks, target = distributed.join(resolve_device(plan.device))  # rank 0 of 1 without torchrun
    try:
        unfitted = plan.encoder.factory(**plan.params["encoder"])
    except Exception:  # noqa: BLE001 - said with its context when the encoder is fitted
        unfitted = None
    if unfitted is not None:
        check_fits(plan.model, plan.params, unfitted, 2, target)  # before any data is read
    if not ranks.is_main:  # under torchrun: rank 0 alone claims and writes the run folder
        return _train_and_evaluate(plan, progress, target, None, check_data)
    claim = (
        claim_run_dir(plan.output) if plan.output is not None
        else claim_default_run_dir(plan.dataset.name, plan.model.name)
    )
    lifecycle = Lifecycle(plan.registry)
    try:
        lifecycle.call("run_started", plan=plan)
        result = _train_and_evaluate(plan, progress, target, claim, check_data, lifecycle)
    except BaseException as exc:
        claim.release()
        lifecycle.call("run_failed", plan=plan, error=exc)
        raise
    lifecycle.call("run_ended", plan=plan, run_dir=result.run_dir, result=result)
    return replace(result, hook_failures=tuple(lifecycle.failures))


def load_split(plan: RunPlan) -> tuple[Split, int]:
    """The plan's dataset, its texts cut to `train.max_length`, split by the plan's seed; and
    how many texts were cut."""
    from toolkit.normalization import cut_texts
    from toolkit.splits import split_dataset

    label = plan.registry.label("dataset", plan.dataset.name)
    data = loaded_dataset(label, plan.dataset, plan.params["dataset"])
    texts, truncated = cut_texts(data.texts, plan.params["train"]["max_length"])
    if truncated:
        data = replace(data, texts=tuple(texts))
    return split_dataset(data, seed=plan.seed, **plan.params["split"]), truncated


def fitted_encoder(plan: RunPlan, train_texts: Sequence[str]) -> Encoder:
    """The plan's encoder fitted on `train_texts`, its contract checked before any training."""
    label = plan.registry.label("encoder", plan.encoder.name)
    text_encoder = plan.encoder.factory(**plan.params["encoder"])
    if getattr(text_encoder, "produces", None) not in plan.model.consumes:
        raise ToolkitError(
            f"encoder '{plan.encoder.name}' built an encoder producing "
            f"{getattr(text_encoder, 'produces', None)!r}, but model '{plan.model.name}' consumes "
            f"{' or '.join(plan.model.consumes)}; the encoder plugin is inconsistent."
        )
    text_encoder.fit(train_texts)
    checked_state(label, text_encoder.state())
    probe = list(train_texts[:ENCODER_PROBE])
    check_encoded(label, text_encoder.encode(probe), len(probe), text_encoder.vocab_size)
    return text_encoder


def build_model(
    plan: RunPlan, text_encoder: Encoder, num_classes: int, multi_label: bool = False
) -> nn.Module:
    """The plan's model for `text_encoder`'s vocabulary, its initial weights seeded by the plan
    (`multi_label`: the run's data has label sets, see `ModelSpec.build`)."""
    import torch

    torch.manual_seed(plan.seed)
    return plan.model.build(
        vocab_size=text_encoder.vocab_size, num_classes=num_classes, params=plan.params["model"],
        encoder=text_encoder, multi_label=multi_label,
    )


def _render(
    model: nn.Module, encoder: Encoder, texts: Sequence[str], targets: Sequence[int], record: RunRecord
) -> Path:
    """The run's pages, its explanations (computed now, from the model and the test texts) included."""
    from toolkit.explain_report import build_for_run
    from toolkit.rendering import render_report

    build_for_run(record, model, encoder, texts, targets)
    return render_report(record)


def _train_and_evaluate(
    plan: RunPlan, progress: bool | None, device: torch.device, claim: RunClaim | None,
    check_data: Callable[[Mapping[str, Any]], None] | None = None,
    lifecycle: Lifecycle | None = None,
) -> RunResult:
    """Load, split, encode, train and predict the test split; then, with a `claim` (rank 0),
    evaluate and write the run folder into it."""
    import numpy as np

    from toolkit import distributed
    from toolkit.calibration import Calibration, evaluate_calibration
    from toolkit.evaluation import confused_examples, evaluate_predictions, with_summary_rows
    from toolkit.inference import predict_proba, torch_threads
    from toolkit.memory import allocation_failures, check_fits
    from toolkit.rundir import write_run
    from toolkit.training import thread_count, train

    seed = plan.seed
    ranks, target = distributed.current(), device
    split, truncated = load_split(plan)
    if check_data is not None:
        check_data(split.train.provenance)
    started_from = None
    fit_started = time.perf_counter()  # the fit, as a scikit-learn fit is timed: the encoder's too
    if plan.init is not None:
        from toolkit.warmstart import warm_start

        text_encoder, network, split, started_from = warm_start(
            plan.init, plan.plugins, plan.params["train"]["new_classes"], split,
            lambda fitted, count: build_model(plan, fitted, count, split.train.multi_label),
        )
    else:
        text_encoder = fitted_encoder(plan, split.train.texts)
    classes = split.train.classes
    multi = split.train.multi_label
    same = distributed.digest(split.train.texts, split.train.targets, text_encoder.state())
    distributed.check_same_everywhere("training data or encoder", same)
    check_fits(plan.model, plan.params, text_encoder, len(classes), target)  # the vocabulary as learned
    hooks = [lambda row: lifecycle.call("epoch_ended", plan=plan, epoch=row)] if lifecycle else []
    with allocation_failures(f"training model '{plan.model.name}'"):
        if started_from is None:
            network = build_model(plan, text_encoder, len(classes), multi)
        trained = train(
            network, text_encoder, split.train, split.val, plan.params["train"],
            seed=seed, device=target, progress=progress, epoch_callbacks=hooks,
        )
    fit_seconds = time.perf_counter() - fit_started
    test_texts = split.test.texts if ranks.is_main else ()
    # as many threads as training used: torch's default (one per core) collapses on a busy machine
    with torch_threads(thread_count(plan.params["train"]["threads"])):
        raw_probabilities = predict_proba(trained.model, text_encoder, test_texts, target, multi)
    test_targets = np.asarray(split.test.targets if ranks.is_main else (), dtype=np.int64)
    calibration = (
        _calibrate(plan, split, trained.model, text_encoder, target) if ranks.is_main and not multi
        else Calibration()  # multi-label probabilities are each class's own: no temperature, no sets
    )
    probabilities = calibration.apply(raw_probabilities)
    rule = truth_sets = None
    if multi and ranks.is_main:
        from toolkit.multilabel import multi_hot

        rule = _decision_rule(plan, split, trained.model, text_encoder, target)
        truth_sets = multi_hot(split.test.label_sets or (), len(classes))
    model = trained.model.cpu().eval()
    status = {
        "seconds": round(fit_seconds, 3), "stop_reason": trained.stop_reason, "engine": trained.engine,
        "best_epoch": trained.best_epoch, "interrupted": trained.interrupted,
        "epochs_completed": trained.epochs_completed, "epochs_planned": trained.epochs_planned,
        "truncated_texts": truncated, "world_size": ranks.world_size,
        "effective_batch_size": plan.params["train"]["batch_size"] * ranks.world_size,
    }
    report = run_dir = None
    if claim is not None and multi:
        report, evaluation, mistakes, render = _multi_label_report(
            rule, truth_sets, probabilities, split.test.texts, classes)
    elif claim is not None:
        evaluation = evaluate_calibration(calibration, raw_probabilities, test_targets)
        report = with_summary_rows(evaluate_predictions(test_targets, probabilities, classes), evaluation)
        report = _with_any_correct(report, split, test_targets, probabilities)
        mistakes = confused_examples(split.test.texts, test_targets, probabilities, classes)
        render = functools.partial(_render, model, text_encoder, split.test.texts, test_targets)
    if claim is not None:
        run_config = _run_config(plan, split, target.type, status, classes, started_from)
        if rule is not None:
            run_config["multi_label"] = rule
        run_dir = write_run(
            claim,
            config=run_config,
            weights=model.state_dict(),
            encoder={"name": plan.encoder.name, "params": plan.params["encoder"],
                     "state": text_encoder.state()},
            classes=classes,
            report=report,
            history=trained.history,
            mistakes=mistakes,
            render=render,
            files={CONFIG_TOML: plan.run_toml()},
            calibration=calibration.to_json(),
            evaluation=evaluation,
        )
    return RunResult(
        plan=plan, split=split, encoder=text_encoder, model=model, history=trained.history,
        test_probabilities=probabilities, test_targets=test_targets, classes=classes,
        train_seconds=fit_seconds, stop_reason=trained.stop_reason, best_epoch=trained.best_epoch,
        device=target.type, report=report, run_dir=run_dir, interrupted=trained.interrupted,
        epochs_completed=trained.epochs_completed, epochs_planned=trained.epochs_planned,
        truncated_texts=truncated, world_size=ranks.world_size, warm_start=started_from,
        calibration=calibration, multi_label=rule, test_label_sets=truth_sets, engine=trained.engine,
    )


def _decision_rule(plan: RunPlan, split: Split, model: nn.Module, text_encoder: Encoder,
                   device: torch.device) -> dict[str, Any]:
    """A multi-label run's thresholds, chosen on the validation split (never the test split):
    see `toolkit.multilabel.choose_thresholds`."""
    from toolkit.inference import predict_proba
    from toolkit.multilabel import choose_thresholds, multi_hot, threshold_record

    train = plan.params["train"]
    classes = split.train.classes
    val = split.val
    probabilities = predict_proba(model, text_encoder, val.texts, device, True) if len(val) else None
    truth = multi_hot(val.label_sets or (), len(classes))
    thresholds = choose_thresholds(
        probabilities if probabilities is not None else truth.astype(float), truth, train["threshold"],
        train["allow_empty"],
    )
    return threshold_record(train["threshold"], thresholds, classes, train["allow_empty"])


def _multi_label_report(
    rule: dict[str, Any], truth: np.ndarray, probabilities: np.ndarray, texts: Sequence[str],
    classes: Sequence[str],
) -> tuple[Report, dict[str, Any], pd.DataFrame, Callable[[RunRecord], Path]]:
    """A multi-label run's test report, its extra metrics.json sections (the thresholds and the
    most frequent wrong extra and missing labels), its mistakes and its pages (without
    explanations, which explain one top class)."""
    import numpy as np

    from toolkit.evaluation import MISTAKES_MAX
    from toolkit.multilabel import evaluate_label_sets, label_errors, set_mistakes
    from toolkit.rendering import render_report

    thresholds = np.asarray([rule["thresholds"][c] for c in classes])
    report, chosen = evaluate_label_sets(truth, probabilities, thresholds, classes, rule["allow_empty"])
    evaluation = {"multi_label": {**rule, "label_errors": label_errors(truth, chosen, classes)}}
    mistakes = set_mistakes(texts, truth, chosen, probabilities, classes, MISTAKES_MAX)
    return report, evaluation, mistakes, render_report


def _with_any_correct(report: Report, split: Split, targets: np.ndarray, probabilities: np.ndarray) -> Report:
    """A single-label report with `any_correct_accuracy` and `accuracy_ceiling` added when some
    text of the data stands under several classes (toolkit.multilabel.any_correct); else as it is."""
    import pandas as pd

    from toolkit.evaluation import Report
    from toolkit.multilabel import any_correct

    classes_of_text: dict[str, set[int]] = {}
    parts = [split.train, split.val, split.test, *([split.calibration] if split.calibration else [])]
    for part in parts:
        for text, target in zip(part.texts, part.targets, strict=True):
            classes_of_text.setdefault(text, set()).add(target)
    if all(len(found) == 1 for found in classes_of_text.values()) or not len(targets):
        return report
    extra = any_correct(split.test.texts, targets, probabilities.argmax(axis=1), classes_of_text)
    summary = pd.concat([report.summary, pd.DataFrame({"value": extra})])
    summary.index.name = "metric"
    return Report(summary, report.per_class, report.confusion, report.confusion_normalized)


def _calibrate(plan: RunPlan, split: Split, model: nn.Module, text_encoder: Encoder,
               device: torch.device) -> Calibration:
    """The run's temperature, fitted on the validation split (the test split is not read), and
    the conformal scores of the calibration split (of validation when there is none)."""
    import numpy as np

    from toolkit.calibration import fit_calibration
    from toolkit.inference import predict_proba

    def scored(part: TextDataset | None) -> tuple[np.ndarray, np.ndarray] | None:
        if part is None or not len(part):
            return None
        probabilities = predict_proba(model, text_encoder, part.texts, device)
        return probabilities, np.asarray(part.targets, dtype=np.int64)

    validation = scored(split.val)
    held_out = scored(split.calibration)
    if validation is None:  # a tiny data set: nothing to fit on, nor to score
        return Calibration()
    return fit_calibration(plan.params["train"]["calibrate"], validation, held_out)


def _run_config(
    plan: RunPlan, split: Split, device: str, status: dict[str, Any], classes: Sequence[str],
    started_from: WarmStart | None = None,
) -> dict[str, Any]:
    """Everything needed to understand, repeat and reload the run (config.json); `status` is
    how training ended, recorded in metrics.json too."""

    def plugin(kind: str, name: str) -> dict[str, Any]:
        owner = plan.registry.owner(kind, name)
        recorded = {"name": name, "plugin": owner.name, "distribution": owner.distribution,
                    "version": owner.version, "params": plan.params[kind]}
        if owner.path:  # a file plugin has no version: its path and contents identify it
            recorded |= {"plugin_file": owner.path, "plugin_sha256": owner.sha256}
        return recorded

    return {
        "seed": plan.seed,
        "device": device,
        "dataset": plugin("dataset", plan.dataset.name),
        "encoder": plugin("encoder", plan.encoder.name),
        "model": plugin("model", plan.model.name),
        "split": {**plan.params["split"], "strategy": split.strategy,
                  "seed": split.seed, "sizes": split.sizes()},
        "train": plan.params["train"],
        "training": status,
        "classes": list(classes),
        "provenance": dict(split.train.provenance),
        "plugins": [_plugin_as_recorded(p) for p in plan.plugins],
        "init": started_from.record() if started_from is not None else None,
        "versions": library_versions(),
    }


def library_versions() -> dict[str, str]:
    """The versions that decide whether a run repeats exactly: Python, torch, numpy, and numba
    when it is installed (train.engine's compiled step)."""
    import contextlib
    import importlib.metadata
    import platform

    import numpy as np
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        versions["numba"] = importlib.metadata.version("numba")
    return versions
