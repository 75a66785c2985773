"""Declared parameters of plugins, and turning `KEY=VALUE` strings into checked values.

A parameter is declared once: either as a `Param`, or as a field of a config dataclass
(`param_field`), from which `params_of` derives the `Param`s. A `Param` knows its type,
default, help, choices, range and how `toolkit tune` searches it (`Space`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types as types_module
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: The key of a config dataclass field's metadata that holds its parameter declaration.
_FIELD_KEY = "toolkit.param"


@dataclass(frozen=True)
class Space:
    """How `toolkit tune` searches one parameter.

    Either numbers from `low` to `high` (inclusive; `log` spreads the trials evenly on a log
    scale, as for learning rates) or one of `values`. `Space.choice()` with no values
    means every choice the parameter declares (false and true for a bool).
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] | None = None

    @classmethod
    def range(cls, low: float, high: float, log: bool = False) -> Space:
        return cls(low=low, high=high, log=log)

    @classmethod
    def choice(cls, *values: Any) -> Space:
        return cls(values=tuple(values))

    def __str__(self) -> str:
        if self.values is not None:
            shown = [plain_value(v) for v in self.values]
            return ("|" if any("," in v for v in shown) else ",").join(shown)
        return f"{plain_value(self.low)}:{plain_value(self.high)}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Param:
    """One parameter a plugin accepts: the CLI lists, validates and sets it.

    `type` is one of int, float, str, bool. `choices`, when given, restricts the value.
    `min`/`max` bound a number inclusively, `above`/`below` exclusively (a learning rate is
    `above=0`); every bound is checked in `toolkit.plan_run`, before any data is read.
    `search` is how `toolkit tune` searches it by default (None: tune leaves it alone).
    `zero` is what the value 0 means, in a word or two ("off", "auto: one thread"), for a
    number where 0 is a switch rather than an amount; reports show it beside the 0.
    `path` marks a file or folder (a str): a value is made absolute (`~` expanded) where it is
    given, so a run's config, and `toolkit rerun`, name the same file from any folder.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    search: Space | None = None
    zero: str | None = None
    path: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPE_NAMES:
            raise TypeError(f"Param {self.name!r}: type must be int, float, str or bool")
        if self.path and self.type is not str:
            raise TypeError(f"Param {self.name!r}: a path is a str")
        if self.search is not None and self.search.values == ():
            every = self.choices if self.choices is not None else (False, True) if self.type is bool else ()
            object.__setattr__(self, "search", Space.choice(*every))

    def convert(self, value: Any, owner: str) -> Any:
        """Return `value` as this parameter's type, or raise a ToolkitError naming `owner`."""
        converted = self._convert_type(value, owner)
        if self.path and converted:
            converted = os.path.abspath(os.path.expanduser(converted))
        if self.choices is not None and converted not in self.choices:
            options = ", ".join(str(c) for c in self.choices)
            raise ToolkitError(
                f"{owner} parameter '{self.name}' must be one of {options}; got {value!r}."
            )
        problem = self.range_problem(converted)
        if problem:
            raise ToolkitError(f"{owner} parameter '{self.name}' must be {problem}; got {_shown(converted)}.")
        return converted

    def range_problem(self, value: Any) -> str | None:
        """What range `value` breaks (e.g. "at least 1"), or None when it is inside it."""
        if value is None or self.type not in (int, float):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"a finite number{self._range_suffix()}"
        low_ok = (self.min is None or value >= self.min) and (self.above is None or value > self.above)
        high_ok = (self.max is None or value <= self.max) and (self.below is None or value < self.below)
        return None if low_ok and high_ok else self.range_text()

    def range_text(self) -> str | None:
        """The declared range in words ("at least 1 and at most 10,000"), or None."""
        parts = [f"{word} {_shown(bound)}" for word, bound in (
            ("at least", self.min), ("above", self.above), ("at most", self.max), ("below", self.below),
        ) if bound is not None]
        return " and ".join(parts) or None

    def _range_suffix(self) -> str:
        text = self.range_text()
        return f", {text}" if text else ""

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
    """Why `param` is declared wrongly (name, help, default against type, choices and range,
    search space), or None."""
    if not param.name.isidentifier():
        return "the name must be a Python identifier, as it becomes a keyword argument"
    if not isinstance(param.help, str) or not param.help.strip():
        return "the help is empty; say what the parameter does"
    bounds = [b for b in (param.min, param.max, param.above, param.below) if b is not None]
    if bounds and param.type not in (int, float):
        return f"a range needs an int or float parameter, not {param.type.__name__}"
    if any(not _is_number(b) for b in bounds):
        return "the range bounds must be numbers"
    if param.min is not None and param.above is not None or param.max is not None and param.below is not None:
        return "give min or above, and max or below, not both"
    if param.default is not None:
        problem = _default_problem(param)
        if problem:
            return problem
    return _search_problem(param) if param.search is not None else None


def _default_problem(param: Param) -> str | None:
    fits = (isinstance(param.default, bool) if param.type is bool
            else _is_number(param.default) if param.type is float
            else isinstance(param.default, param.type) and not isinstance(param.default, bool))
    if not fits:
        return f"the default {param.default!r} is not {_TYPE_NAMES[param.type]}, the declared type"
    if param.choices is not None and param.default not in param.choices:
        return f"the default {param.default!r} is not one of its choices"
    outside = param.range_problem(param.default)
    if outside:
        return f"the default {param.default!r} is outside its range ({outside})"
    return None


