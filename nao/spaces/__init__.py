"""Search-space registry: ``get_space(name)``, ``register_space(space)``, ``list_spaces()``."""

from __future__ import annotations

from collections.abc import Callable

from nao.errors import UnknownSpaceError
from nao.spaces.base import SOS, Arch, SearchSpace
from nao.spaces.cell import CellSpace
from nao.spaces.darts import DartsSpace
from nao.spaces.nb201 import NB201Space
from nao.spaces.recurrent import RecurrentSpace

_REGISTRY: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "nao-cnn": lambda: CellSpace.small(),
    "nao-cnn-large": lambda: CellSpace.large(),
    "nao-rnn": RecurrentSpace,
    "darts": DartsSpace,
}
_INSTANCES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace, *, overwrite: bool = False) -> SearchSpace:
    """Make ``space`` available under ``space.name`` (to ``get_space``, configs and the CLI)."""
    if not overwrite and space.name in _REGISTRY:
        raise ValueError(f"a space named {space.name!r} is already registered (overwrite=True replaces it)")
    _REGISTRY[space.name] = lambda: space
    _INSTANCES[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``."""
    if name not in _INSTANCES:
        if name not in _REGISTRY:
            raise UnknownSpaceError(f"unknown search space {name!r} (known: {', '.join(list_spaces())})")
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def list_spaces() -> list[str]:
    return sorted(_REGISTRY)


__all__ = ["SOS", "Arch", "CellSpace", "DartsSpace", "NB201Space", "RecurrentSpace", "SearchSpace",
           "get_space", "list_spaces", "register_space"]
