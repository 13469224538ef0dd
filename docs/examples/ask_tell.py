"""Ask/tell: NAO inside your own loop, with your own evaluation code.

    python3 docs/examples/ask_tell.py runs/chain-asktell

The run directory is the one ``nao search`` writes (``nao report`` reads it); running the script again on it
resumes where it stopped.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import chain_space  # noqa: F401 - registers the space "chain"
from chain_evaluate import evaluate

import nao

run_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/chain-asktell"
with nao.Optimizer("chain", strategy="nao", budget=40, seed=0, run_dir=run_dir, metric="valid_acc",
                   seed_archs=16, new_per_iteration=8, top_k=8, epochs=200,
                   controller={"embedding_dim": 16, "hidden_dim": 32, "mlp_layers": 1, "mlp_dim": 32}) as opt:
    while not opt.done:
        for trial in opt.ask():
            metrics = evaluate(trial.arch, text=trial.text, seed=0, workdir=Path(run_dir))
            opt.tell(trial, metrics)
    print(opt.best)