def _search_problem(param: Param) -> str | None:
    space = param.search
    assert space is not None
    if space.values is not None:
        if not space.values:
            return "the search space lists no values"
        for value in space.values:
            try:
                param.convert(value, "")
            except ToolkitError:
                return f"the search value {value!r} is not a valid value of the parameter"
        return None
    if param.type not in (int, float):
        return "a search range needs an int or float parameter; list values with Space.choice"
    if not (_is_number(space.low) and _is_number(space.high)) or not space.low < space.high:
        return "the search range needs numbers low < high"
    if space.log and space.low <= 0:
        return "a log search range must start above 0"
    if param.type is int and not (float(space.low).is_integer() and float(space.high).is_integer()):
        return "an integer parameter's search range needs whole-number ends"
    for end in (space.low, space.high):
        if param.range_problem(end):
            return f"the search range {space} leaves the parameter's range ({param.range_text()})"
    return None


class Config:
    """Base of a parameter dataclass whose fields are declared with `param_field`.

    Building one converts and checks every value against its declaration (type, choices,
    range), then calls `check` for rules across fields. `owner` names it in messages.

        @dataclass(frozen=True)
        class MyModelConfig(toolkit.Config):
            owner = "model 'my-model'"
            hidden_size: int = toolkit.param_field(128, "Hidden units.", min=1, max=4096)
    """

    owner: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        owner = self.owner or type(self).__name__
        for param in params_of(type(self)):
            object.__setattr__(self, param.name, param.convert(getattr(self, param.name), owner))
        problem = self.check()
        if problem:
            raise ToolkitError(f"{owner} {problem}.")

    def check(self) -> str | None:
        """A rule across fields this config breaks, as "needs ..." words; None when fine."""
        return None

    @classmethod
    def with_defaults(cls, name: str, owner: str = "", **defaults: Any) -> type[Config]:
        """A subclass whose named parameters have other defaults, each declared otherwise the
        same (help, range, search): one plugin registering a model several ways."""
        declared = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(defaults) - set(declared))
        if unknown:
            raise TypeError(f"{cls.__name__} declares no parameter {', '.join(unknown)}")
        types = typing.get_type_hints(cls)
        fields = [(key, types[key], dataclasses.field(default=value, metadata=declared[key].metadata))
                  for key, value in defaults.items()]
        namespace = {"owner": owner or cls.owner, "__module__": cls.__module__}
        return dataclasses.make_dataclass(name, fields, bases=(cls,), frozen=True, namespace=namespace)

    def as_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def param_field(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    search: Space | None = None,
    zero: str | None = None,
    path: bool = False,
) -> Any:
    """A config dataclass field that is also a parameter: `params_of` reads it back.

        @dataclass(frozen=True)
        class MyModelConfig:
            hidden_size: int = toolkit.param_field(128, "Hidden units.", min=1, max=4096)
    """
    declaration = {"help": help, "choices": tuple(choices) if choices is not None else None,
                   "min": min, "max": max, "above": above, "below": below, "search": search,
                   "zero": zero, "path": path}
    return dataclasses.field(default=default, metadata={_FIELD_KEY: declaration})


@functools.cache
def params_of(config: type) -> tuple[Param, ...]:
    """The `Param`s a config dataclass declares with `param_field`, in field order; its
    annotations give the types, its defaults the defaults."""
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise TypeError(f"params_of expects a dataclass, not {config!r}")
    types = typing.get_type_hints(config)
    params = []
    for field in dataclasses.fields(config):
        if _FIELD_KEY not in field.metadata:
            raise TypeError(f"{config.__name__}.{field.name} is not declared with toolkit.param_field")
        declared = types[field.name]
        optional = typing.get_args(declared) if typing.get_origin(declared) is types_module.UnionType else ()
        if len(optional) == 2 and type(None) in optional and field.default is None:
            declared = next(t for t in optional if t is not type(None))  # `str | None = None`: unset
        params.append(Param(field.name, declared, field.default, **field.metadata[_FIELD_KEY]))
    return tuple(params)


def parse_space(text: str, param: Param, owner: str) -> Space:
    """A search space from `low:high[:log]`, `a,b,c`, or `a|b|c` when values hold commas
    (each value checked against `param`)."""
    parts = text.split(":")
    if len(parts) in (2, 3) and param.type in (int, float):
        if len(parts) == 3 and parts[2].strip() != "log":
            raise ToolkitError(f"--space {owner} '{param.name}': the third part must be 'log'; got {text!r}.")
        low, high = (param.convert(part, owner) for part in parts[:2])
        space = Space.range(low, high, log=len(parts) == 3)
    else:
        separator = "|" if "|" in text else ","  # `2,3|3,4,5`: choices that hold commas themselves
        space = Space.choice(*(param.convert(value.strip(), owner) for value in text.split(separator)))
    problem = _search_problem(dataclasses.replace(param, search=space))
    if problem:
        raise ToolkitError(f"--space for {owner} parameter '{param.name}': {problem}; got {text!r}.")
    return space


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plain_value(value: Any) -> str:
    """A value as typed on the command line (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _shown(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


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


def locate(key: str, sections: Sequence[Section]) -> tuple[str, Param]:
    """The group name and declaration of `key` (`group.name`, or a bare name one group declares)."""
    section, param = _locate(key, sections, {s.name: s for s in sections})
    return section.name, param


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
