"""``nao train`` for CNN cell archs (the loop and run directory are ``nao.train``'s).

Validation accuracy every ``valid_every`` epochs; the test accuracy once, of the last epoch's model:
nothing is selected on the test set (the original picked its best checkpoint on it, nao-facts §8.1, 12).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nao.config import ConfigError
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.evaluators import check_trainable
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig
from nao.tasks.cnn.train import DataConfig, TrainConfig, Trainer
from nao.torchutils import resolve_device, seeded_init
from nao.train import FinalTraining


@dataclass
class FinalConfig:
    """``nao train`` for the CNN spaces; the defaults are NAO's CIFAR-10 recipe (nao-facts §6.1)."""

    space: str = "nao-cnn"
    arch: str | None = None  # the arch's text form (required)
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    valid_every: int = 1  # epochs between validation passes (the last epoch is always validated)


class CNNFinalTraining(FinalTraining):
    Config = FinalConfig

    def build_trainer(self, config: FinalConfig, space: CellSpace, arch) -> Trainer:
        if not isinstance(space, CellSpace):
            raise ConfigError(f"space: {config.space} is not a CNN cell space")
        check_trainable(space)
        data = config.data.load(config.seed)
        model = seeded_init(lambda: ChildNetwork(space, arch, in_channels=data.shape[0], n_classes=data.n_classes,
                                                 config=config.network), config.seed)
        return Trainer(model, data, config.train, seed=config.seed, device=resolve_device(config.device),
                       train_images=config.data.train_images)

    def train_epoch(self, trainer: Trainer, config: FinalConfig) -> dict:
        stats = trainer.train_epoch()
        if trainer.epoch % config.valid_every == 0 or trainer.epoch == config.train.epochs:
            stats["valid_acc"] = trainer.accuracy("valid")
        return stats

    def final_metrics(self, trainer: Trainer, config: FinalConfig) -> dict:
        return {"valid_acc": trainer.accuracy("valid"), "test_acc": trainer.accuracy("test")}
