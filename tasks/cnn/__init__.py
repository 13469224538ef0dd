"""CNN cells (nao-cnn, nao-cnn-large) on images: standalone, weight-sharing and training-free evaluators,
``nao train``.

Registered here with ``nao.register_task``, as a user's own task would be.
"""

from nao.registry import register_task
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.evaluators import ProxyEvaluator, StandaloneEvaluator, SupernetEvaluator
from nao.tasks.cnn.final import CNNFinalTraining

register_task("cnn", family=CellSpace, evaluators={"standalone": StandaloneEvaluator,
                                                       "supernet": SupernetEvaluator,
                                                       "proxy": ProxyEvaluator}, final=CNNFinalTraining())
