"""``strategy: reinforce``: an LSTM controller trained with REINFORCE (Williams 1992), the search of Zoph & Le
(2017) and of ENAS's controller without weight sharing.

The policy is NAO's attention decoder (``AttentionDecoder``) started from a learned embedding and attending over
a learned memory vector, so it emits the space's tokens autoregressively under the grammar mask exactly as
NAO's decoder does. After each batch is evaluated, one policy-gradient step on

    - mean_i (r_i - b) / s * log p(arch_i)  -  entropy_weight * mean_i H(p(. | arch_i prefixes))

where ``b`` is an exponential moving average of the rewards (the baseline) and ``s`` the moving standard
deviation, so that the step does not depend on the metric's scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nao.config import ConfigValueError, at_least
from nao.encoders.attention_decoder import AttentionDecoder, grammar_mask_fn
from nao.registry import register_strategy
from nao.search.strategies import Candidate, Evaluated, Strategy
from nao.spaces.base import Arch, SearchSpace
from nao.torchutils import seeded


@dataclass
class ReinforceConfig:
    """The ``reinforce:`` section."""

    batch: int = 10  # archs sampled per policy update
    hidden_dim: int = 64
    lr: float = 0.01  # Adam
    baseline_decay: float = 0.9  # b <- decay * b + (1 - decay) * reward, per evaluated arch
    entropy_weight: float = 0.001  # bonus on the policy's entropy: keeps it from collapsing early
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        at_least(self, batch=1, hidden_dim=1, lr=0.0, baseline_decay=0.0, entropy_weight=0.0, grad_clip=0.0)
        if self.baseline_decay >= 1:
            raise ConfigValueError("baseline_decay", f"must be below 1, got {self.baseline_decay!r}")


class Policy(nn.Module):
    """A distribution over the space's token sequences: the attention decoder from learned start values."""

    def __init__(self, space: SearchSpace, hidden_dim: int) -> None:
        super().__init__()
        self.decoder = AttentionDecoder(vocab_size=space.vocab_size, seq_len=space.seq_len, hidden_dim=hidden_dim,
                                        group_size=space.group_size)
        self.start = nn.Parameter(torch.zeros(1, hidden_dim))
        self.memory = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        self.mask_fn = grammar_mask_fn(space, "cpu")

    def _inputs(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.start.expand(batch, -1), self.memory.expand(batch, -1, -1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.decoder.sample(*self._inputs(n), self.mask_fn, generator=generator)

    def log_probs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sequence: log-probability (B,) and mean entropy per step (B,)."""
        log_p, entropy = self.decoder.log_probs(tokens, *self._inputs(len(tokens)), self.mask_fn)
        return log_p.sum(dim=1), entropy.mean(dim=1)


class ReinforceStrategy(Strategy):
    """Sample ``batch`` new archs from the policy, evaluate them, update the policy, repeat. A sample equivalent
    to an arch already evaluated costs no budget: its known score still enters the update (so the policy learns
    from everything it proposes), and sampling continues until the batch has ``batch`` new archs (after 50
    rounds, random archs fill it; they are not the policy's actions, so no update uses them). The policy runs on
    the CPU: it is tiny."""

    config: ReinforceConfig

    def __init__(self, context, config: ReinforceConfig) -> None:
        super().__init__(context, config)
        with seeded(self.seed):
            self.policy = Policy(self.space, config.hidden_dim)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.baseline: float | None = None
        self.variance = 1.0
        self.sampled: list[Arch] = []  # the last batch's samples, repeats included: the next update's actions
        self.checkpoint: str | None = None
        self.last_update: dict[str, float] = {}

    def state_dict(self) -> dict:
        return super().state_dict() | {"checkpoint": self.checkpoint, "baseline": self.baseline,
                                       "variance": self.variance, "sampled": [self.space.format(a) for a in
                                                                              self.sampled]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.checkpoint, self.baseline, self.variance = state["checkpoint"], state["baseline"], state["variance"]
        self.sampled = [self.space.parse(a) for a in state["sampled"]]
        if self.checkpoint is not None:
            saved = torch.load(self.run_path / self.checkpoint, weights_only=True)
            self.policy.load_state_dict(saved["policy"])
            self.optimizer.load_state_dict(saved["optimizer"])

    def metrics(self) -> dict[str, float]:
        return self.last_update

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        self.iteration += 1
        seen = self.seen(history, failed)
        scores = {self.space.canonical(h.arch): float(self.better(np.array(h.score))) for h in history}
        self._update([a for a in self.sampled if self.space.canonical(a) in scores], scores)
        batch = self._sample_new(min(remaining, self.config.batch), seen)
        self.checkpoint = f"reinforce/iter{self.iteration:04d}.pt"
        path = self.run_path / self.checkpoint
        path.parent.mkdir(exist_ok=True)
        torch.save({"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}, path)
        return batch

    def _update(self, archs: list[Arch], scores: dict) -> None:
        """One REINFORCE step on the last batch's scored samples; the baseline moves after the step."""
        if not archs:
            return
        rewards = np.array([scores[self.space.canonical(a)] for a in archs])
        decay = self.config.baseline_decay
        if self.baseline is None:  # first batch: start the baseline at its mean, the scale at its spread
            self.baseline, self.variance = float(rewards.mean()), float(rewards.var()) or 1.0
        advantage = (rewards - self.baseline) / np.sqrt(self.variance)
        tokens = torch.tensor([self.space.to_tokens(a) for a in archs], dtype=torch.long)
        log_p, entropy = self.policy.log_probs(tokens)
        loss = -(torch.tensor(advantage, dtype=torch.float32) * log_p).mean() \
            - self.config.entropy_weight * entropy.mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
        self.optimizer.step()
        for r in rewards:
            self.variance = decay * self.variance + (1 - decay) * (r - self.baseline) ** 2
            self.baseline = decay * self.baseline + (1 - decay) * float(r)
        self.last_update = {"policy_entropy": entropy.mean().item(), "baseline": float(self.baseline),
                            "mean_advantage": float(advantage.mean())}

    def _sample_new(self, wanted: int, seen: set) -> list[Candidate]:
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.sampled, batch = [], []
        for _ in range(50):
            with torch.no_grad():
                tokens = self.policy.sample(wanted, generator).tolist()
            for row in tokens:
                arch = self.space.from_tokens(row)
                key = self.space.canonical(arch)
                if key in seen or not self.evaluable(arch):
                    if len(self.sampled) < 4 * self.config.batch:  # a repeat: learn from it, do not pay for it
                        self.sampled.append(arch)
                    continue
                seen.add(key)
                self.sampled.append(arch)
                batch.append(Candidate(arch, "policy"))
                if len(batch) == wanted:
                    return batch
        return batch + self.random_new(wanted - len(batch), seen, "random-fill")  # off-policy: not learned from


register_strategy("reinforce", ReinforceStrategy, config=ReinforceConfig)
