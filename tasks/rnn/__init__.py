"""Recurrent cells (nao-rnn) on language modelling: standalone and weight-sharing evaluators, ``nao train``.

Registered here with ``nao.register_task``, as a user's own task would be.
"""

from nao.registry import register_task
from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.rnn.evaluators import StandaloneEvaluator, SupernetEvaluator
from nao.tasks.rnn.final import RNNFinalTraining

register_task("rnn", family=RecurrentSpace, evaluators={"standalone": StandaloneEvaluator,
                                                       "supernet": SupernetEvaluator}, final=RNNFinalTraining())
