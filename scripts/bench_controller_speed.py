"""Controller speed on 1,000 random nao-cnn archs with the original sizes (issue #2 targets).

Measures, in one run on the same CPU:
- ``epoch_s``: one training epoch of ``nao.Controller`` (embedding 48, hidden 96, MLP 3x200,
  batch 100);
- ``reference_epoch_s``: the same epoch for a re-implementation of the original controller's
  training step as nao-facts.md describes it (20 encoder steps of one branch each; a decoder
  that steps through its 40 tokens in a Python loop even under teacher forcing; a random branch
  swap per sample, done in Python) -- the original itself takes 1.37 s here;
- ``propose_s``: 300 new archs proposed from the top 100.

    python scripts/bench_controller_speed.py
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nao
from nao.tasks.synthetic import SyntheticBenchmark

SIZES = {"embedding_dim": 48, "hidden_dim": 96, "mlp_layers": 3, "mlp_dim": 200, "batch_size": 100}


class ReferenceController(nn.Module):
    """The original's training computation: branch-per-step encoder, step-by-step decoder."""

    def __init__(self, vocab: int, emb: int = 48, hidden: int = 96) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.encoder = nn.LSTM(2 * emb, hidden, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(hidden, 200), nn.ReLU(), nn.Dropout(0.1), nn.Linear(200, 200), nn.ReLU(),
                                 nn.Dropout(0.1), nn.Linear(200, 200), nn.ReLU(), nn.Dropout(0.1), nn.Linear(200, 1))
        self.dec_embed = nn.Embedding(vocab, hidden)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.attn_in = nn.Linear(hidden, hidden, bias=False)
        self.attn_out = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = tokens.shape
        x = self.embed(tokens).reshape(b, t // 2, -1)
        outputs, _ = self.encoder(x)
        outputs = F.normalize(outputs, dim=-1)
        emb = F.normalize(outputs.mean(1), dim=-1)
        predicted = torch.sigmoid(self.mlp(emb)).squeeze(-1)
        state = (emb[None].contiguous(), emb[None].contiguous())
        inputs = F.pad(tokens[:, :-1], (1, 0))
        logits = []
        for step in range(t):  # the original loops over time even in training
            out, state = self.decoder(self.dec_embed(inputs[:, step:step + 1]), state)
            weights = torch.bmm(self.attn_in(out), outputs.transpose(1, 2)).softmax(-1)
            mixed = torch.tanh(self.attn_out(torch.cat([torch.bmm(weights, outputs), out], -1)))
            logits.append(F.log_softmax(self.out(mixed), -1))
        return predicted, torch.cat(logits, 1)


def swap_one_node_per_cell(arch: tuple, rng: np.random.Generator, n_nodes: int = 5) -> tuple:
    """The original's on-the-fly augmentation: swap the branches of one random node per cell."""
    values = list(arch)
    for cell in range(2):
        node = cell * n_nodes + int(rng.integers(n_nodes))
        a = slice(4 * node, 4 * node + 2)
        b = slice(4 * node + 2, 4 * node + 4)
        values[a], values[b] = values[b], values[a]
    return tuple(values)


def reference_epoch_seconds(space, archs, targets, epochs: int) -> float:
    torch.manual_seed(0)
    model = ReferenceController(space.vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    y = torch.tensor(targets, dtype=torch.float32)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = rng.permutation(len(archs))
        for i in range(0, len(archs), 100):
            idx = order[i:i + 100]
            tokens = torch.tensor([space.to_tokens(swap_one_node_per_cell(archs[j], rng)) for j in idx])
            predicted, log_probs = model(tokens)
            loss = 0.8 * F.mse_loss(predicted, y[idx]) + 0.2 * F.nll_loss(log_probs.flatten(0, 1), tokens.flatten())
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6, help="epochs timed per controller (first is warm-up)")
    args = parser.parse_args()
    space = nao.get_space("nao-cnn")
    rows = SyntheticBenchmark(space).table(1000, seed=0)
    archs = [a for a, _ in rows]
    scores = np.array([s for _, s in rows])

    ctrl = nao.Controller(space, seed=0, **SIZES)
    stamps: list[float] = []
    ctrl.fit(archs, scores, epochs=args.epochs, progress=lambda epoch, loss: stamps.append(time.perf_counter()))
    epoch_s = float(np.median(np.diff(stamps)))

    minmax = (scores - scores.min()) / (scores.max() - scores.min())
    reference_s = reference_epoch_seconds(space, archs, minmax, args.epochs)

    ctrl.fit(archs, scores, epochs=20)  # a little training so proposals are not all identical
    started = time.perf_counter()
    proposals = ctrl.propose(archs, scores, n=300, top_k=100)
    propose_s = time.perf_counter() - started
    print(json.dumps({"benchmark": "controller_speed", "space": "nao-cnn", "n_archs": len(archs), **SIZES,
                      "torch_threads": torch.get_num_threads(), "epoch_s": round(epoch_s, 4),
                      "reference_epoch_s": round(reference_s, 4), "speedup": round(reference_s / epoch_s, 2),
                      "propose_s": round(propose_s, 3), "proposed": len(proposals)}))


if __name__ == "__main__":
    main()
