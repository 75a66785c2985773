"""What is available, from Python: the notebook twin of `toolkit plugins/datasets/models/encoders`."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.registry import PluginInfo, load_registry
from toolkit.types import DatasetSpec, EncoderSpec, ModelSpec


def list_plugins(plugins: Sequence[str] = ()) -> list[PluginInfo]:
    """Every loaded plugin: name, source, distribution, version, error, what it provides."""
    return list(load_registry(plugins).plugins)


def list_datasets(plugins: Sequence[str] = ()) -> dict[str, DatasetSpec]:
    """Registered datasets by name (`plugins`: extra modules or .py files to load)."""
    return dict(sorted(load_registry(plugins).specs["dataset"].items()))  # type: ignore[arg-type]


def list_encoders(plugins: Sequence[str] = ()) -> dict[str, EncoderSpec]:
    """Registered encoders by name."""
    return dict(sorted(load_registry(plugins).specs["encoder"].items()))  # type: ignore[arg-type]


def list_models(plugins: Sequence[str] = ()) -> dict[str, ModelSpec]:
    """Registered models by name."""
    return dict(sorted(load_registry(plugins).specs["model"].items()))  # type: ignore[arg-type]
