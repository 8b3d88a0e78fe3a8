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
from nengo.params import Default, IntParam, NumberParam, Parameter
from nengo.synapses import SynapseParam

from snn_sac_ros.core.learning.lif import LIFParams

# --- Nengo rule types -----------------------------------------------------------------------------


class LocalDelta(LearningRuleType):
    """Error-driven local rule on a connection's full weight matrix (biases: connections from a constant 1).

    Like PES, the error arrives on ``connection.learning_rule`` (size ``post``), but the rule is applied
    in the post neurons' current space (no encoders), with per-synapse Adam moments, via
    :func:`apply_local_rule`. Use it on output layers, whose error the network computes (TD error,
    actor error). Hidden layers use :class:`FeedbackDelta`, which computes its own error.

    Parameters
    ----------
    learning_rate : float
        Step size of the normalised update.
    pre_synapse : Synapse or None
        Filter on the presynaptic activities (None: use them as they are).
    adaptive : bool
        Normalise steps by per-synapse running moments (Adam, as replay training does); False: plain
        ``-eta e a^T`` (PES-like, cheap enough for every tick).
    anchor_tau : float
        Time constant [s] of the pull back toward ``reference`` (:func:`anchor_pull`) while the rule
        learns; 0: no pull.
    reference : array or None
        The weights to be pulled toward (None: the connection's weights at build time).
    """

    modifies = "weights"
    probeable = ("error", "pre_filtered", "delta")

    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=1e-4)
    pre_synapse = SynapseParam("pre_synapse", default=None, optional=True, readonly=True)
    adaptive = Parameter("adaptive", default=False, readonly=True)
    anchor_tau = NumberParam("anchor_tau", low=0, readonly=True, default=0.0)
    reference = Parameter("reference", default=None, optional=True, readonly=True)

    def __init__(self, learning_rate: float = Default, pre_synapse: object = Default, adaptive: bool = Default,
                 anchor_tau: float = Default, reference: np.ndarray | None = Default) -> None:
        super().__init__(learning_rate, size_in="post")
        self.pre_synapse = pre_synapse
        self.adaptive = adaptive
        self.anchor_tau = anchor_tau
        self.reference = reference


class FeedbackDelta(LearningRuleType):
    """:class:`LocalDelta` on a hidden layer whose error reaches it back through the network.

    The builder computes the post neurons' error with :func:`~snn_sac_ros.core.learning.feedback.send_back` from
    the error of the downstream learning rule (``downstream``, the rule of the connection these neurons drive), the
    feedback matrix (``"exact"``: the downstream connection's live weights; ``"random"``: a fixed random
    matrix, feedback alignment), and the neurons' input current with the bounded LIF derivative.
    No error connection is needed (``size_in`` 0).

    Parameters
    ----------
    downstream : LearningRule
        The learning rule of the connection that reads this connection's post neurons.
    feedback : str
        ``"exact"`` or ``"random"``.
    lif : LIFParams
        Neuron constants of the post ensemble (for the derivative).
    seed : int
        Seed of the random feedback matrix.
    anchor_tau, reference
        As for :class:`LocalDelta`.
    """

    modifies = "weights"
    probeable = ("error", "pre_filtered", "delta")

    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=1e-4)
    pre_synapse = SynapseParam("pre_synapse", default=None, optional=True, readonly=True)
    adaptive = Parameter("adaptive", default=False, readonly=True)
    downstream = Parameter("downstream", default=None, readonly=True)
    feedback = Parameter("feedback", default="exact", readonly=True)
    lif = Parameter("lif", default=LIFParams(), readonly=True)
    seed = IntParam("seed", default=0, readonly=True)
    anchor_tau = NumberParam("anchor_tau", low=0, readonly=True, default=0.0)
    reference = Parameter("reference", default=None, optional=True, readonly=True)

    def __init__(self, downstream: object, learning_rate: float = Default, *, pre_synapse: object = Default,
                 adaptive: bool = Default, feedback: str = Default, lif: LIFParams = Default,
                 seed: int = Default, anchor_tau: float = Default, reference: np.ndarray | None = Default) -> None:
        super().__init__(learning_rate, size_in=0)
        if feedback not in (Default, "exact", "random"):
            raise ValueError(f"feedback must be 'exact' or 'random', got {feedback!r}")
        self.downstream = downstream
        self.pre_synapse = pre_synapse
        self.adaptive = adaptive
        self.feedback = feedback
        self.lif = lif
        self.seed = seed
        self.anchor_tau = anchor_tau
        self.reference = reference


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
        if not isinstance(rule, LocalDelta | FeedbackDelta | PerturbationDelta):
            super().check_rule(conn, rule)
            return
        LearningRuleTypeParam.check_rule(self, conn, rule)
        if not conn.has_weights:
            raise ValidationError(f"{rule} needs a connection with a transform", attr=self.name, obj=conn)


class LearnedConnection(nengo.Connection):
    """A ``nengo.Connection`` whose weights our local rules may learn even when ``pre`` is a node.

    Nengo only lets ``weights``/``decoders`` rules learn connections out of neurons (and ``weights``
    ones only into neurons). Our networks also learn the input layer (observation node -> neurons), the
    biases (constant-1 node -> neurons) and the linear readout (neurons -> output node): for those, the
    presynaptic activity is the node's output, and the rule math is the same.
    """

    learning_rule_type = _LocalRuleTypeParam("learning_rule_type", default=None, optional=True)
