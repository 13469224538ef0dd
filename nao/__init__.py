"""nao: Neural Architecture Optimization (Luo et al. 2018) in PyTorch.

    import nao
    space = nao.get_space("nb201")
    ctrl = nao.Controller(space, seed=0)
    ctrl.fit(archs, scores)
    ctrl.propose(archs, scores, n=100)
"""

from nao.controller import Controller, ControllerConfig, Proposal
from nao.errors import UserError
from nao.spaces import SearchSpace, get_space, list_spaces, register_space

__version__ = "0.1.0"

__all__ = ["Controller", "ControllerConfig", "Proposal", "SearchSpace", "UserError", "__version__",
           "get_space", "list_spaces", "register_space"]
