"""An evaluator that misbehaves on purpose, for the executor tests (also imported by their driver script).

The synthetic score of any arch, after ``task.sleep`` seconds, with the wall-clock start and end of the
evaluation in its metrics; archs listed in ``task.fail`` always raise, in ``task.nan`` score NaN, in
``task.user_error`` raise a ``UserError``, and those in ``task.die_once`` kill their own process on their
first attempt (a marker file in ``task.markers`` remembers it). With ``task.rendezvous`` (a folder), an
evaluation waits until a second one has started. ``task.costs`` maps archs to their ``cost`` (default 1).

It registers itself as ``evaluator.type: faulty`` when imported, as a user's plugin does (``plugins: [this
file]`` in a config brings it into Ray workers too). Run as a script, it is ``nao`` with it registered.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nao
from nao.cli import main
from nao.errors import UserError
from nao.search.evaluators import SyntheticEvaluator


@dataclass
class FaultyConfig(nao.EvaluatorConfig):
    task: dict = field(default_factory=dict)  # sleep, fail, nan, user_error, die_once, markers, rendezvous, costs


class FaultyEvaluator(SyntheticEvaluator):
    def __init__(self, space, config, **kwargs) -> None:
        self.task = dict(config.task)
        super().__init__(space, config.__class__(type="synthetic"), **kwargs)
        self.space = space

    def evaluate(self, arch) -> dict[str, float]:
        text = self.space.format(arch)
        started = time.time()
        if text in self.task.get("die_once", []):
            marker = Path(self.task["markers"]) / text.replace(" ", "_").replace("|", "_")
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        if "rendezvous" in self.task:  # wait until two evaluations are under way (proof that they run at once)
            meeting = Path(self.task["rendezvous"])
            (meeting / f"{os.getpid()}-{time.time_ns()}").touch()
            deadline = time.monotonic() + 120
            while len(list(meeting.iterdir())) < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError("no second evaluation ran at the same time")
                time.sleep(0.02)
        time.sleep(self.task.get("sleep", 0.0))
        if text in self.task.get("fail", []):
            raise RuntimeError(f"boom on {text}")
        if text in self.task.get("user_error", []):
            raise UserError(f"no data for {text}")
        score = float("nan") if text in self.task.get("nan", []) else super().evaluate(arch)["score"]
        return {"score": score, "started": started, "ended": time.time(), "pid": os.getpid()}

    def cost(self, arch) -> float:
        return self.task.get("costs", {}).get(self.space.format(arch), 1.0)


nao.register_evaluator("faulty", FaultyEvaluator, config=FaultyConfig, overwrite=True)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
