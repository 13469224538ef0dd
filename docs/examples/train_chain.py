"""A training script for the command evaluator: any program that takes the arch and prints one JSON line.

    nao search docs/examples/chain_command.yaml --out runs/chain-command

nao runs it once per arch, from the directory nao was started in, with a fresh working directory of its own for
outputs ({workdir} in the command, $NAO_WORKDIR), and reads the metrics from the last line of its stdout.
Here the same formula as chain_evaluate.py stands in for training.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from chain_evaluate import evaluate

OPS = ("conv3x3", "conv5x5", "maxpool", "skip")

parser = argparse.ArgumentParser()
parser.add_argument("--arch", required=True, help="the arch in the space's text form, e.g. conv3x3-skip-...")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
arch = tuple(OPS.index(name) for name in args.arch.split("-"))
print(f"training {args.arch} with seed {args.seed}", file=sys.stderr)
print(json.dumps(evaluate(arch, text=args.arch, seed=args.seed, workdir=Path(os.environ["NAO_WORKDIR"]))))
