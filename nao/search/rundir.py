"""The run directory: resolved config, append-only history, atomic state, lock.

``history.jsonl`` gets one line per finished evaluation, flushed and fsynced before the next
starts, so a kill loses at most the evaluation in progress. ``state.json`` is replaced
atomically at every stage boundary. The lock is an ``flock`` on ``lock``: the kernel drops it
when its process dies, so a killed run never blocks ``--resume``.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from nao.config import from_dict
from nao.errors import UserError

HISTORY = "history.jsonl"
STATE = "state.json"
CONFIG = "config.yaml"
LOCK = "lock"
METRICS = "metrics.jsonl"  # one line per finished stage
SCORES = "scores.json"  # weight-sharing runs: every evaluated arch's score from the latest shared weights


@dataclass
class Record:
    """One evaluated arch (or one that failed to evaluate)."""

    arch: str  # text form
    metrics: dict[str, float]
    iteration: int
    source: str  # which strategy step produced it: seed, nao, random-fill, random, mutation, ...
    predicted: float | None = None
    seconds: float = 0.0
    stage: int = 0  # the batch it belongs to, and its place in that batch: results of concurrent
    index: int = 0  # evaluations are appended as they finish, the strategy sees them in batch order
    error: str | None = None  # set when every attempt failed (then ``metrics`` is empty)
    attempts: int = 1
    extra: dict = field(default_factory=dict)


class RunDir:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock_file = None

    def lock(self) -> None:
        """Hold the run's lock for this process's lifetime; refuse if a live process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK, "a+")  # noqa: SIM115 - held open until the process ends
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"{self.path} is in use by a running search (pid {owner})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------------ history
    def read_history(self) -> list[Record]:
        """Finished evaluations; a last line cut short by a kill is dropped (and truncated)."""
        path = self.path / HISTORY
        if not path.exists():
            return []
        records, good_bytes = [], 0
        with open(path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                try:
                    records.append(Record(**json.loads(raw)))
                except (ValueError, TypeError):
                    break
                good_bytes += len(raw)
        if good_bytes != path.stat().st_size:
            with open(path, "r+b") as f:
                f.truncate(good_bytes)
        return records

    def append(self, record: Record) -> None:
        with open(self.path / HISTORY, "a") as f:
            f.write(json.dumps(asdict(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------------ state and files
    def load_state(self) -> dict | None:
        """The state saved at the last stage boundary (None in a new run)."""
        path = self.path / STATE
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a state file written by nao ({err}); it is replaced atomically, so "
                            "something else wrote it") from None
        if not isinstance(state, dict) or not {"strategy", "pending"} <= set(state):
            raise UserError(f"{path}: not a state file written by nao (expected keys strategy, pending)")
        return state

    def save_state(self, state: dict) -> None:
        self.write_text(STATE, json.dumps(state))

    def check_or_write_config(self, config) -> None:
        """Save ``config`` (a dataclass) in a new run; in a resumed one refuse a config that differs."""
        saved = self.path / CONFIG
        if saved.exists():
            old = asdict(from_dict(type(config), yaml.safe_load(saved.read_text())))  # new keys: their defaults
            difference = first_difference(old, asdict(config))
            if difference:
                raise UserError(f"--resume with a different config ({difference})")
        else:
            self.write_text(CONFIG, yaml.safe_dump(asdict(config), sort_keys=False))

    def save_torch(self, name: str, obj) -> None:
        """``torch.save`` atomically (checkpoints)."""
        import torch

        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp")
        torch.save(obj, tmp)
        os.replace(tmp, target)

    def write_text(self, name: str, text: str) -> None:
        """Atomic: a reader (or a kill) sees the old file or the new one, never half of one."""
        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


def first_difference(saved: dict, current: dict, where: str = "") -> str | None:
    """The first dotted key whose value differs, as "key: old in the run, new now"."""
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        path = f"{where}.{key}" if where else key
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, path)
            if found:
                return found
        elif a != b:
            return f"{path}: {a!r} in the run, {b!r} now"
    return None
