"""The Python API behind the CLI: `toolkit.run(...)` does what `toolkit run` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.params import Section, resolve
from toolkit.registry import Registry, load_registry
from toolkit.splits import SPLIT_PARAMS
from toolkit.training import TRAIN_PARAMS
from toolkit.types import DatasetSpec, EncoderSpec, ModelSpec

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_ENCODER = "onehot"


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
    sections = [
        Section("dataset", f"dataset '{dataset}'", dataset_spec.params),
        Section("encoder", f"encoder '{encoder}'", encoder_spec.params),
        Section("model", f"model '{model}'", model_spec.params),
        Section("split", "the split", SPLIT_PARAMS),
        Section("train", "the trainer", TRAIN_PARAMS),
    ]
    resolved = resolve(sections, params or {})
    return RunPlan(
        dataset_spec, encoder_spec, model_spec, resolved, seed, device,
        Path(output) if output is not None else None, registry,
    )


def run(
    dataset: str,
    model: str,
    encoder: str = DEFAULT_ENCODER,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    output: str | Path | None = None,
    plugins: Sequence[str] = (),
) -> Any:
    """Train `model` on `dataset` and evaluate it on the held-out split."""
    plan = plan_run(dataset, model, encoder, params, seed, device, output, plugins)
    raise ToolkitError(
        f"planned a run of model '{plan.model.name}' on dataset '{plan.dataset.name}', "
        "but training is not available in this build yet."
    )
