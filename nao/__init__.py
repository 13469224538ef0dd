"""nao: Neural Architecture Optimization (Luo et al. 2018) in PyTorch.

    import nao
    space = nao.get_space("nb201")
    ctrl = nao.Controller(space, seed=0)
    ctrl.fit(archs, scores)
    ctrl.propose(archs, scores, n=100)

Your own problem: ``nao.register_space``, ``nao.register_evaluator``, ``nao.register_strategy``,
``nao.register_task`` (from a plugin: ``--plugin FILE.py``), and the ask/tell ``nao.Optimizer``.
"""

from nao.controller import Controller, ControllerConfig, ControllerEnsemble, Proposal
from nao.errors import UserError
from nao.export import build_cnn, build_rnn, export_network
from nao.registry import register_evaluator, register_strategy, register_task
from nao.search.asktell import Optimizer, Trial
from nao.search.evaluators import EvaluatorConfig
from nao.search.strategies import Candidate, Evaluated, SearchContext, Strategy
from nao.spaces import SearchSpace, get_space, list_spaces, register_space
from nao.train import FinalTraining

__version__ = "0.1.0"

__all__ = ["Candidate", "Controller", "ControllerConfig", "ControllerEnsemble", "Evaluated", "EvaluatorConfig",
           "FinalTraining", "Optimizer", "Proposal", "SearchContext", "SearchSpace", "Strategy", "Trial", "UserError",
           "__version__", "build_cnn", "build_rnn", "export_network", "get_space", "list_spaces", "register_evaluator",
           "register_space", "register_strategy", "register_task"]
