"""Nengo rule types for the local learning rules: what each rule is and what it needs (the frontend).

As in Nengo itself, the types here only hold parameters; :mod:`snn_sac_ros.core.nengo_ext.builder` turns them
into signals and operators, which call the shared learning math of :mod:`snn_sac_ros.core.learning`.

Every rule is local to its synapse: the change of ``W[post, pre]`` depends on the presynaptic activity, the
error delivered to the postsynaptic neurons, and per-synapse state. Where that error comes from is the
feedback mode (:mod:`snn_sac_ros.core.learning.feedback`).
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.connection import ConnectionLearningRuleTypeParam
from nengo.exceptions import ValidationError
from nengo.learning_rules import LearningRuleType, LearningRuleTypeParam
from nengo.params import Default, FrozenObject, IntParam, NumberParam, Parameter

from snn_sac_ros.core.learning.modes import FeedbackMode, feedback_mode

# --- Nengo rule types -----------------------------------------------------------------------------


class LocalLearning(FrozenObject):
    """How a :class:`~snn_sac_ros.core.nengo_ext.networks.LIFNetwork`'s connections learn: every synapse by the
    local rule ``dW = -eta e a^T`` from its pre activity and its post error, the hidden layers' errors by a feedback
    mode (:data:`~snn_sac_ros.core.learning.feedback.FEEDBACK_MODES`: ``exact`` is backprop, ``kp`` and the
    feedback-alignment modes read no forward weight).

    Parameters
    ----------
    learning_rate : float
        Step size of the plain per-step update (no moments: cheap enough for every 1 ms step).
    feedback : str
        The feedback mode's name.
    pre_synapse : float or None
        Time constant [s] of the low-pass filter on spiking pre activities (connections from neurons); None: none.
    anchor_tau : float
        Time constant [s] of every learning weight's pull back toward its reference (0: no pull).
    weight_decay : float
        Decay per step of forward and learned feedback matrices alike (Kolen-Pollack), 0: none.
    """

    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=1e-4)
    feedback = Parameter("feedback", default="exact", readonly=True)
    pre_synapse = NumberParam("pre_synapse", low=0, low_open=True, optional=True, readonly=True, default=None)
    anchor_tau = NumberParam("anchor_tau", low=0, readonly=True, default=0.0)
    weight_decay = NumberParam("weight_decay", low=0, high=1, high_open=True, readonly=True, default=0.0)

    def __init__(self, learning_rate: float = 1e-4, feedback: str = "exact", pre_synapse: float | None = None,
                 anchor_tau: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.feedback = feedback_mode(feedback).name
        self.pre_synapse = pre_synapse
        self.anchor_tau = anchor_tau
        self.weight_decay = weight_decay

    @property
    def mode(self) -> FeedbackMode:
        return feedback_mode(self.feedback)


class PerturbationDelta(LearningRuleType):
    """Reward-modulated weight perturbation: each synapse tries ``w + sigma xi``, then ``w - sigma xi``.

    For a connection whose effect on the task has no gradient the network can compute (here: a joint
    damping gain, whose effect on the reach error runs through the arm's changed dynamics). Its input
    (``size_in`` 3) is the network's modulatory signal ``[cost, trial_end, enabled]``: the cost of this tick
    (e.g. minus the reward), 1 on the tick a trial ends (a reach), and 1 while learning is on (off: the
    weights return to their unperturbed means and stay). See :func:`add_trial_cost` for how a trial is
    scored and :func:`end_perturbation_trial` for the update.

    Parameters
    ----------
    learning_rate : float
        Step of the mean weight per trial pair, in units of ``sigma`` (per unit of normalised cost difference).
    sigma : float or array
        Perturbation size per synapse (0: the synapse does not learn), in weight units.
    low, high : float or array
        Bounds of the mean weights (e.g. to keep a damping gain dissipative and within its limit).
    seed : int
        Seed of the perturbation directions.
    cost_tau : float
        Time constant [s] of the low-pass filter that scores a trial by its last ``cost_tau`` seconds
        (0: by the mean cost over the whole trial).
    """

    modifies = "weights"
    probeable = ("delta",)
    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=0.2)
    sigma = Parameter("sigma", default=0.1, readonly=True)
    low = Parameter("low", default=-np.inf, readonly=True)
    high = Parameter("high", default=np.inf, readonly=True)
    seed = IntParam("seed", default=0, readonly=True)
    cost_tau = NumberParam("cost_tau", low=0, readonly=True, default=0.0)

    def __init__(self, learning_rate: float = Default, *, sigma: float | np.ndarray = Default,
                 low: float | np.ndarray = Default, high: float | np.ndarray = Default,
                 seed: int = Default, cost_tau: float = Default) -> None:
        super().__init__(learning_rate, size_in=3)
        self.sigma = sigma
        self.low = low
        self.high = high
        self.seed = seed
        self.cost_tau = cost_tau


class _LocalRuleTypeParam(ConnectionLearningRuleTypeParam):
    """Nengo's checks, except that our rules may learn a transform from a node or onto a node."""

    def check_rule(self, conn: nengo.Connection, rule: LearningRuleType) -> None:
        if not isinstance(rule, PerturbationDelta):
            super().check_rule(conn, rule)
            return
        LearningRuleTypeParam.check_rule(self, conn, rule)
        if not conn.has_weights:
            raise ValidationError(f"{rule} needs a connection with a transform", attr=self.name, obj=conn)


class LearnedConnection(nengo.Connection):
    """A ``nengo.Connection`` whose transform :class:`PerturbationDelta` may learn between nodes.

    Nengo only lets ``weights`` rules learn connections out of neurons into neurons; weight perturbation needs no
    neurons at either end (a gain from a node to a node, as the joint damping is).
    """

    learning_rule_type = _LocalRuleTypeParam("learning_rule_type", default=None, optional=True)
