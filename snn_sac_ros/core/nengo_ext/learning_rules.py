"""Local learning rules for LIF networks: the rule math, and the Nengo rule types that run it.

The math lives in plain functions on NumPy arrays (:func:`lif_rate`, :func:`lif_rate_derivative`,
:func:`feedback_error`, :func:`apply_local_rule`; their per-element passes are fused numba kernels). The
Nengo operators in :mod:`snn_sac_ros.core.nengo_ext.builder` call them on one sample per simulator step
(online learning); the replay trainer in :mod:`snn_sac_ros.core.agent.sac` calls the very same functions on
minibatches. A batch of one therefore gives the same weight change in both places (tested).

Every rule is local to its synapse: the change of ``W[post, pre]`` depends on the presynaptic activity,
the error delivered to the postsynaptic neuron, and per-synapse state (Adam-style running moments of
that product, which normalise the step size the way an adaptive synaptic gain would).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import nengo
import numba
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


# --- fused kernels ---------------------------------------------------------------------------------
# NumPy runs `a / (tau_ref + tau_rc * log1p(1 / j))`, masked, as nine passes over memory, the bounded
# derivative as seventeen; on replay batches (256 x 256) those passes, not the arithmetic, were ~45 % of
# an update. Each kernel below is one pass (numba); the transcendental functions stay NumPy's vectorised
# log1p and exp, and every operation keeps NumPy's order and dtype, so the results are bit-for-bit those
# of the plain NumPy expressions (tested against them). error_model="numpy": IEEE results, no exceptions,
# which lets the loops vectorise.
_kernel = functools.partial(numba.njit, nogil=True, cache=True, error_model="numpy")


@_kernel
def _rate_log1p_argument(current: np.ndarray, out: np.ndarray, one: float, tiny: float) -> None:
    """``out = 1 / (J - 1)`` where ``J > 1``; -0.5 where silent (a marker: its log1p is negative); NaN kept."""
    for i in range(current.size):
        j = current[i] - one
        if j > 0.0:
            out[i] = one / max(j, tiny)
        elif math.isnan(j):  # bad input must not turn into a quiet zero
            out[i] = j
        else:
            out[i] = -0.5


@_kernel
def _rate_from_log1p(x: np.ndarray, amplitude: float, tau_ref: float, tau_rc: float) -> None:
    """``x = a / (tau_ref + tau_rc x)`` where ``x = log1p(...) >= 0``; 0 at the silent marker; NaN kept."""
    for i in range(x.size):
        if x[i] >= 0.0:
            x[i] = amplitude / (tau_ref + x[i] * tau_rc)
        elif not math.isnan(x[i]):
            x[i] = 0.0


@_kernel
def _derivative_parts(current: np.ndarray, rate: np.ndarray, out: np.ndarray, exp_arg: np.ndarray,  # noqa: PLR0917
                      one: float, sigma: float, rate_at_sigma: float, scale: float, floor: float,
                      inv_sigma: float) -> None:
    """The above-threshold derivative into ``out`` (0 below), and ``j / sigma`` where the decay applies
    (-inf elsewhere, so NumPy's exp gives exactly 0 there and no subnormal). NaN in, NaN out."""
    for i in range(current.size):
        j = current[i] - one
        jc = j if math.isnan(j) else max(j, sigma)
        r = rate[i] if math.isnan(rate[i]) else max(rate[i], rate_at_sigma)
        held = r * r
        held = held * scale
        held = held / (jc * (jc + one))
        if j < 0.0:
            out[i] = held * 0.0  # as NumPy's masked multiply: 0, or NaN from a non-finite held value
            exp_arg[i] = j * inv_sigma if j >= floor else -np.inf
        else:
            out[i] = held
            exp_arg[i] = -np.inf


@_kernel
def _add_decay(out: np.ndarray, decay: np.ndarray, at_sigma: float) -> None:
    """``out += at_sigma * exp(j / sigma)`` (``decay`` holds the exp, 0 where it does not apply)."""
    for i in range(out.size):
        out[i] = out[i] + decay[i] * at_sigma


@_kernel
def _adam_step(grad: np.ndarray, m: np.ndarray, v: np.ndarray, delta: np.ndarray,  # noqa: PLR0917
               one_minus_beta1: float, beta1: float, one_minus_beta2: float, beta2: float, floor: float,
               eps: float, neg_step: float) -> None:
    """Adam's moments and step for every synapse, in one pass (see :func:`apply_local_rule`)."""
    for i in range(grad.size):
        g = grad[i]
        v[i] = v[i] * beta2 + (g * one_minus_beta2) * g
        v[i] = max(v[i], floor)
        m[i] = m[i] * beta1 + g * one_minus_beta1
        ratio = m[i] / (np.sqrt(v[i]) + eps)
        delta[i] = ratio * neg_step


def _flat(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A 1-D contiguous view of an input (a copy only if it is strided or of another dtype)."""
    return np.ascontiguousarray(x, dtype=dtype).reshape(-1)


def _flat_out(x: np.ndarray) -> np.ndarray:
    """A 1-D view of an array the kernels write into; a copy would silently drop the writes."""
    if not x.flags.c_contiguous:
        raise ValueError("the learning rule writes in place: its state and delta arrays must be contiguous")
    return x.reshape(-1)


def _float_array(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def lif_rate(current: np.ndarray, p: LIFParams) -> np.ndarray:
    """Steady-state LIF activity for input current ``J`` (threshold 1), as ``nengo.LIFRate`` computes it.

    .. math:: r(J) = a / (\\tau_{ref} + \\tau_{rc} \\log(1 + 1/(J - 1)))  for J > 1, else 0

    Three passes: a kernel, NumPy's log1p, a kernel (see the kernels' note above).
    """
    current = _float_array(current)
    t = current.dtype.type
    out = np.empty(current.shape, current.dtype)
    flat = out.reshape(-1)
    _rate_log1p_argument(_flat(current, current.dtype), flat, t(1.0), t(1e-30))
    np.log1p(flat, out=flat)
    _rate_from_log1p(flat, t(p.amplitude), t(p.tau_ref), t(p.tau_rc))
    return out


def lif_rate_derivative(current: np.ndarray, p: LIFParams, rate: np.ndarray | None = None) -> np.ndarray:
    """Bounded d rate / d J of the LIF rate function.

    Above threshold it is the exact derivative ``tau_rc r^2 / (a j (j + 1))`` with ``j = J - 1``, held at its
    value at ``j = sigma`` closer to threshold (where the exact one goes to infinity); below threshold it
    decays as ``exp(j / sigma)`` (to exactly 0 past ``exp(-25)``), so silent neurons still receive a small
    error and can come back.
    ``rate``, when the caller has it (``lif_rate(current)``, kept from the forward pass), saves the
    logarithm: the rate rises with ``J``, so the rate at ``max(j, sigma)`` is ``max(rate, rate at sigma)``.
    """
    current = _float_array(current)
    dtype, t = current.dtype, current.dtype.type
    at_sigma, scale = _constants(p)
    flat_current = _flat(current, dtype)
    flat_rate = lif_rate(flat_current, p) if rate is None else _flat(rate, dtype)
    out = np.empty(current.shape, dtype)
    decay = np.empty(flat_current.size, dtype)
    # exactly 0 where exp(j / sigma) < exp(-25): letting exp underflow instead passes through subnormal
    # floats, which the CPU handles ~100x slower (replay training on kuka_iiwa slowed 2x within 12k updates)
    _derivative_parts(flat_current, flat_rate, out.reshape(-1), decay, t(1.0), t(p.sigma),
                      _rate_at_sigma(p, dtype), t(scale), t(SILENT_EXPONENT_FLOOR * p.sigma), t(1.0 / p.sigma))
    np.exp(decay, out=decay)
    _add_decay(out.reshape(-1), decay, t(at_sigma))
    return out


@functools.lru_cache(maxsize=1)
def compile_kernels() -> None:
    """Compile (or load from numba's cache) the kernels for the dtypes training and Nengo use.

    The Nengo operators call this when the simulator is built, so the first control tick does not pay
    for compilation.
    """
    for dtype in (np.float32, np.float64):
        current = np.linspace(-1.0, 3.0, 8).astype(dtype)
        lif_rate_derivative(current, LIFParams(), lif_rate(current, LIFParams()))
        apply_local_rule(current[:, None], current[:, None], RuleState.zeros((1, 1)), 1e-3,
                         np.empty((1, 1), dtype))


def _held_rate(jc: np.ndarray, p: LIFParams) -> np.ndarray:
    """The LIF rate at ``jc = J - 1 > 0``, in NumPy (for the one constant the kernels need)."""
    out = np.log1p(1.0 / jc)
    out *= p.tau_rc
    out += p.tau_ref
    np.divide(p.amplitude, out, out=out)
    return out


@functools.lru_cache(maxsize=16)
def _rate_at_sigma(p: LIFParams, dtype: np.dtype) -> np.ndarray:
    return _held_rate(np.full(1, p.sigma, dtype), p)[0]  # the number lif_rate gives at J - 1 = sigma


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
    error = error_down @ feedback
    error *= lif_rate_derivative(post_current, p, post_rate)
    return error


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
    step = learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    gt, mt = grad.dtype.type, state.m.dtype.type
    _adam_step(_flat(grad, grad.dtype), _flat_out(state.m), _flat_out(state.v), _flat_out(delta),
               gt(1.0 - beta1), mt(beta1), gt(1.0 - beta2), mt(beta2), mt(MOMENT_FLOOR), mt(eps), float(-step))
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
