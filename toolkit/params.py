"""Declared parameters of plugins, and turning `KEY=VALUE` strings into checked values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter a plugin accepts: the CLI lists, validates and sets it.

    `type` is one of int, float, str, bool. `choices`, when given, restricts the value.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPE_NAMES:
            raise TypeError(f"Param {self.name!r}: type must be int, float, str or bool")

    def convert(self, value: Any, owner: str) -> Any:
        """Return `value` as this parameter's type, or raise a ToolkitError naming `owner`."""
        converted = self._convert_type(value, owner)
        if self.choices is not None and converted not in self.choices:
            options = ", ".join(str(c) for c in self.choices)
            raise ToolkitError(
                f"{owner} parameter '{self.name}' must be one of {options}; got {value!r}."
            )
        return converted

    def _convert_type(self, value: Any, owner: str) -> Any:
        wrong = ToolkitError(
            f"{owner} parameter '{self.name}' expects {_TYPE_NAMES[self.type]}; got {value!r}."
        )
        if value is None and self.default is None:
            return None
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise wrong
        if isinstance(value, bool):
            raise wrong
        if self.type is str:
            if isinstance(value, str):
                return value
            raise wrong
        if self.type is int:
            if isinstance(value, int):
                return value
            if isinstance(value, str):
                try:
                    return int(value.strip().replace("_", ""))
                except ValueError:
                    raise wrong from None
            raise wrong
        # float
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise wrong from None
        raise wrong


def declaration_problem(param: Param) -> str | None:
    """Why `param` is declared wrongly (name, help, default against type and choices), or None."""
    if not param.name.isidentifier():
        return "the name must be a Python identifier, as it becomes a keyword argument"
    if not isinstance(param.help, str) or not param.help.strip():
        return "the help is empty; say what the parameter does"
    if param.default is None:
        return None
    fits = (isinstance(param.default, bool) if param.type is bool
            else isinstance(param.default, (int, float)) and not isinstance(param.default, bool)
            if param.type is float
            else isinstance(param.default, param.type) and not isinstance(param.default, bool))
    if not fits:
        return f"the default {param.default!r} is not {_TYPE_NAMES[param.type]}, the declared type"
    if param.choices is not None and param.default not in param.choices:
        return f"the default {param.default!r} is not one of its choices"
    return None


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """Parse repeated `KEY=VALUE` options; a later key overrides an earlier one."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ToolkitError(f"--param expects KEY=VALUE (e.g. model.hidden_size=64); got {pair!r}.")
        parsed[key.strip()] = value
    return parsed


@dataclass(frozen=True)
class Section:
    """A group of parameters owned by one thing: e.g. section 'model' owned by "model 'gru'"."""

    name: str
    owner: str
    params: tuple[Param, ...]


def resolve(sections: Sequence[Section], values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check `values` against the sections' declared parameters and fill in defaults.

    Keys are `section.name` (e.g. `model.hidden_size`) or a bare name that exactly one
    section declares. Returns {section: {param: value}} for every section.
    """
    by_section = {s.name: s for s in sections}
    resolved = {s.name: {p.name: p.default for p in s.params} for s in sections}
    for key, value in values.items():
        section, param = _locate(key, sections, by_section)
        resolved[section.name][param.name] = param.convert(value, section.owner)
    return resolved


def _locate(
    key: str, sections: Sequence[Section], by_section: Mapping[str, Section]
) -> tuple[Section, Param]:
    head, dot, tail = key.partition(".")
    if dot:
        if head not in by_section:
            raise ToolkitError(
                f"unknown parameter group '{head}' in '{key}'.{did_you_mean(head, by_section)}"
                f" Groups: {', '.join(by_section)}."
            )
        section = by_section[head]
        for param in section.params:
            if param.name == tail:
                return section, param
        raise _unknown_param(tail, [section])
    owners = [(s, p) for s in sections for p in s.params if p.name == key]
    if len(owners) == 1:
        return owners[0]
    if len(owners) > 1:
        options = " or ".join(f"{s.name}.{key}" for s, _ in owners)
        raise ToolkitError(f"parameter '{key}' is ambiguous; write {options}.")
    raise _unknown_param(key, sections)


def _unknown_param(name: str, sections: Sequence[Section]) -> ToolkitError:
    valid = [f"{s.name}.{p.name}" for s in sections for p in s.params]
    bare = [p.name for s in sections for p in s.params]
    owner = sections[0].owner if len(sections) == 1 else "this run"
    hint = did_you_mean(name, bare)
    return ToolkitError(
        f"{owner} has no parameter '{name}'.{hint} Valid: {', '.join(valid) or '(none)'}."
    )
