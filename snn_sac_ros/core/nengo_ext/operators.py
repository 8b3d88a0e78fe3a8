"""Operators of the fused LIF networks: two large operators per network instead of Nengo's per-connection ones.

A layered LIF network runs as :class:`SimLIFForward` (currents, neurons, synapses, output) and, when it learns,
:class:`SimLIFLearn` (every layer's error by the feedback mode's path and every synapse's local update, in one
sweep that reads each weight matrix once). Each declares its data flow like Nengo's own operators (``sets``,
``incs``, ``reads``, ``updates``), so Nengo orders them, and each calls the shared learning math of
:mod:`snn_sac_ros.core.learning`. The SAC head's operators are in :mod:`.sac_operators`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nengo
import numpy as np
from nengo.builder import Operator, Signal

from snn_sac_ros.core.learning import kernels
from snn_sac_ros.core.learning.lif import LIFDerivative, LIFParams, LIFSpikes, lif_rate
from snn_sac_ros.core.learning.modes import FeedbackMode
from snn_sac_ros.core.learning.rules import decay

ANCHOR_EVERY = 16
"""Learning steps between two applications of the anchor pull (each pulls 16 steps' worth): a pull over the agent's
~200k weights costs about 1 ms, so every 16th step it averages ~70 us per step."""


@dataclass
class LIFNetworkSignals:
    """The signals of one built LIF network: inputs, parameters, state, and (when it learns) errors.

    Layer ``l`` maps the activity of layer ``l - 1`` (the input for ``l = 0``) to currents ``J_l``; the last
    layer is the linear output. ``synapse[l]`` is the filter state of ``W_l a_{l-1}`` where connections from
    neurons are filtered; ``pre[l]`` the filtered pre activity a learning rule reads (None: the activity itself).
    """

    inputs: list[Signal]
    x: Signal
    weights: list[Signal]
    biases: list[Signal]
    currents: list[Signal]
    activities: list[Signal]
    output: Signal
    voltage: list[Signal | None]
    refractory: list[Signal | None]
    synapse: list[Signal | None]
    pre: list[Signal | None] = field(default_factory=list)
    errors: list[Signal] = field(default_factory=list)
    paths: list[Signal] = field(default_factory=list)
    input_feedback: Signal | None = None
    references: list[Signal] = field(default_factory=list)


def _lowpass(tau: float | None, dt: float) -> tuple[float, float] | None:
    """``(a, b)`` of Nengo's discretised ``Lowpass(tau)``: ``x <- a x + b u`` (None: no filter)."""
    if tau is None:
        return None
    a, b, c, _ = nengo.Lowpass(tau)._get_ss(dt)
    return float(a.item()), float(c.item() * b.item())


class FusedOperator(Operator):
    """An operator whose signals come in named groups; ``make_step`` finds each group again by name.

    Nengo's optimiser may replace signals in an operator's ``sets``/``incs``/``reads``/``updates`` lists (when it
    merges the operators around them), so an operator must look its signals up in those lists, never keep its own
    references: :meth:`declare` records where each group lies, :meth:`group` reads it back. A signal declared twice
    under one kind is listed once.
    """

    def __init__(self, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.sets, self.incs, self.reads, self.updates = [], [], [], []
        self._groups: dict[str, tuple[str, list[int | None]]] = {}

    def declare(self, kind: str, name: str, signals: list[Signal | None]) -> None:
        """List ``signals`` (None: an absent member, kept as None) under ``kind`` as the group ``name``."""
        listed = getattr(self, kind)
        positions = []
        for signal in signals:
            if signal is None:
                positions.append(None)
                continue
            known = next((i for i, s in enumerate(listed) if s is signal), None)
            if known is None:
                known = len(listed)
                listed.append(signal)
            positions.append(known)
        self._groups[name] = (kind, positions)

    def group(self, signals: object, name: str) -> list[np.ndarray | None]:
        """The arrays of the group ``name`` in the simulator's ``signals``."""
        kind, positions = self._groups[name]
        listed = getattr(self, kind)
        return [None if p is None else signals[listed[p]] for p in positions]

    def one(self, signals: object, name: str) -> np.ndarray | None:
        """The array of a group of one signal."""
        return self.group(signals, name)[0]


class SimLIFForward(FusedOperator):
    """One step of a layered LIF network: ``J_l = W_l a_{l-1} + b_l``, the neurons, the synapses, the output.

    Connections from neurons may be filtered (``synapse``): then layer ``l`` receives the filter's value from the
    step before, as Nengo's filtered connections deliver it, and the filter takes this step's ``W_l a_{l-1}``.
    The neurons are Nengo's ``LIF`` or ``LIFRate``, stepped by fused kernels that compute Nengo's numbers bit for
    bit (:class:`~snn_sac_ros.core.learning.lif.LIFSpikes`, :func:`~snn_sac_ros.core.learning.lif.lif_rate`).
    ``enabled`` (a signal, or None for always): a network whose values only serve learning (a critic) skips its
    step while learning is off.

    Notes
    -----
    1. sets ``[x (if several inputs), currents..., activities..., output]``
    2. incs ``[]``
    3. reads ``[inputs..., weights..., biases..., (enabled)]``
    4. updates ``[voltages..., refractory times..., synapse states...]``
    """

    def __init__(self, net: LIFNetworkSignals, lif: LIFParams, *, spiking: bool, synapse: float | None,
                 enabled: Signal | None = None, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.lif, self.spiking, self.synapse, self.several_inputs = lif, spiking, synapse, len(net.inputs) > 1
        self.declare("sets", "x", [net.x] if self.several_inputs else [None])
        for name in ("currents", "activities"):
            self.declare("sets", name, getattr(net, name))
        self.declare("sets", "output", [net.output])
        for name in ("inputs", "weights", "biases"):
            self.declare("reads", name, getattr(net, name))
        self.declare("reads", "enabled", [enabled])
        for name in ("voltage", "refractory", "synapse"):
            self.declare("updates", name, getattr(net, name))

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        parts = self.group(signals, "inputs")
        x = self.one(signals, "x") if self.several_inputs else parts[0]
        weights, biases = self.group(signals, "weights"), self.group(signals, "biases")
        currents, activities = self.group(signals, "currents"), self.group(signals, "activities")
        output = self.one(signals, "output")
        states = [{} if v is None else {"voltage": v, "refractory": r}
                  for v, r in zip(self.group(signals, "voltage"), self.group(signals, "refractory"))]
        filters = self.group(signals, "synapse")
        enabled = self.one(signals, "enabled")
        coefficients = _lowpass(self.synapse, dt)
        lif, last = self.lif, len(weights) - 1
        if self.spiking:
            steps = [LIFSpikes(c.size, lif, dt).step for c in currents]

            def neuron_step(layer: int, current: np.ndarray, activity: np.ndarray) -> None:
                steps[layer](current, activity, **states[layer])
        else:
            def neuron_step(layer: int, current: np.ndarray, activity: np.ndarray) -> None:
                activity[...] = lif_rate(current, lif)

        def drive(layer: int, out: np.ndarray) -> None:
            """``out = W_l a_{l-1} + b_l``, or the filter's value ``+ b_l`` where the connection is filtered."""
            if filters[layer] is not None:
                out[...] = filters[layer]
            else:
                np.dot(weights[layer], x if layer == 0 else activities[layer - 1], out=out)
            out += biases[layer]

        def step_simlifforward() -> None:
            if enabled is not None and not enabled[0]:
                return
            if len(parts) > 1:
                np.concatenate(parts, out=x)
            for layer, (current, activity) in enumerate(zip(currents, activities)):
                drive(layer, current)
                neuron_step(layer, current, activity)
            drive(last, output)
            if coefficients is not None:
                a, b = coefficients
                for layer in range(1, last + 1):
                    state = filters[layer]
                    if state is not None:
                        state *= a
                        state += b * np.dot(weights[layer], activities[layer - 1])

        return step_simlifforward


class SimLIFLearn(FusedOperator):
    """A LIF network's learning step: every layer's post error by the feedback mode's path, and every synapse's
    local update ``dW_l = -eta e_l a_{l-1}^T``, in one sweep from the output layer down.

    Each layer's matrix is read once for both: the error carried down through it (its values from before this
    step) and its update (:func:`~snn_sac_ros.core.learning.kernels.backward_update`). ``paths`` are what the mode
    sends errors through: the forward matrices above each hidden layer for backprop (weight transport: the only case
    in which a forward weight carries an error), else feedback matrices of the network's own, which Kolen-Pollack
    updates with their forward twin (the same pre activity and post error meet at them). A critic also forms its
    action gradient dQ/da for a unit output error; its TD error scales the same errors for its own updates. Every
    ``ANCHOR_EVERY``-th step with an error, each learning matrix is also pulled toward its reference. The rule reads
    spiking pre activities through a low-pass filter that includes this step's spikes (as Nengo's rules filter
    them), advanced every step, learning or not. Nothing else runs while learning is off.

    Notes
    -----
    1. sets ``[hidden errors..., (action gradient)]``
    2. incs ``[]``
    3. reads ``[learning, output error, x, activities..., currents..., references...]``
    4. updates ``[weights..., biases..., feedback paths..., (input feedback), pre filters...]``
    """

    def __init__(self, net: LIFNetworkSignals, mode: FeedbackMode, lif: LIFParams, *, learning: Signal,
                 learning_rate: float, pre_synapse: float | None, anchor_tau: float, weight_decay: float,
                 rate_neurons: bool, action_gradient: Signal | None = None, action_columns: slice | None = None,
                 tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.mode, self.lif, self.learning_rate, self.pre_synapse = mode, lif, learning_rate, pre_synapse
        self.anchor_tau, self.weight_decay, self.action_columns = anchor_tau, weight_decay, action_columns
        self.critic = action_gradient is not None
        self.declare("sets", "hidden_errors", net.errors[:-1])
        self.declare("sets", "action_gradient", [action_gradient])
        self.declare("reads", "learning", [learning])
        self.declare("reads", "error_out", [net.errors[-1]])
        self.declare("reads", "x", [net.x])
        self.declare("reads", "activities", net.activities)
        self.declare("reads", "currents", net.currents)
        self.declare("reads", "references", net.references)
        self.declare("updates", "weights", net.weights)
        self.declare("updates", "biases", net.biases)
        transpose = mode.hidden == "transpose"
        # backprop's paths are the weights themselves (already listed); feedback matrices are the network's own
        self.declare("updates", "paths", [] if transpose else net.paths)
        self.declare("updates", "input_feedback", [net.input_feedback])
        self.declare("updates", "pre", net.pre)
        self.rate_neurons = rate_neurons

    def _listed(self, name: str) -> list[Signal]:
        kind, positions = self._groups[name]
        return [getattr(self, kind)[p] for p in positions if p is not None]

    def error_paths(self) -> list[Signal]:
        """The signals errors are carried through: to the hidden layers (the forward weights above them for backprop,
        else feedback matrices), and for a critic's dQ/da (its forward weights, or its own feedback and C)."""
        weights = self._listed("weights")
        hidden = weights[1:] if self.mode.hidden == "transpose" else self._listed("paths")
        if not self.critic:
            return hidden
        action = weights if self.mode.action == "transpose" else [*self._listed("paths"),
                                                                   *self._listed("input_feedback")]
        return [*hidden, *action]

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        mode, lif, hidden = self.mode, self.lif, self.mode.hidden
        learning, error_out, x = (self.one(signals, n) for n in ("learning", "error_out", "x"))
        activities, currents = self.group(signals, "activities"), self.group(signals, "currents")
        hidden_out, gradient = self.group(signals, "hidden_errors"), self.one(signals, "action_gradient")
        matrices, biases = self.group(signals, "weights"), self.group(signals, "biases")
        feedback, input_feedback = self.group(signals, "paths"), self.one(signals, "input_feedback")
        pre_filters = self.group(signals, "pre")
        n_layers, critic, columns = len(matrices), self.critic, self.action_columns
        paths = matrices[1:] if hidden == "transpose" else feedback
        learned = mode.learns_feedback
        references = self.group(signals, "references")
        anchored = self.anchor_tau > 0
        if anchored:  # in the builder's order: weights, biases, learned feedback (paths, then C)
            weight_refs, bias_refs = references[:n_layers], references[n_layers:2 * n_layers]
            path_refs = references[2 * n_layers:2 * n_layers + len(feedback)] if learned else paths
            input_ref = references[-1] if learned and input_feedback is not None else None
        neg_pull = -ANCHOR_EVERY * dt / self.anchor_tau if anchored else 0.0
        learning_steps = [0] * n_layers  # steps with an error, per layer (its feedback twin counts with it)
        neg_lr, no_bias = -self.learning_rate, np.zeros(0)
        coefficients = _lowpass(self.pre_synapse, dt)
        rates = activities if self.rate_neurons else [None] * len(activities)
        derivative_of = [LIFDerivative(j.size, lif) for j in currents]
        derivative = [np.empty(j.size) for j in currents]
        back = [np.zeros(m.shape[1]) for m in matrices]
        unit = np.ones(error_out.size)
        chained = hidden in ("transpose", "random", "learned")  # errors go down layer by layer
        # a critic's TD error is a scalar: its errors are that scalar times the unit error's, which then also gives
        # dQ/da in the same sweep, where dQ/da takes the hidden errors' path
        shared = critic and error_out.size == 1 and chained and (mode.action == "transpose") == (hidden == "transpose")
        separate_gradient = critic and not shared

        def pre_activity(layer: int) -> np.ndarray:
            if layer == 0:
                return x
            return activities[layer - 1] if pre_filters[layer] is None else pre_filters[layer]

        def anchor_now(layer: int) -> bool:
            learning_steps[layer] += 1
            return anchored and learning_steps[layer] % ANCHOR_EVERY == 0

        def update(layer: int, error: np.ndarray) -> None:
            """Layer ``layer``'s weights and bias, without carrying an error down."""
            if not error.any():
                return
            if anchor_now(layer):
                kernels.rank1_update_anchored(matrices[layer], biases[layer], error, pre_activity(layer), neg_lr,
                                              weight_refs[layer], bias_refs[layer], neg_pull)
            else:
                kernels.rank1_update(matrices[layer], biases[layer], error, pre_activity(layer), neg_lr)

        def sweep(layer: int, update_error: np.ndarray, back_error: np.ndarray) -> np.ndarray:
            """Update layer ``layer`` (and its mirrored feedback), carrying ``back_error`` down through its path."""
            path, mirror = paths[layer - 1], learned
            if update_error.any() and anchor_now(layer):
                kernels.backward_update_anchored(matrices[layer], biases[layer], update_error, pre_activity(layer),
                                                 neg_lr, path, back_error, back[layer], mirror, weight_refs[layer],
                                                 bias_refs[layer], path_refs[layer - 1], neg_pull)
            else:
                kernels.backward_update(matrices[layer], biases[layer], update_error, pre_activity(layer), neg_lr,
                                        path, back_error, back[layer], mirror)
            return back[layer]

        def mirror_input(error: np.ndarray) -> None:
            """Kolen-Pollack's input feedback takes the update of the action columns it mirrors (with their anchor)."""
            if input_feedback is None or not learned or not error.any():
                return
            pre = x[columns]
            if anchored and learning_steps[0] % ANCHOR_EVERY == 0:
                kernels.rank1_update_anchored(input_feedback, no_bias, error, pre, neg_lr, input_ref, no_bias,
                                              neg_pull)
            else:
                kernels.rank1_update(input_feedback, no_bias, error, pre, neg_lr)

        def input_gradient() -> np.ndarray:
            """d (sum of outputs) / d input at the action columns, through the action path, weights unchanged."""
            if mode.action == "transpose":
                error = unit
                for w, d in zip(matrices[:0:-1], derivative[::-1]):
                    error = (error @ w) * d
                return error @ matrices[0][:, columns]
            if hidden == "direct":
                return ((unit @ feedback[0]) * derivative[0]) @ input_feedback
            error = unit
            for path, d in zip(feedback[::-1], derivative[::-1]):
                error = (error @ path) * d
            return error @ input_feedback

        def step_simliflearn() -> None:
            if coefficients is not None:  # the rule's filtered pre activities, this step's activity included
                a, b = coefficients
                for layer, pre_filter in enumerate(pre_filters):
                    if pre_filter is not None:
                        np.multiply(pre_filter, a, out=pre_filter)
                        np.add(pre_filter, b * activities[layer - 1], out=pre_filter)
            if not learning[0]:
                return
            for layer, (j, r) in enumerate(zip(currents, rates)):
                derivative_of[layer](j, derivative[layer], r)
            if separate_gradient:
                gradient[...] = input_gradient()
            top = n_layers - 1
            if hidden == "direct":
                for layer, (d_path, d) in enumerate(zip(feedback, derivative)):
                    hidden_out[layer][...] = (error_out @ d_path) * d
                update(top, error_out)
                for layer in range(top - 1, -1, -1):
                    update(layer, hidden_out[layer])
                return
            if hidden == "frozen":
                update(top, error_out)
                return
            carried = unit if shared else error_out
            scale = error_out[0] if shared else 1.0
            for layer in range(top, 0, -1):
                carried = sweep(layer, carried * scale if shared else carried, carried) * derivative[layer - 1]
                hidden_out[layer - 1][...] = carried * scale if shared else carried
            if shared:
                gradient[...] = carried @ (matrices[0][:, columns] if mode.action == "transpose" else input_feedback)
            first = hidden_out[0]
            update(0, first)
            mirror_input(first)
            if self.weight_decay > 0 and learned:
                for layer, path in enumerate(feedback):
                    decay(matrices[layer + 1], self.weight_decay)
                    decay(path, self.weight_decay)
                if input_feedback is not None:
                    matrices[0][:, columns] *= 1.0 - self.weight_decay
                    decay(input_feedback, self.weight_decay)

        return step_simliflearn
