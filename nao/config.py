"""Dataclass configs from YAML with dotted ``key=value`` overrides; unknown keys are errors.

Each component owns its config dataclass; this module only turns nested mappings into nested
dataclasses (checking names and types) and back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nao.errors import UserError

T = TypeVar("T")


class ConfigError(UserError):
    """A config file or override that does not fit the config dataclasses."""


class ConfigValueError(ConfigError):
    """A value out of its range, raised by a config dataclass's ``__post_init__`` (see ``at_least``, ``one_of``);
    ``from_dict`` prefixes ``key`` with the section's dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def at_least(config: Any, **minimums: float) -> None:
    """``ConfigValueError`` for the first field of ``config`` below its minimum (``None`` is not checked)."""
    for key, minimum in minimums.items():
        value = getattr(config, key)
        if value is not None and value < minimum:
            raise ConfigValueError(key, f"must be at least {minimum:g}, got {value!r}")


def one_of(config: Any, key: str, choices: typing.Iterable[str]) -> None:
    choices = list(choices)
    if getattr(config, key) not in choices:
        raise ConfigValueError(key, f"must be one of {', '.join(map(str, choices))}, got {getattr(config, key)!r}")


def from_dict(cls: type[T], data: dict, *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` is the dotted path for error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{_join(where, unknown[0])}' (known: {', '.join(sorted(names))})")
    values = {name: _convert(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigValueError as err:  # raised by the dataclass's own checks: named by its dotted key
        raise ConfigValueError(_join(where, err.key), err.message) from None


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked against (and coerced to) the annotation ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value if value is not None else {}, where=where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        converted = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, typing.get_args(hint)))}, got {value!r}")
        return value
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["a.b=3", "strategy=random"]`` applied to nested ``data`` (values parsed as YAML)."""
    data = dict(data)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} is not of the form key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = yaml.safe_load(text)
    return data


def load_yaml(path: str | Path) -> dict:
    """The mapping in YAML file ``path`` (empty file -> ``{}``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return data
