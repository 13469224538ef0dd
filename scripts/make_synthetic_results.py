"""Write a results CSV (arch, score) of random archs scored by the synthetic benchmark.

    python scripts/make_synthetic_results.py --space nb201 -n 300 --out runs/toy/results.csv
"""

import argparse
import csv
from pathlib import Path

from nao import get_space
from nao.tasks.synthetic import SyntheticBenchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument("-n", type=int, default=300, help="number of archs (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="which archs are sampled")
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args()
    space = get_space(args.space)
    rows = SyntheticBenchmark(space).table(args.n, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "score"])
        writer.writerows([space.format(arch), f"{score:.4f}"] for arch, score in rows)
    print(f"wrote {len(rows)} archs to {out}")


if __name__ == "__main__":
    main()
