"""Builders and operators for the local learning rules (``LocalDelta``, ``FeedbackDelta``) and ``InputGradient``.

Importing this module registers the builders with ``nengo.builder.Builder``. Each ``Sim*`` operator's
``make_step`` calls the shared rule math of :mod:`snn_sac_ros.core.nengo_ext.learning_rules` on one sample
(a batch of one), so online learning in ``sim.step()`` and the NumPy replay trainer change weights alike.
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.builder import Builder, Operator, Signal
from nengo.builder.learning_rules import build_or_passthrough, get_post_ens
from nengo.builder.operator import Reset
from nengo.exceptions import BuildError

from snn_sac_ros.core.learning.feedback import send_back
from snn_sac_ros.core.learning.lif import LIFParams, lif_rate_derivative
from snn_sac_ros.core.learning.perturbation import PerturbationState, add_trial_cost, end_perturbation_trial
from snn_sac_ros.core.learning.rules import RuleState, anchor_pull, apply_local_rule, compile_kernels, random_feedback
from snn_sac_ros.core.nengo_ext.learning_rules import FeedbackDelta, LocalDelta, PerturbationDelta

ANCHOR_EVERY = 16
"""Steps between two applications of the anchor pull (each pulls 16 steps' worth): a pull over the agent's
~200k weights costs about 1 ms, so every 16th step it averages ~70 us per step."""


class SimLocalDelta(Operator):
    r"""Weight change of one connection from its pre activity and its post error (:func:`apply_local_rule`).

    .. math:: \Delta W = -\eta \hat m / (\sqrt{\hat v} + \epsilon), \quad g = e \, a^T

    With ``anchor_tau > 0`` (and the connection's ``weights`` and a ``reference`` signal) every
    :data:`ANCHOR_EVERY`-th learning step also pulls the weights toward the reference (:func:`anchor_pull`).

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[pre_filtered, error(, weights, reference)]``
    4. updates ``[delta, m, v, t]``
    """

    def __init__(self, pre_filtered: Signal, error: Signal, delta: Signal, m: Signal, v: Signal, t: Signal,  # noqa: PLR0917
                 learning_rate: float, adaptive: bool = False, tag: str | None = None,
                 anchor: tuple[Signal, Signal, float] | None = None) -> None:
        super().__init__(tag=tag)
        self.learning_rate, self.adaptive = learning_rate, adaptive
        self.anchor_tau = anchor[2] if anchor is not None else 0.0
        self.sets, self.incs = [], []
        self.reads = [pre_filtered, error] + ([anchor[0], anchor[1]] if anchor is not None else [])
        self.updates = [delta, m, v, t]

    @property
    def pre_filtered(self) -> Signal:
        return self.reads[0]

    @property
    def error(self) -> Signal:
        return self.reads[1]

    @property
    def delta(self) -> Signal:
        return self.updates[0]

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        pre = signals[self.pre_filtered]
        error = signals[self.error]
        delta = signals[self.delta]
        state = RuleState(*(signals[s] for s in self.updates[1:]))
        lr, adaptive = self.learning_rate, self.adaptive
        dirty = [True]  # delta may be non-zero; zeroing 65k synapses every idle tick is the cost to avoid
        anchored = self.anchor_tau > 0
        if anchored:
            weights, reference = signals[self.reads[2]], signals[self.reads[3]]
            rate = ANCHOR_EVERY * dt / self.anchor_tau
            learning_steps = [0]

            def pull() -> None:
                learning_steps[0] += 1
                if learning_steps[0] % ANCHOR_EVERY == 0:
                    anchor_pull(weights, reference, rate, delta)

        if not adaptive:  # the online case: one outer product straight into delta
            t, neg_lr, zero = state.t, -lr, [False]  # zero: delta already all zeros (nothing else writes it)

            def step_simlocaldelta_plain() -> None:
                np.add(t, 1.0, out=t)
                if error.any():
                    np.multiply.outer(error * neg_lr, pre, out=delta)
                    if anchored:
                        pull()
                    zero[0] = False
                elif not zero[0]:  # no error (learning off): zero once, then skip
                    delta[...] = 0.0
                    zero[0] = True

            return step_simlocaldelta_plain

        def step_simlocaldelta() -> None:
            if not error.any():  # no error, no plasticity: the synapse and its moments stay as they are
                if dirty[0]:
                    delta[...] = 0.0
                    dirty[0] = False
                return
            apply_local_rule(pre[None, :], error[None, :], state, lr, delta, adaptive=adaptive)
            if anchored:
                pull()
            dirty[0] = True

        return step_simlocaldelta


class DerivativeMemo:
    """The bounded LIF derivative of one ensemble's input current, computed at most once per simulator step.

    A critic's hidden layer needs it twice per tick (its own learning rule, and the action gradient):
    the operators that read the same current share one memo, keyed by the step counter.
    """

    def __init__(self, lif: LIFParams) -> None:
        self.lif, self.step, self.value = lif, -1, None

    def __call__(self, current: np.ndarray, step: np.ndarray) -> np.ndarray:
        s = int(step)
        if s != self.step:
            self.value = lif_rate_derivative(current[None, :], self.lif)
            self.step = s
        return self.value


def derivative_memo(model: object, ensemble: nengo.Ensemble, lif: LIFParams) -> DerivativeMemo:
    """The model's memo for ``ensemble``'s input current (one per ensemble and LIF constants)."""
    if not hasattr(model, "lif_derivative_memos"):  # not in model.sig: the optimizer rewrites Signals there
        model.lif_derivative_memos = {}
    return model.lif_derivative_memos.setdefault((ensemble, lif), DerivativeMemo(lif))


class SimFeedbackError(Operator):
    r"""A hidden layer's error from the error of the layer it drives, sent back through the network.

    .. math:: e_h = (B^T e_{down}) \odot r'(J_h)

    ``feedback`` is the downstream connection's live weights (exact) or a fixed random matrix.

    Notes
    -----
    1. sets ``[error]``
    2. incs ``[]``
    3. reads ``[error_down, feedback, post_current]``
    4. updates ``[]``
    """

    def __init__(self, error_down: Signal, feedback: Signal, post_current: Signal, error: Signal,  # noqa: PLR0917
                 lif: LIFParams, tag: str | None = None, step: Signal | None = None,
                 memo: DerivativeMemo | None = None) -> None:
        super().__init__(tag=tag)
        self.lif, self.memo = lif, memo
        self.sets, self.incs, self.updates = [error], [], []
        self.reads = [error_down, feedback, post_current] + ([step] if memo is not None else [])

    @property
    def error(self) -> Signal:
        return self.sets[0]

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        error_down, feedback = signals[self.reads[0]], signals[self.reads[1]]
        current, error = signals[self.reads[2]], signals[self.error]
        lif, memo = self.lif, self.memo
        if memo is not None:
            step = signals[self.reads[3]]

            def step_simfeedbackerror_shared() -> None:
                if not error_down.any():  # nothing to send back (learning off): skip the work
                    error[...] = 0.0
                    return
                np.multiply(error_down @ feedback, memo(current, step)[0], out=error)

            return step_simfeedbackerror_shared

        def step_simfeedbackerror() -> None:
            if not error_down.any():  # nothing to send back (learning off): skip the work
                error[...] = 0.0
                return
            error[...] = send_back(error_down[None, :], feedback, current[None, :], lif)[0]

        return step_simfeedbackerror


def _pre_activities(model: object, rule: object, synapse: object) -> Signal:
    conn = rule.connection
    pre = model.sig[conn.pre_obj]["out"]
    if isinstance(conn.pre_obj, nengo.ensemble.Neurons) and conn.pre_slice != slice(None):
        raise BuildError(f"{rule}: sliced neuron pre objects are not supported")
    return build_or_passthrough(model, synapse, pre)


def _add_rule_ops(model: object, rule: object, rule_type: object, error: Signal) -> None:
    compile_kernels()  # at build time, so the first simulator step (a control tick) does not compile
    delta = model.sig[rule]["delta"]
    acts = _pre_activities(model, rule, rule_type.pre_synapse)
    shape = delta.shape if rule_type.adaptive else (1,)  # moments only where they are used
    m = Signal(np.zeros(shape, np.float32), name=f"{rule}.m")
    v = Signal(np.zeros(shape, np.float32), name=f"{rule}.v")
    t = Signal(np.zeros(1), name=f"{rule}.t")
    anchor = None
    if rule_type.anchor_tau > 0:
        weights = model.sig[rule.connection]["weights"]
        ref = weights.initial_value if rule_type.reference is None else rule_type.reference
        ref = np.array(ref, dtype=weights.dtype).reshape(weights.shape)
        anchor = (weights, Signal(ref, name=f"{rule}.reference", readonly=True), rule_type.anchor_tau)
    model.add_op(SimLocalDelta(acts, error, delta, m, v, t, rule_type.learning_rate, rule_type.adaptive,
                               tag=f"{rule}.local_delta", anchor=anchor))
    model.sig[rule]["pre_filtered"] = acts
    model.sig[rule]["error"] = error


@Builder.register(LocalDelta)
def build_local_delta(model: object, local_delta: LocalDelta, rule: object) -> None:
    """Build a :class:`LocalDelta` rule.

    1. Make the error signal ``model.sig[rule]["in"]`` (reset every step; error connections increment it).
    2. Filter the pre activities with ``pre_synapse`` (``model.sig[rule]["pre_filtered"]``).
    3. Add :class:`SimLocalDelta`, which writes ``model.sig[rule]["delta"]``.

    ``model.sig[rule]["error"]`` is the error signal, which an upstream :class:`FeedbackDelta` reads.
    """
    error = Signal(shape=(rule.size_in,), name="LocalDelta:error")
    model.add_op(Reset(error))
    model.sig[rule]["in"] = error
    _add_rule_ops(model, rule, local_delta, error)


@Builder.register(FeedbackDelta)
def build_feedback_delta(model: object, fb: FeedbackDelta, rule: object) -> None:
    """Build a :class:`FeedbackDelta` rule on a connection into a hidden LIF ensemble's neurons.

    1. Find the downstream rule's error (it must be built first: add connections output-first).
    2. Pick the feedback matrix: the downstream connection's weights signal (``"exact"``) or a fixed random
       matrix (``"random"``, seeded by ``fb.seed``).
    3. Add :class:`SimFeedbackError` (downstream error, feedback, post neurons' input current -> this error).
    4. Add :class:`SimLocalDelta` as for :class:`LocalDelta`.
    """
    conn = rule.connection
    if not isinstance(conn.post_obj, nengo.ensemble.Neurons):
        raise BuildError(f"{rule}: FeedbackDelta needs a connection into an ensemble's neurons")
    down = fb.downstream
    if down is None or "error" not in model.sig[down]:
        raise BuildError(f"{rule}: downstream rule {down} is not built yet; add connections output-first")
    post_ens = get_post_ens(conn)
    if not (np.all(model.params[post_ens].gain == 1.0) and np.all(model.params[post_ens].bias == 0.0)):
        raise BuildError(f"{rule}: the post ensemble needs gain=1 and bias=0 (biases are learned connections)")
    down_weights = model.sig[down.connection]["weights"]
    if fb.feedback == "exact":
        feedback = down_weights
    else:
        feedback = Signal(random_feedback(down_weights.shape, fb.seed).astype(np.float32), name=f"{rule}.B")
    # connections into the same neurons (weights, bias) share one error computation
    key = f"feedback_error:{fb.feedback}:{fb.seed}:{id(post_ens)}"
    if key not in model.sig[down]:
        error = Signal(shape=(post_ens.n_neurons,), name="FeedbackDelta:error")
        model.add_op(SimFeedbackError(model.sig[down]["error"], feedback, model.sig[post_ens.neurons]["in"], error,
                                      fb.lif, tag=f"{rule}.feedback_error", step=model.step,
                                      memo=derivative_memo(model, post_ens, fb.lif)))
        model.sig[down][key] = error
    _add_rule_ops(model, rule, fb, model.sig[down][key])


class SimPerturbationDelta(Operator):
    """Weight perturbation trials of one connection (:func:`end_perturbation_trial`), driven by its modulatory input.

    Every tick with learning on it adds the tick's cost to the running trial; on a trial's last tick it
    closes the trial and moves the weights to the next trial's ``mean +- sigma xi``, clipped to the rule's
    bounds (a perturbed damping gain never turns negative). When learning turns
    off it puts the weights back to their means (no perturbation is left in a policy that stops learning).

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[modulation, weights]``
    4. updates ``[delta, mean, xi, trial, phase, spread]``
    """

    def __init__(self, modulation: Signal, weights: Signal, delta: Signal, state: list[Signal],  # noqa: PLR0917
                 rule_type: PerturbationDelta, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.rule_type = rule_type
        self.sets, self.incs = [], []
        self.reads = [modulation, weights]
        self.updates = [delta, *state]

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        modulation, weights = (signals[s] for s in self.reads)
        delta = signals[self.updates[0]]
        state = PerturbationState(*(signals[s] for s in self.updates[1:]))
        r = self.rule_type
        sigma = np.asarray(r.sigma, dtype=float)
        low, high = np.asarray(r.low, dtype=float), np.asarray(r.high, dtype=float)
        perturbation_rng = np.random.default_rng(r.seed)
        recency = min(1.0, dt / r.cost_tau) if r.cost_tau > 0 else 0.0
        was_on, dirty = [False], [False]

        def move_to(target: np.ndarray) -> None:
            np.subtract(target, weights, out=delta)
            dirty[0] = True

        def start_trial() -> None:  # the running trial's perturbed weights, within the bounds
            move_to(np.clip(state.weights(sigma), low, high))

        def step_simperturbationdelta() -> None:
            if dirty[0]:
                delta[...] = 0.0
                dirty[0] = False
            on = modulation[2] > 0.5
            if on:
                if not was_on[0]:  # (re)start: a fresh + trial
                    state.trial[:2] = 0.0
                    state.phase[0] = 0.0
                    start_trial()
                add_trial_cost(state, float(modulation[0]), recency)
                if modulation[1] > 0.5 and end_perturbation_trial(state, sigma, r.learning_rate, low=low, high=high,
                                                                  rng=perturbation_rng, filtered=recency > 0):
                    start_trial()
            elif was_on[0]:
                move_to(state.mean)
            was_on[0] = on

        return step_simperturbationdelta


@Builder.register(PerturbationDelta)
def build_perturbation_delta(model: object, perturbation: PerturbationDelta, rule: object) -> None:
    """Build a :class:`PerturbationDelta` rule: its modulatory input ``model.sig[rule]["in"]`` and its operator.

    ``model.sig[rule]["mean"]`` holds the learned (unperturbed) weights, which is what a checkpoint saves.
    """
    modulation = Signal(shape=(3,), name="PerturbationDelta:modulation")
    model.add_op(Reset(modulation))
    model.sig[rule]["in"] = modulation
    weights = model.sig[rule.connection]["weights"]
    start = PerturbationState.start(weights.initial_value, np.random.default_rng(perturbation.seed + 1))
    state = [Signal(np.array(getattr(start, name), dtype=float), name=f"{rule}.{name}")
             for name in ("mean", "xi", "trial", "phase", "spread")]
    model.sig[rule]["mean"] = state[0]
    model.add_op(SimPerturbationDelta(modulation, weights, model.sig[rule]["delta"], state, perturbation,
                                      tag=f"{rule}.perturbation_delta"))


class InputGradient(nengo.Node):
    """A node whose output is a LIF network's output gradient w.r.t. some of its inputs: dQ/da for the actor.

    Computed every step from the network's own live weights and neuron currents, with exact transposed
    feedback and the bounded LIF derivative (the same :func:`send_back` as the learning rules).

    Parameters
    ----------
    connections: the network's weight connections, input layer first (each into the next layer).
    ensembles: its hidden ensembles, in order. columns: the input indices to differentiate against.
    """

    def __init__(self, connections: list[nengo.Connection], ensembles: list[nengo.Ensemble], columns: slice,
                 lif: LIFParams, *, label: str | None = None, enabled: object = None) -> None:
        size = len(range(*columns.indices(connections[0].size_in)))
        super().__init__(output=np.zeros(size), label=label)
        self.grad_connections, self.grad_ensembles, self.columns, self.lif = connections, ensembles, columns, lif
        self.enabled = enabled  # optional callable: skip the work (output 0) while it returns False


class SimInputGradient(Operator):
    """Sets ``out = (dy/dx)[:, columns]^T 1`` for a LIF network with scalar output ``y``.

    Notes
    -----
    1. sets ``[out]``
    2. incs ``[]``
    3. reads ``[weights..., currents...]``
    4. updates ``[]``
    """

    def __init__(self, weights: list[Signal], currents: list[Signal], out: Signal, columns: slice,  # noqa: PLR0917
                 lif: LIFParams, enabled: object = None, tag: str | None = None, step: Signal | None = None,
                 memos: list[DerivativeMemo] | None = None) -> None:
        super().__init__(tag=tag)
        self.columns, self.lif, self.n_weights, self.enabled = columns, lif, len(weights), enabled
        self.memos = memos
        self.sets, self.incs, self.updates = [out], [], []
        self.reads = [*weights, *currents] + ([step] if memos is not None else [])

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        weights = [signals[s] for s in self.reads[: self.n_weights]]
        currents = [signals[s] for s in self.reads[self.n_weights:2 * self.n_weights - 1]]
        out, cols, lif, enabled = signals[self.sets[0]], self.columns, self.lif, self.enabled
        if self.memos is not None:
            step, memos = signals[self.reads[-1]], self.memos

            def step_siminputgradient_shared() -> None:
                if enabled is not None and not enabled():
                    out[...] = 0.0
                    return
                err = np.ones((1, weights[-1].shape[0]))
                for w, j, memo in zip(weights[:0:-1], currents[::-1], memos[::-1]):
                    err = (err @ w) * memo(j, step)
                out[...] = (err @ weights[0][:, cols])[0]

            return step_siminputgradient_shared

        def step_siminputgradient() -> None:
            if enabled is not None and not enabled():
                out[...] = 0.0
                return
            err = np.ones((1, weights[-1].shape[0]))
            for w, j in zip(weights[:0:-1], currents[::-1]):
                err = send_back(err, w, j[None, :], lif)
            out[...] = (err @ weights[0][:, cols])[0]

        return step_siminputgradient


@Builder.register(InputGradient)
def build_input_gradient(model: object, node: InputGradient) -> None:
    """Build an :class:`InputGradient`: an output signal set by :class:`SimInputGradient`.

    The network's connections must be built already (put the node in a later sub-network).
    """
    for c in node.grad_connections:
        if c not in model.sig or "weights" not in model.sig[c]:
            raise BuildError(f"{node}: connection {c} is not built yet; put the node in a later sub-network")
    compile_kernels()
    out = Signal(shape=(node.size_out,), name=f"{node}.out")
    model.sig[node]["in"] = None
    model.sig[node]["out"] = out
    model.params[node] = None
    weights = [model.sig[c]["weights"] for c in node.grad_connections]
    currents = [model.sig[e.neurons]["in"] for e in node.grad_ensembles]
    memos = [derivative_memo(model, e, node.lif) for e in node.grad_ensembles]
    model.add_op(SimInputGradient(weights, currents, out, node.columns, node.lif, node.enabled,
                                  tag=f"{node}.input_gradient", step=model.step, memos=memos))


__all__ = ["InputGradient", "SimFeedbackError", "SimInputGradient", "SimLocalDelta", "SimPerturbationDelta",
           "build_feedback_delta", "build_input_gradient", "build_local_delta", "build_perturbation_delta",
           "lif_rate_derivative"]
