"""CNN supernet costs at the main job's size (configs/fashion_mnist_ws.yaml), issue #4 targets.

    python scripts/bench_cnn.py [--archs 1000] [--steps 30]

- ``step_ratio``: a supernet training step (forward, backward, SGD) over a standalone child step of
  the same arch, same batch and channels, averaged over 10 archs, both timed in this run (target
  <= 1.3); peak memory of each (CUDA: max allocated; CPU: growth of the peak resident set of a fresh
  process over what it held before building the model).
- ``eval_seconds``: scoring ``--archs`` archs on the 1,000-image validation subset with the
  supernet (target <= 60 s on 2 cores). Random images: the cost does not depend on the pixels.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

import nao
from nao.config import from_dict
from nao.search import load_config
from nao.tasks.cnn.evaluators import ImageTaskConfig
from nao.tasks.cnn.network import ChildNetwork, Supernet
from nao.tasks.cnn.train import to_device
from nao.torchutils import resolve_device

CONFIG = "configs/fashion_mnist_ws.yaml"
SHAPE, CLASSES = (1, 28, 28), 10


def build(kind: str, arch, network, device):
    space = nao.get_space("nao-cnn")
    if kind == "child":
        return to_device(ChildNetwork(space, arch, in_channels=SHAPE[0], n_classes=CLASSES, config=network), device)
    return to_device(Supernet(space, in_channels=SHAPE[0], n_classes=CLASSES, config=network), device)


def step_seconds(kind: str, archs, network, batch: int, steps: int, device) -> float:
    """Mean seconds of a training step, over ``steps`` steps after 3 warm-up steps, per arch."""
    x = torch.randn(batch, *SHAPE, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    times = []
    supernet = build("supernet", None, network, device) if kind == "supernet" else None
    for arch in archs:
        model = supernet if supernet is not None else build("child", arch, network, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def forward(model=model, arch=arch):
            return model(x, arch) if kind == "supernet" else model(x)

        for i in range(steps + 3):
            if i == 3:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(forward()[0], y).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) / steps)
    return float(np.mean(times))


def peak_memory_mb(kind: str, batch: int, device) -> float:
    """Peak memory of a few training steps of ``kind`` in a fresh process."""
    code = (f"import sys; sys.argv=['x']; sys.path.insert(0, 'scripts'); import bench_cnn as b; "
            f"b.memory_probe({kind!r}, {batch}, {str(device)!r})")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def memory_probe(kind: str, batch: int, device_name: str) -> None:
    device = torch.device(device_name)
    network = from_dict(ImageTaskConfig, load_config(CONFIG, []).evaluator.task).network
    arch = nao.get_space("nao-cnn").sample(np.random.default_rng(0))
    before = resident_mb()
    step_seconds(kind, [arch], network, batch, 2, device)
    if device.type == "cuda":
        print(torch.cuda.max_memory_allocated() / 2**20)
    else:  # peak resident set of the process minus what it held before building the model
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before)


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@torch.no_grad()
def eval_seconds(n_archs: int, network, images: int, device) -> float:
    space = nao.get_space("nao-cnn")
    net = build("supernet", None, network, device).eval()
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(n_archs)]
    x = torch.randn(images, *SHAPE, device=device).contiguous(memory_format=torch.channels_last)
    started = time.perf_counter()
    stem, memos = net.stem(x), net.arch_independent()
    for arch in archs:
        net.head(stem, space.cells(arch), memos)[0].argmax(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=1000, help="archs scored for eval_seconds")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per arch")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    config = load_config(CONFIG, [])
    task = from_dict(ImageTaskConfig, config.evaluator.task)
    device = resolve_device(args.device)
    space = nao.get_space("nao-cnn")
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(10)]
    batch = task.train.batch_size
    child = step_seconds("child", archs, task.network, batch, args.steps, device)
    supernet = step_seconds("supernet", archs, task.network, batch, args.steps, device)
    print(json.dumps({
        "benchmark": "cnn_supernet", "device": str(device), "threads": torch.get_num_threads(),
        "network": vars(task.network), "batch": batch,
        "child_step_s": round(child, 4), "supernet_step_s": round(supernet, 4),
        "step_ratio": round(supernet / child, 3),
        "child_peak_mb": round(peak_memory_mb("child", batch, device), 1),
        "supernet_peak_mb": round(peak_memory_mb("supernet", batch, device), 1),
        "eval_archs": args.archs, "eval_images": task.valid_images,
        "eval_seconds": round(eval_seconds(args.archs, task.network, task.valid_images, device), 1),
    }))


if __name__ == "__main__":
    main()
