"""The plugin contract, checked: at registration (names, help, parameters against the
function's signature) and at each boundary (what `load()` and `encode()` return, that encoder
state survives JSON). Each check returns or raises one line naming the part at fault.

Light at import (no torch): the registry checks every spec when the CLI starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean
from toolkit.params import Config, Param, declaration_problem, params_of
from toolkit.types import DatasetSpec, EmptyDatasetError, ModelSpec, Spec, TextDataset

#: What users type for a dataset, encoder, model or plugin skeleton: lower case, digits, hyphens.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
#: Arguments toolkit passes to a model factory besides the declared parameters.
MODEL_ARGUMENTS = ("vocab_size", "num_classes")


def spec_problem(kind: str, spec: Spec) -> str | None:
    """Why `spec` cannot be registered, or None: its name, help, parameters and functions."""
    if not isinstance(spec.name, str) or not NAME_PATTERN.fullmatch(spec.name):
        return (
            f"{kind} name {spec.name!r} must be lower-case letters, digits and hyphens, "
            "starting with a letter (e.g. 'my-model')"
        )
    label = f"{kind} '{spec.name}'"
    if not isinstance(spec.help, str) or not spec.help.strip():
        return f"{label} has an empty help; give a one-line description"
    problem = _config_problem(spec)
    if problem:
        return f"{label}: {problem}"
    names = [p.name for p in spec.params if isinstance(p, Param)]
    for param in spec.params:
        if not isinstance(param, Param):
            return f"{label} lists {type(param).__name__} {param!r} in params; use toolkit.Param"
        problem = declaration_problem(param)
        if problem:
            return f"{label} parameter '{param.name}': {problem}"
        if names.count(param.name) > 1:
            return f"{label} declares parameter '{param.name}' twice"
    functions: list[tuple[str, Callable[..., Any] | None, Sequence[str]]]
    if isinstance(spec, DatasetSpec):
        functions = [("load", spec.load, ()), ("download", spec.download, ()),
                     ("location", spec.location, ())]
    elif isinstance(spec, ModelSpec):
        functions = [("factory", spec.factory, MODEL_ARGUMENTS),
                     ("array_factory", spec.array_factory, MODEL_ARGUMENTS)]
    else:
        functions = [("factory", spec.factory, ())]
    for role, function, fixed in functions:
        if function is None:
            continue
        if not callable(function):
            return f"{label}: {role} is {type(function).__name__}, not a function"
        problem = signature_problem(function, spec.params, fixed)
        if problem:
            return f"{label}: {role}{problem}"
    return None


def _config_problem(spec: Spec) -> str | None:
    config = spec.config
    if config is None:
        return None
    if not (isinstance(config, type) and issubclass(config, Config) and dataclasses.is_dataclass(config)):
        return f"config must be a dataclass subclassing toolkit.Config; got {config!r}"
    try:
        declared = params_of(config)
    except TypeError as exc:
        return str(exc)
    if spec.params != declared:
        return "give params or config, not both (params come from the config)"
    try:
        config()
    except ToolkitError as exc:
        return f"its config's defaults break its own rules: {exc}"
    return None


def signature_problem(
    function: Callable[..., Any], params: Sequence[Param], fixed: Sequence[str]
) -> str | None:
    """Why `function(**fixed, **params)` would fail, judged from its signature, or None."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some callables (builtins) have no signature to read
        return None
    accepted = {
        name for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    declared = [p.name for p in params]
    for name in [*fixed, *declared]:
        if name not in accepted and not takes_any:
            hint = did_you_mean(name, sorted(accepted - set(fixed)))
            return (
                f"() has no argument '{name}', which toolkit passes"
                f"{' (a declared Param)' if name in declared else ''}.{hint} "
                f"Its arguments: {', '.join(signature.parameters) or '(none)'}"
            )
    for name, p in signature.parameters.items():
        required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and name not in declared and name not in fixed:
            return f"() requires argument '{name}', which no Param declares; declare it or give it a default"
    return None


# -- boundaries --------------------------------------------------------------------------


def loaded_dataset(label: str, spec: DatasetSpec, params: Mapping[str, Any]) -> TextDataset:
    """`spec.load(**params)`, checked; an empty dataset is named with the parameters that
    differ from their defaults, the filters that may have left every text out."""
    try:
        data = spec.load(**params)
    except EmptyDatasetError as exc:
        changed = [f"{p.name}={params[p.name]!r}" for p in spec.params
                   if p.name in params and params[p.name] != p.default]
        settings = f"with {', '.join(changed)}" if changed else "with its default parameters"
        raise ToolkitError(
            f"{label} {settings} is empty: {exc.args[0]}; loosen the parameters that leave texts "
            "out, or check the data it reads."
        ) from exc
    return checked_dataset(label, data)


def checked_dataset(label: str, data: Any) -> TextDataset:
    """`data` if it is what a dataset's `load()` must return; else a ToolkitError."""
    if not isinstance(data, TextDataset):
        raise ToolkitError(
            f"{label}: load() returned {type(data).__name__}; it must return a toolkit.TextDataset "
            "(build one with toolkit.TextDataset.from_pairs(texts, labels, provenance))."
        )
    problem = json_problem(data.provenance, "provenance", tuples_ok=True)
    if problem:
        raise ToolkitError(f"{label}: the dataset's {problem}.")
    return data


def check_encoded(label: str, encoded: Any, count: int, vocab_size: int | None = None) -> None:
    """Check what `encode(texts)` returned for `count` texts: (indices, lengths) LongTensors,
    lengths from 1 to the width, indices below `vocab_size`."""
    import torch

    expected = (
        "it must return (indices, lengths): a LongTensor (texts, time) padded with 0 and a "
        "LongTensor (texts,) of lengths"
    )
    if not (isinstance(encoded, tuple) and len(encoded) == 2
            and all(isinstance(t, torch.Tensor) for t in encoded)):
        raise ToolkitError(f"{label}: encode() returned {_shape_of(encoded)}; {expected}.")
    indices, lengths = encoded
    if (indices.dtype != torch.long or lengths.dtype != torch.long or indices.dim() != 2
            or tuple(lengths.shape) != (count,) or indices.shape[0] != count):
        raise ToolkitError(
            f"{label}: encode() returned indices {tuple(indices.shape)} {indices.dtype} and lengths "
            f"{tuple(lengths.shape)} {lengths.dtype} for {count} texts; {expected}."
        )
    if count and (int(lengths.min()) < 1 or int(lengths.max()) > indices.shape[1]):
        raise ToolkitError(
            f"{label}: encode() returned lengths from {int(lengths.min())} to {int(lengths.max())} "
            f"for indices {indices.shape[1]} wide; each length must be at least 1 and at most the width."
        )
    if count and int(indices.min()) < 0:
        raise ToolkitError(f"{label}: encode() returned the negative index {int(indices.min())}.")
    if vocab_size is not None and count and int(indices.max()) >= vocab_size:
        raise ToolkitError(
            f"{label}: encode() returned index {int(indices.max())}, but the encoder's vocab_size is "
            f"{vocab_size}; vocab_size must be larger than every index encode() returns."
        )


def checked_state(label: str, state: Any) -> dict[str, Any]:
    """The encoder's `state()` if it survives a JSON round trip unchanged; else a ToolkitError
    naming the first key that does not."""
    if not isinstance(state, dict):
        raise ToolkitError(f"{label}: state() returned {type(state).__name__}; it must return a dict.")
    problem = json_problem(state, "state")
    if problem:
        raise ToolkitError(f"{label}: {problem}; state() must return plain JSON (dict, list, str, "
                           "int, float, bool, None), as it is saved in encoder.json.")
    return state


def json_problem(value: Any, path: str, tuples_ok: bool = False) -> str | None:
    """Where `value` would not come back from JSON as it went in, e.g. "state['vocab'] is a set"
    (`tuples_ok`: a tuple may come back as a list)."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value}, which JSON cannot store"
    if isinstance(value, list) or (tuples_ok and isinstance(value, tuple)):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{path}[{i}]", tuples_ok)
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are strings"
            problem = json_problem(item, f"{path}[{key!r}]", tuples_ok)
            if problem:
                return problem
        return None
    kind = type(value).__name__
    if isinstance(value, tuple):
        return f"{path} is a tuple, which JSON gives back as a list; use a list"
    return f"{path} is a {kind}, which JSON cannot store"


def _shape_of(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"a {type(value).__name__}"


def round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """`state` as it comes back from encoder.json."""
    return json.loads(json.dumps(state, allow_nan=False))

