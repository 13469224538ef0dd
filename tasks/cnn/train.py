"""Training image classifiers built from cells: the paper's recipe as a config, one epoch at a time.

SGD with momentum, cosine learning rate over ``epochs`` (Loshchilov & Hutter 2017), random crop,
flip and cutout on the batch, auxiliary-head loss, drop-path growing linearly with progress,
gradient clipping. The same trainer trains a standalone child (``forward = model``) and the
supernet (``forward`` runs one sampled arch per batch). All randomness (initial weights,
batch order, augmentation, drop-path, dropout) comes from ``seed`` and the state is resumable:
``state_dict`` holds the model, optimizer, schedule and RNG states.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nao.tasks.cnn.network import Logits
from nao.tasks.images import ImageData, augment, batches, load_images, normalize
from nao.torchutils import TrainingRng, check_finite_loss


@dataclass
class DataConfig:
    """Which dataset, where, and how much of it (``nao.tasks.images``)."""

    name: str = "cifar10"  # cifar10 | cifar100 | fashion-mnist | mnist
    dir: str | None = None  # default: found or downloaded (see the README)
    valid_size: int = 5000  # images moved from train to the validation split (the test set selects nothing)
    train_images: int | None = None  # use only this many training images (CPU-sized runs)
    download: bool = True
    split_seed: int | None = None  # draws the validation split; default the run's seed (fix it to vary only training)

    def load(self, seed: int) -> ImageData:
        """The dataset with its validation split drawn by ``split_seed``, or by ``seed`` (the run's) when unset."""
        return load_images(self.name, data_dir=self.dir, valid_size=self.valid_size, download=self.download,
                           seed=seed if self.split_seed is None else self.split_seed)


@dataclass
class TrainConfig:
    """The final-training recipe of NAO (nao-facts §6.1); smaller settings for search-time training."""

    epochs: int = 600
    batch_size: int = 128
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    auxiliary_weight: float = 0.4  # used when the network has an auxiliary head
    drop_path: float = 0.2  # largest drop-path probability, reached at the last epoch and the deepest cell
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 16
    eval_batch_size: int = 500


def to_device(model: nn.Module, device: torch.device) -> nn.Module:
    """On CPU in channels-last layout: convolutions and pooling run 2x faster (measured, scripts/bench_cnn.py)."""
    return model.to(device, memory_format=torch.channels_last if device.type == "cpu" else torch.preserve_format)


def model_input(images: torch.Tensor, data: ImageData) -> torch.Tensor:
    """uint8 images to the normalised float input, channels-last on CPU like the model."""
    x = normalize(images, data.mean, data.std)
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


class Trainer:
    """Trains ``model`` on ``data.train``; ``forward(x)`` gives ``(logits, aux_logits)`` (default: the model)."""

    def __init__(self, model: nn.Module, data: ImageData, config: TrainConfig, *, seed: int,
                 device: torch.device, train_images: int | None = None):
        self.model, self.data, self.config, self.device = model, data, config, device
        to_device(model, device)
        images, labels = data.train
        if train_images is not None:
            images, labels = images[:train_images], labels[:train_images]
        self.train_images, self.train_labels = images.to(device), labels.to(device)
        decay = [p for n, p in model.named_parameters() if p.dim() > 1]
        no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]  # batch norm and biases
        self.optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=config.lr, momentum=config.momentum)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(config.epochs, 1),
                                                                    eta_min=config.lr_min)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.torch_rng = TrainingRng(seed, device)
        self.epoch = 0

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return model_input(images, self.data)

    def train_epoch(self, forward: Callable[[torch.Tensor], Logits] | None = None,
                    on_step: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """One epoch; returns its mean loss, training accuracy, learning rate and seconds."""
        cfg, forward = self.config, forward or self.model
        self.model.train()
        self.model.drop_path = cfg.drop_path * self.epoch / max(cfg.epochs, 1)
        started, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        lr = self.optimizer.param_groups[0]["lr"]
        n_batches = -(-len(self.train_labels) // cfg.batch_size)
        with self.torch_rng.active():
            for step, (images, labels) in enumerate(batches(self.train_images, self.train_labels, cfg.batch_size,
                                                            shuffle=True, generator=self.generator)):
                x = augment(self.prepare(images), generator=self.generator, crop_padding=cfg.crop_padding,
                            flip=cfg.flip, cutout=cfg.cutout)
                logits, aux = forward(x)
                loss = F.cross_entropy(logits, labels)
                if aux is not None:
                    loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                total_loss += check_finite_loss(loss.item(), self.epoch + 1) * len(labels)
                correct += int((logits.argmax(1) == labels).sum())
                seen += len(labels)
                if on_step is not None:
                    on_step(step + 1, n_batches)
        self.scheduler.step()
        self.epoch += 1
        return {"epoch": self.epoch, "train_loss": total_loss / seen, "train_acc": 100.0 * correct / seen,
                "lr": lr, "seconds": time.perf_counter() - started}

    @torch.no_grad()
    def accuracy(self, split: str, forward: Callable[[torch.Tensor], Logits] | None = None,
                 limit: int | None = None) -> float:
        """Top-1 accuracy (%) on ``valid`` or ``test`` (its first ``limit`` images), in eval mode."""
        forward = forward or self.model
        images, labels = getattr(self.data, split)
        images, labels = images[:limit], labels[:limit]
        self.model.eval()
        correct = 0
        for x, y in batches(images, labels, self.config.eval_batch_size, shuffle=False):
            correct += int((forward(self.prepare(x.to(self.device)))[0].argmax(1).cpu() == y).sum())
        return 100.0 * correct / max(len(labels), 1)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "torch_rng": self.torch_rng.state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.torch_rng.load_state_dict(state["torch_rng"])
        self.epoch = state["epoch"]
