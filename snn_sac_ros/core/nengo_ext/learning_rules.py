"""Local learning rules for LIF networks: the rule math, and the Nengo rule types that run it.

The math lives in plain NumPy functions (:func:`lif_rate`, :func:`lif_rate_derivative`,
:func:`feedback_error`, :func:`apply_local_rule`). The Nengo operators in
:mod:`snn_sac_ros.core.nengo_ext.builder` call them on one sample per simulator step (online
learning); the replay trainer in :mod:`snn_sac_ros.core.agent.sac` calls the very same functions on
minibatches. A batch of one therefore gives the same weight change in both places (tested).

Every rule is local to its synapse: the change of ``W[post, pre]`` depends on the presynaptic activity,
the error delivered to the postsynaptic neuron, and per-synapse state (Adam-style running moments of
that product, which normalise the step size the way an adaptive synaptic gain would).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nengo
import numpy as np
from nengo.connection import ConnectionLearningRuleTypeParam
from nengo.exceptions import ValidationError
from nengo.learning_rules import LearningRuleType, LearningRuleTypeParam
from nengo.params import Default, IntParam, NumberParam, Parameter
from nengo.synapses import SynapseParam

# --- LIF neuron constants shared by training (NumPy) and deployment (Nengo) ----------------------


@dataclass(frozen=True)
class LIFParams:
    """LIF constants: membrane and refractory time constants [s], output amplitude, smoothing.

    ``amplitude`` scales rates [Hz] into O(1) activities (0.01: 100 Hz -> 1.0), so the hidden layers
    behave like an MLP's units. ``sigma`` bounds the derivative: the exact LIF derivative is infinite at
    threshold, ours is held at its value ``sigma`` above threshold and decays over ``sigma`` below it.
    """

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    amplitude: float = 0.01
    sigma: float = 0.05

    def to_dict(self) -> dict:
        return {"tau_rc": self.tau_rc, "tau_ref": self.tau_ref, "amplitude": self.amplitude, "sigma": self.sigma}


SILENT_EXPONENT_FLOOR = -25.0  # below-threshold derivative exp(j / sigma) is 0 past this exponent
MOMENT_FLOOR = 1e-30  # lowest second moment of the adaptive rule: float32 values below ~1e-38 are subnormal


def lif_rate(current: np.ndarray, p: LIFParams) -> np.ndarray:
    """Steady-state LIF activity for input current ``J`` (threshold 1), as ``nengo.LIFRate`` computes it.

    .. math:: r(J) = a / (\\tau_{ref} + \\tau_{rc} \\log(1 + 1/(J - 1)))  for J > 1, else 0

    Written with arithmetic masks, not ``np.where``: selection by a random mask is ~10x slower here.
    """
    current = np.asarray(current)
    j = current - current.dtype.type(1.0)
    out = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / np.maximum(j, 1e-30)))
    out *= j > 0
    return out.astype(current.dtype, copy=False)


def lif_rate_derivative(current: np.ndarray, p: LIFParams, rate: np.ndarray | None = None) -> np.ndarray:
    """Bounded d rate / d J of the LIF rate function.

    Above threshold it is the exact derivative ``tau_rc r^2 / (a j (j + 1))`` with ``j = J - 1``, held at its
    value at ``j = sigma`` closer to threshold (where the exact one goes to infinity); below threshold it
    decays as ``exp(j / sigma)`` (to exactly 0 past ``exp(-25)``), so silent neurons still receive a small
    error and can come back.
    Written in place on two temporaries, constants computed once per ``p``: it runs several times per
    online tick. ``rate``, when the caller has it (``lif_rate(current)``, kept from the forward pass),
    saves the logarithm, the costliest part of replay training's hidden-layer errors: the rate rises
    with ``J``, so the rate at ``max(j, sigma)`` is ``max(rate, rate at sigma)``.
    """
    current = np.asarray(current)
    at_sigma, scale = _constants(p)
    j = current - current.dtype.type(1.0)
    jc = np.maximum(j, p.sigma)
    out = _held_rate(jc, p) if rate is None else np.maximum(rate, _rate_at_sigma(p, current.dtype))
    out *= out
    out *= scale
    jc *= jc + 1.0
    out /= jc
    below = j < 0
    out *= ~below
    # exactly 0 where exp(j / sigma) < exp(-25): letting exp underflow instead passes through subnormal
    # floats, which the CPU handles ~100x slower (replay training on kuka_iiwa slowed 2x within 12k updates)
    below &= j >= SILENT_EXPONENT_FLOOR * p.sigma
    np.clip(j, SILENT_EXPONENT_FLOOR * p.sigma, 0.0, out=j)
    j *= 1.0 / p.sigma
    np.exp(j, out=j)
    j *= at_sigma
    j *= below
    out += j
    return out.astype(current.dtype, copy=False)


def _held_rate(jc: np.ndarray, p: LIFParams) -> np.ndarray:
    """The LIF rate at ``jc = max(J - 1, sigma)``, in place on one temporary."""
    out = np.log1p(1.0 / jc)
    out *= p.tau_rc
    out += p.tau_ref
    np.divide(p.amplitude, out, out=out)
    return out


@functools.lru_cache(maxsize=16)
def _rate_at_sigma(p: LIFParams, dtype: np.dtype) -> np.ndarray:
    return _held_rate(np.full(1, p.sigma, dtype), p)[0]  # the very number _held_rate gives in the held band


@functools.lru_cache(maxsize=16)
def _constants(p: LIFParams) -> tuple[float, float]:
    return _derivative_at(p.sigma, p), p.tau_rc / p.amplitude


def _derivative_at(j: float, p: LIFParams) -> float:
    r = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / j))
    return float(p.tau_rc / p.amplitude * r * r / (j * (j + 1.0)))


# --- the rule math, shared by the Nengo operators and the replay trainer --------------------------


def feedback_error(error_down: np.ndarray, feedback: np.ndarray, post_current: np.ndarray,
                   p: LIFParams, post_rate: np.ndarray | None = None) -> np.ndarray:
    """Error at a hidden layer's neurons, delivered through the network.

    .. math:: e_h = (e_{down} B) \\odot r'(J_h)

    ``feedback`` is ``B`` with the downstream weights' shape ``(n_down, n_hidden)``: the downstream
    weights themselves (exact transposed feedback, i.e. backprop) or a fixed random matrix (feedback
    alignment). Arrays are ``(batch, n)``; a single sample is a batch of one. ``post_rate`` (the hidden
    layer's rates, if kept) only makes it faster.
    """
    return (error_down @ feedback) * lif_rate_derivative(post_current, p, post_rate)


@dataclass
class RuleState:
    """Per-synapse running moments of the local update (Adam), and the step count."""

    m: np.ndarray
    v: np.ndarray
    t: np.ndarray  # shape (1,), so a Nengo Signal can hold it

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> RuleState:
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(1))


def apply_local_rule(pre: np.ndarray, error: np.ndarray, state: RuleState, learning_rate: float,
                     delta: np.ndarray, *, adaptive: bool = True, beta1: float = 0.9, beta2: float = 0.999,
                     eps: float = 1e-8, bias: bool = False) -> np.ndarray:
    """Write the weight change for ``W[post, pre]`` into ``delta`` (and return it).

    .. math::
        g = e^T a / B, \\quad m \\leftarrow \\beta_1 m + (1-\\beta_1) g,
        \\quad v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2,
        \\quad \\Delta W = -\\eta \\hat m / (\\sqrt{\\hat v} + \\epsilon)

    ``pre`` is ``(batch, n_pre)`` presynaptic activity, ``error`` is ``(batch, n_post)`` the error at
    the postsynaptic side (d loss / d input current). With ``bias=True``, ``pre`` is ignored and the
    update is for a bias vector ``(n_post,)`` (a synapse from a constant-1 input).
    With ``adaptive=False`` the moments are skipped: ``Delta W = -eta g``, the PES-like form that online
    learning uses, cheap enough for every 1 ms tick.
    """
    batch = error.shape[0]
    state.t += 1.0
    if not adaptive and batch == 1 and not bias:  # the online case: one outer product, written in place
        np.multiply.outer(error[0] * -learning_rate, pre[0], out=delta)
        return delta
    grad = error.sum(axis=0) / batch if bias else (error.T @ pre) / batch
    if not adaptive:
        np.multiply(grad, -learning_rate, out=delta)
        return delta
    t = float(state.t[0])
    # in place on two temporaries beside grad (this runs for every connection of every replay update)
    scratch = np.multiply(grad, 1.0 - beta2)
    scratch *= grad
    state.v *= beta2
    state.v += scratch
    np.maximum(state.v, MOMENT_FLOOR, out=state.v)  # no subnormals (slow); sqrt(1e-30) is far below eps
    grad *= 1.0 - beta1
    state.m *= beta1
    state.m += grad
    step = learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    denominator = np.sqrt(state.v)  # in the moments' dtype, which grad's (the temperature's) may not share
    denominator += eps
    np.divide(state.m, denominator, out=delta)
    delta *= -step
    return delta


def anchor_pull(weights: np.ndarray, reference: np.ndarray, rate: float, delta: np.ndarray) -> np.ndarray:
    """Add to ``delta`` the pull of every synapse back toward its reference weight: ``-rate (W - W_ref)``.

    Online learning on a robot must not wander away from the trained policy: with this term the weights
    relax toward the reference (the trained checkpoint's) with time constant ``dt / rate``, and stay only as
    far from it as a sustained error holds them (at most ``learning_rate * |e a| / rate``). Local: a
    synapse needs only its own weight and reference.
    """
    diff = np.subtract(weights, reference)
    diff *= -rate
    delta += diff
    return delta


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

    The builder computes the post neurons' error with :func:`feedback_error` from the error of the
    downstream learning rule (``downstream``, the rule of the connection these neurons drive), the
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


@dataclass
class PerturbationState:
    """Per-synapse state of the weight-perturbation rule, and the trial bookkeeping its synapses share.

    ``mean`` is the learned weight, ``xi`` the synapse's current perturbation direction (unit normal),
    ``trial`` holds ``[the running trial's cost so far (see :func:`add_trial_cost`), its ticks, the cost of
    the + trial]``, ``phase`` is 0 while the weights are ``mean + sigma xi`` and 1 while they are
    ``mean - sigma xi``, ``spread`` the running mean square of the two trials' cost difference (0 until the
    first pair ends).
    """

    mean: np.ndarray
    xi: np.ndarray
    trial: np.ndarray
    phase: np.ndarray
    spread: np.ndarray

    @classmethod
    def start(cls, weights: np.ndarray, rng: np.random.Generator) -> PerturbationState:
        w = np.array(weights, dtype=float)
        return cls(w, rng.standard_normal(w.shape), np.zeros(3), np.zeros(1), np.zeros(1))

    def weights(self, sigma: np.ndarray | float) -> np.ndarray:
        """The weights the synapses use in the running trial: ``mean +- sigma xi``."""
        return self.mean + (1.0 - 2.0 * self.phase[0]) * np.multiply(sigma, self.xi)


SPREAD_DECAY = 0.9  # memory of the cost-difference scale: about ten trial pairs


def add_trial_cost(state: PerturbationState, cost: float, recency: float) -> None:
    """Add one tick's cost to the running trial.

    ``recency`` 0: the trial's cost is the mean over its ticks. ``recency`` in (0, 1]: the cost is low-pass
    filtered with that weight per tick (``dt / tau``), so a trial is scored by its last ``tau`` seconds: for a
    reach, how well the arm settles on the target rather than how fast it left the start.
    """
    if recency <= 0.0:
        state.trial[0] += cost
    elif state.trial[1] == 0.0:
        state.trial[0] = cost
    else:
        state.trial[0] += recency * (cost - state.trial[0])
    state.trial[1] += 1.0


def end_perturbation_trial(state: PerturbationState, sigma: np.ndarray | float, learning_rate: float, *,
                           low: np.ndarray | float, high: np.ndarray | float, rng: np.random.Generator,
                           filtered: bool = False) -> bool:
    """Close the running trial; after the second of a pair, step every weight against its cost difference.

    .. math:: \\Delta \\bar w = -\\eta \\, \\sigma \\, \\xi \\, (c_+ - c_-) / \\sqrt{\\overline{(c_+ - c_-)^2}}

    Antithetic weight perturbation (a two-point estimate of the cost gradient, like evolution strategies):
    each synapse needs only its own ``xi`` and the one global number ``c_+ - c_-``, so the rule is local
    with a third, modulatory factor. Dividing by the running scale of the difference makes the step size
    independent of the cost's units. ``filtered``: the trial's cost was low-pass filtered (recency > 0 in
    :func:`add_trial_cost`), else summed. Trials without a tick are ignored. Returns True if the weights changed.
    """
    total, ticks = state.trial[0], state.trial[1]
    state.trial[:2] = 0.0
    if ticks <= 0:
        return False
    cost = total if filtered else total / ticks
    if state.phase[0] == 0.0:
        state.trial[2] = cost
        state.phase[0] = 1.0
        return True
    diff = state.trial[2] - cost
    state.spread[0] = diff * diff if state.spread[0] == 0.0 else (
        SPREAD_DECAY * state.spread[0] + (1.0 - SPREAD_DECAY) * diff * diff)
    if state.spread[0] > 0.0:
        state.mean -= learning_rate * np.multiply(sigma, state.xi) * (diff / np.sqrt(state.spread[0]))
        np.clip(state.mean, low, high, out=state.mean)
    state.xi[...] = rng.standard_normal(state.xi.shape)
    state.phase[0] = 0.0
    return True


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


def random_feedback(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Fixed random feedback matrix for feedback alignment, scaled like a ``1/sqrt(fan_in)`` init."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, shape) * np.sqrt(3.0 / shape[1])


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
