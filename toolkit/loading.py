"""Loading a registered dataset by name, from Python: what `toolkit datasets show` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolkit.contracts import loaded_dataset
from toolkit.params import Section, resolve
from toolkit.registry import load_registry
from toolkit.types import DatasetSpec, TextDataset


def dataset_params(
    name: str, params: Mapping[str, Any] | None = None, plugins: Sequence[str] = ()
) -> tuple[DatasetSpec, dict[str, Any]]:
    """The dataset `name` and its checked parameters, defaults filled in.

    `params` keys are the dataset's parameter names, bare or as `dataset.NAME`.
    """
    spec = load_registry(plugins).dataset(name)
    section = Section("dataset", f"dataset '{name}'", spec.params)
    return spec, resolve([section], params or {})["dataset"]


def load_dataset(
    name: str, params: Mapping[str, Any] | None = None, plugins: Sequence[str] = ()
) -> TextDataset:
    """Load the registered dataset `name`, e.g. `load_dataset("names", {"normalization": "raw"})`."""
    spec, resolved = dataset_params(name, params, plugins)
    return loaded_dataset(load_registry(plugins).label("dataset", name), spec, resolved)
