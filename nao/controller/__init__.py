"""The NAO controller: encoder-predictor-decoder network, training targets, proposals."""

from nao.controller.controller import Controller, ControllerConfig
from nao.controller.ensemble import ControllerEnsemble, load_predictor
from nao.controller.proposals import Proposal

__all__ = ["Controller", "ControllerConfig", "ControllerEnsemble", "Proposal", "load_predictor"]
