"""Training throughput of the PTB cell language model and of the RNN supernet (issue #5 targets).

    python scripts/bench_rnn.py [--size 300] [--batch 64] [--bptt 35] [--steps 10]

One training step = forward over a BPTT window, cross entropy over the 10,000-word PTB vocabulary,
TAR, backward, gradient clipping, SGD. The fixed model runs the NAO-WS PTB cell (nao-facts §6.4);
the supernet runs the same arch with shared weights (and then random archs, one per step). Both
are timed in this run; prints one JSON object with tokens/s and the supernet / fixed step ratio
(target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

import nao
from nao.tasks.rnn.model import LMConfig, fixed_model, supernet_model

NAO_WS_PTB = "0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1"
VOCAB = 10_000


def step_seconds(model, archs, args) -> float:
    torch.manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.25, weight_decay=5e-7)
    tokens = torch.randint(0, VOCAB, (args.bptt + 1, args.batch))
    hidden = model.init_hidden(args.batch)
    model.train()
    for i in range(args.steps + 2):
        if i == 2:
            started = time.perf_counter()
        logits, outputs = model(tokens[:-1], hidden, archs[i % len(archs)])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens[1:].reshape(-1))
        loss = loss + 1e-3 * (outputs[1:] - outputs[:-1]).pow(2).mean()  # TAR
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        hidden = outputs[-1].detach()
    return (time.perf_counter() - started) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    space = nao.get_space("nao-rnn")
    arch = space.parse(NAO_WS_PTB)
    config = LMConfig(size=args.size, dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2)
    fixed = step_seconds(fixed_model(space, arch, VOCAB, config), [None], args)
    supernet = supernet_model(space, VOCAB, config)
    shared_same = step_seconds(supernet, [arch], args)
    rng = np.random.default_rng(0)
    shared_random = step_seconds(supernet, [space.sample(rng) for _ in range(args.steps + 2)], args)
    tokens = args.batch * args.bptt
    print(json.dumps({
        "benchmark": "rnn_throughput", "threads": torch.get_num_threads(), "size": args.size, "batch": args.batch,
        "bptt": args.bptt, "vocab": VOCAB, "arch": NAO_WS_PTB,
        "fixed_step_s": round(fixed, 4), "fixed_tokens_per_s": round(tokens / fixed),
        "supernet_step_s": round(shared_same, 4), "supernet_tokens_per_s": round(tokens / shared_same),
        "step_ratio": round(shared_same / fixed, 3),
        "supernet_random_archs_step_s": round(shared_random, 4),
    }))


if __name__ == "__main__":
    main()
