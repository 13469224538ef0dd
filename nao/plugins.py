"""Loading user code: ``--plugin MODULE_OR_FILE.py`` and ``plugins: [...]`` in a config, and the
``"package.module:name"`` / ``"path/to/file.py:name"`` references of ``evaluator.function``.

A plugin is imported for its side effects: it calls ``nao.register_space``, ``nao.register_evaluator``,
``nao.register_strategy`` or ``nao.register_task``. It is imported once per process (the search's driver
and every Ray worker); a file plugin is keyed by its resolved path, so naming it twice imports it once.
This is the only module of nao that imports code by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from nao.errors import UserError


class PluginError(UserError):
    """A plugin (or a ``module:name`` reference) that cannot be imported."""


_LOADED: dict[str, ModuleType] = {}


def is_file_reference(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def load_plugin(spec: str) -> ModuleType:
    """Import the module ``spec`` (a dotted module name, or a path to a ``.py`` file) once."""
    key = str(Path(spec).expanduser().resolve()) if is_file_reference(spec) else spec
    if key in _LOADED:
        return _LOADED[key]
    try:
        module = _import_file(Path(key)) if is_file_reference(spec) else importlib.import_module(spec)
    except PluginError:
        raise
    except Exception as err:  # anything the user's module raises while importing
        raise PluginError(f"plugin {spec!r} failed to import: {_describe(err)}") from None
    _LOADED[key] = module
    return module


def load_plugins(specs: Iterable[str]) -> None:
    for spec in specs:
        load_plugin(spec)


def load_object(reference: str, *, key: str) -> object:
    """The object ``"package.module:name"`` or ``"path/to/file.py:name"`` names; ``key`` (the config key that
    holds the reference) is named in errors."""
    module_spec, sep, name = reference.rpartition(":")
    if not sep or not module_spec or not name:
        raise PluginError(f"{key}: expected 'package.module:name' or 'path/to/file.py:name', got {reference!r}")
    module = load_plugin(module_spec)
    try:
        return getattr(module, name)
    except AttributeError:
        raise PluginError(f"{key}: {module_spec!r} has no attribute {name!r}") from None


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise PluginError(f"plugin {str(path)!r}: no such file")
    name = f"nao_plugin_{path.stem}_{zlib.crc32(str(path).encode()):08x}"  # the same in every process
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _describe(err: BaseException) -> str:
    """The error and where in the user's code it was raised (the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}{where}" if message else f"{type(err).__name__}{where}"
