"""The Python API behind the CLI: `toolkit.run(...)` does what `toolkit run` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.contracts import check_encoded, checked_state, loaded_dataset
from toolkit.errors import ToolkitError
from toolkit.limits import MAX_SEED
from toolkit.params import Param, Section, declaration_problem, resolve
from toolkit.registry import Registry, load_registry
from toolkit.splits import SPLIT_PARAMS, Split, SplitConfig
from toolkit.train_config import TRAIN_PARAMS, TrainConfig
from toolkit.types import DatasetSpec, Encoder, EncoderSpec, ModelSpec, TextDataset

if TYPE_CHECKING:  # torch, numpy and pandas load on first use, so the CLI starts fast
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from toolkit.calibration import Calibration
    from toolkit.evaluation import Report
    from toolkit.predictor import Predictor
    from toolkit.rundir import RunClaim

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_ENCODER = "onehot"
#: Training texts encoded to check the encoder's output before training (the trainer checks all).
ENCODER_PROBE = 256


@dataclass(frozen=True)
class RunPlan:
    """A checked run: plugins found, parameters validated, encoder and model compatible."""

    dataset: DatasetSpec
    encoder: EncoderSpec
    model: ModelSpec
    params: dict[str, dict[str, Any]]
    seed: int
    device: str
    output: Path | None
    registry: Registry

    def sections(self) -> list[Section]:
        """The parameter groups this run's `params` were resolved from (see `run_sections`)."""
        return run_sections(self.dataset, self.encoder, self.model)


def plan_run(
    dataset: str,
    model: str,
    encoder: str = DEFAULT_ENCODER,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
) -> RunPlan:
    """Resolve names and parameters and check them, before any data is read.

    `params` maps `group.name` (groups: dataset, encoder, model, split, train) or a bare
    name that only one group declares, to a value or its string form.
    """
    registry = load_registry(plugins)
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
    resolved = resolve(run_sections(dataset_spec, encoder_spec, model_spec), params or {})
    configs = {"dataset": dataset_spec.config, "encoder": encoder_spec.config, "model": model_spec.config,
               "split": SplitConfig, "train": TrainConfig}
    for section, config in configs.items():
        if config is not None:
            config(**resolved[section])  # each part's rules across its parameters
    return RunPlan(
        dataset_spec, encoder_spec, model_spec, resolved, seed, device,
        Path(output) if output is not None else None, registry,
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
    train_seconds: float
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
    calibration: Calibration | None = None  # temperature and conformal scores (rank 0 only)

    def predictor(self, threads: int | None = None) -> Predictor:
        """The trained model as a `Predictor`, as `load_run` would give it from the run folder:
        texts normalised as the training data was and cut to `train.max_length`. `threads`:
        torch CPU threads per forward pass (default: as many as training used)."""
        from toolkit.predictor import Predictor

        train = self.plan.params["train"]
        config = {"train": train, "provenance": dict(self.split.train.provenance)}
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
    dataset: str,
    model: str,
    encoder: str = DEFAULT_ENCODER,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
    progress: bool | None = None,
) -> RunResult:
    """Train `model` on `dataset` and evaluate it on the held-out split.

    The run folder (`output`, or runs/<time>-<dataset>-<model>) is claimed before any data is
    read: a folder with files in it, or one another run is writing, is refused at once.
    Texts longer than `train.max_length` characters are cut to it (`truncated_texts`).
    `progress` shows a progress bar while training; by default there is one when stderr is a
    terminal, and otherwise a plain line on stderr per epoch.
    Ctrl-C stops training early and the run goes on with what was learned so far, marked
    `interrupted` (in metrics.json and the report's title too).
    """
    plan = plan_run(dataset, model, encoder, params, seed, device, output, plugins)
    # only after the checks, so that a bad parameter is refused without loading pandas
    from toolkit import distributed
    from toolkit.inference import resolve_device
    from toolkit.rundir import claim_default_run_dir, claim_run_dir

    ranks, target = distributed.join(resolve_device(plan.device))  # rank 0 of 1 without torchrun
    if not ranks.is_main:  # under torchrun: rank 0 alone claims and writes the run folder
        return _train_and_evaluate(plan, progress, target, None)
    claim = (
        claim_run_dir(plan.output) if plan.output is not None
        else claim_default_run_dir(plan.dataset.name, plan.model.name)
    )
    try:
        return _train_and_evaluate(plan, progress, target, claim)
    except BaseException:
        claim.release()
        raise


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


