#!/usr/bin/env bash
# The quick start: a predictor fitted on a synthetic NB201 results table (no download needed),
# its held-out ranking report, and 10 new architectures proposed by gradient steps.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
python3 scripts/make_synthetic_results.py --space nb201 -n 300 --out "$OUT/results.csv"
nao predictor fit --space nb201 --results "$OUT/results.csv" --holdout 0.2 --epochs 300 --out "$OUT/model"
nao propose --model "$OUT/model" --results "$OUT/results.csv" -n 10 --out "$OUT/proposals.csv"
cat "$OUT/proposals.csv"
python3 - "$OUT" <<'PY'
import csv, sys
import numpy as np
import nao
from nao.tasks.synthetic import SyntheticBenchmark
space = nao.get_space("nb201")
bench = SyntheticBenchmark(space)
known = [float(r["score"]) for r in csv.DictReader(open(f"{sys.argv[1]}/results.csv"))]
found = [bench.score(space.parse(r["arch"])) for r in csv.DictReader(open(f"{sys.argv[1]}/proposals.csv"))]
print(f"true score of the 10 proposals: mean {np.mean(found):.2f}, best {max(found):.2f}; "
      f"of the 300 known archs: mean {np.mean(known):.2f}, best {max(known):.2f}")
PY