def build_model(plan: RunPlan, text_encoder: Encoder, num_classes: int) -> nn.Module:
    """The plan's model for `text_encoder`'s vocabulary, its initial weights seeded by the plan."""
    import torch

    torch.manual_seed(plan.seed)
    return plan.model.build(
        vocab_size=text_encoder.vocab_size, num_classes=num_classes, params=plan.params["model"],
        encoder=text_encoder,
    )


def _train_and_evaluate(
    plan: RunPlan, progress: bool | None, device: torch.device, claim: RunClaim | None
) -> RunResult:
    """Load, split, encode, train and predict the test split; then, with a `claim` (rank 0),
    evaluate and write the run folder into it."""
    import numpy as np

    from toolkit import distributed
    from toolkit.calibration import Calibration, evaluate_calibration
    from toolkit.evaluation import confused_examples, evaluate_predictions, with_summary_rows
    from toolkit.inference import predict_proba
    from toolkit.rendering import render_report
    from toolkit.rundir import write_run
    from toolkit.training import train

    seed = plan.seed
    ranks, target = distributed.current(), device
    split, truncated = load_split(plan)
    classes = split.train.classes
    text_encoder = fitted_encoder(plan, split.train.texts)
    same = distributed.digest(split.train.texts, split.train.targets, text_encoder.state())
    distributed.check_same_everywhere("training data or encoder", same)
    network = build_model(plan, text_encoder, len(classes))
    trained = train(
        network, text_encoder, split.train, split.val, plan.params["train"],
        seed=seed, device=target, progress=progress,
    )
    test_texts = split.test.texts if ranks.is_main else ()
    raw_probabilities = predict_proba(trained.model, text_encoder, test_texts, target)
    test_targets = np.asarray(split.test.targets if ranks.is_main else (), dtype=np.int64)
    calibration = (
        _calibrate(plan, split, trained.model, text_encoder, target) if ranks.is_main else Calibration()
    )
    probabilities = calibration.apply(raw_probabilities)
    model = trained.model.cpu().eval()
    status = {
        "seconds": round(trained.seconds, 3), "stop_reason": trained.stop_reason,
        "best_epoch": trained.best_epoch, "interrupted": trained.interrupted,
        "epochs_completed": trained.epochs_completed, "epochs_planned": trained.epochs_planned,
        "truncated_texts": truncated, "world_size": ranks.world_size,
        "effective_batch_size": plan.params["train"]["batch_size"] * ranks.world_size,
    }
    report = run_dir = None
    if claim is not None:
        evaluation = evaluate_calibration(calibration, raw_probabilities, test_targets)
        report = with_summary_rows(evaluate_predictions(test_targets, probabilities, classes), evaluation)
        run_dir = write_run(
            claim,
            config=_run_config(plan, split, target.type, status, classes),
            weights=model.state_dict(),
            encoder={"name": plan.encoder.name, "params": plan.params["encoder"],
                     "state": text_encoder.state()},
            classes=classes,
            report=report,
            history=trained.history,
            mistakes=confused_examples(split.test.texts, test_targets, probabilities, classes),
            render=render_report,
            calibration=calibration.to_json(),
            evaluation=evaluation,
        )
    return RunResult(
        plan=plan, split=split, encoder=text_encoder, model=model, history=trained.history,
        test_probabilities=probabilities, test_targets=test_targets, classes=classes,
        train_seconds=trained.seconds, stop_reason=trained.stop_reason, best_epoch=trained.best_epoch,
        device=target.type, report=report, run_dir=run_dir, interrupted=trained.interrupted,
        epochs_completed=trained.epochs_completed, epochs_planned=trained.epochs_planned,
        truncated_texts=truncated, world_size=ranks.world_size, calibration=calibration,
    )


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
    plan: RunPlan, split: Split, device: str, status: dict[str, Any], classes: Sequence[str]
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
    }
