"""Builders: the fused LIF networks and the spiking SAC model into signals and operators; weight perturbation.

Importing this module registers the builders with ``nengo.builder.Builder``.
"""

from __future__ import annotations

import numpy as np
from nengo.builder import Builder, Signal
from nengo.builder.operator import Copy, Reset

from snn_sac_ros.core.learning.perturbation import PerturbationState
from snn_sac_ros.core.learning.rules import compile_kernels
from snn_sac_ros.core.nengo_ext.learning_rules import PerturbationDelta
from snn_sac_ros.core.nengo_ext.networks import LIFNetwork, SpikingSACNetwork
from snn_sac_ros.core.nengo_ext.operators import LIFNetworkSignals, SimLIFForward, SimLIFLearn
from snn_sac_ros.core.nengo_ext.sac_operators import (
    HeadSignals,
    SimActorError,
    SimPerturbationDelta,
    SimPolicyHead,
    SimTDError,
)


def _signal(value: np.ndarray, name: str, readonly: bool = False) -> Signal:
    return Signal(np.array(value, dtype=np.float64), name=name, readonly=readonly)


def build_lif_ops(model: object, net: LIFNetwork, inputs: list[Signal], *, learning: Signal | None = None,
                  error_out: Signal | None = None, enabled: Signal | None = None,
                  action_gradient: Signal | None = None) -> LIFNetworkSignals:
    """Add a :class:`LIFNetwork`'s signals and operators to ``model``, reading its input from ``inputs``.

    1. Parameters: ``W_l``, ``b_l`` (float64 signals) and the feedback matrices its mode uses.
    2. State: currents, activities, the spiking neurons' voltages (uniform in [0, 1), from the network's seed, or the
       one Nengo gave it) and
       refractory times, the filter states of connections from neurons.
    3. :class:`SimLIFForward`; with learning, the post errors (``error_out`` is the output error, e.g. a TD error)
       and :class:`SimLIFLearn` (which also forms a critic's ``action_gradient``).

    The signals are named in ``model.sig[net]`` (see :func:`_expose`).
    """
    compile_kernels()  # at build time, so the first simulator step (a control tick) does not compile
    label, layers, sizes = net.label or "lif", net.layers, net.sizes
    n_hidden = len(sizes) - 2
    spiking = net.spiking
    filtered = net.synapse is not None
    rng = np.random.default_rng(net.seed if net.seed is not None else model.seeds.get(net))
    x = inputs[0] if len(inputs) == 1 else Signal(shape=(sizes[0],), name=f"{label}.x")
    signals = LIFNetworkSignals(
        inputs=list(inputs), x=x,
        weights=[_signal(w, f"{label}.W{i}") for i, w in enumerate(layers.weights)],
        biases=[_signal(b, f"{label}.b{i}") for i, b in enumerate(layers.biases)],
        currents=[Signal(shape=(n,), name=f"{label}.J{i}") for i, n in enumerate(sizes[1:-1])],
        activities=[Signal(shape=(n,), name=f"{label}.a{i}") for i, n in enumerate(sizes[1:-1])],
        output=Signal(shape=(sizes[-1],), name=f"{label}.output"),
        voltage=[_signal(rng.uniform(0.0, 1.0, n), f"{label}.voltage{i}") if spiking else None
                 for i, n in enumerate(sizes[1:-1])],
        refractory=[_signal(np.zeros(n), f"{label}.refractory{i}") if spiking else None
                    for i, n in enumerate(sizes[1:-1])],
        synapse=[None] + [Signal(shape=(n,), name=f"{label}.synapse{i}") if filtered else None
                          for i, n in enumerate(sizes[2:], start=1)])
    model.add_op(SimLIFForward(signals, net.lif, spiking=spiking, synapse=net.synapse, enabled=enabled,
                               tag=f"{label}.forward"))
    _expose(model, net, signals)
    rule = net.learning
    if rule is None:
        return signals
    mode = rule.mode
    pre_synapse = rule.pre_synapse if spiking else None
    signals.pre = [None] + [Signal(shape=(n,), name=f"{label}.pre{i}") if pre_synapse else None
                            for i, n in enumerate(sizes[1:-1], start=1)]
    signals.errors = [Signal(shape=(n,), name=f"{label}.e{i}") for i, n in enumerate(sizes[1:-1])] + [error_out]
    if mode.hidden == "transpose":
        signals.paths = signals.weights[1:]
    elif mode.hidden != "frozen":
        signals.paths = [_signal(m, f"{label}.{'D' if mode.hidden == 'direct' else 'B'}{i}")
                         for i, m in enumerate(layers.feedback)]
        if len(signals.paths) != n_hidden:
            raise ValueError(f"{label}: {mode.name} feedback needs {n_hidden} feedback matrices, got "
                             f"{len(signals.paths)}")
    columns = net.action_columns
    if action_gradient is not None and mode.action != "transpose":
        if layers.input_feedback is None:
            raise ValueError(f"{label}: {mode.name} feedback needs an input feedback matrix C")
        signals.input_feedback = _signal(layers.input_feedback, f"{label}.C")
    reference = net.reference
    if rule.anchor_tau > 0:
        targets = [*reference.weights, *reference.biases]
        if mode.learns_feedback:
            targets += [*reference.feedback]
            if signals.input_feedback is not None:
                targets.append(reference.input_feedback)
        signals.references = [_signal(r, f"{label}.reference{k}", readonly=True) for k, r in enumerate(targets)]
    model.add_op(SimLIFLearn(signals, mode, net.lif, learning=learning, learning_rate=rule.learning_rate,
                             pre_synapse=pre_synapse, anchor_tau=rule.anchor_tau, weight_decay=rule.weight_decay,
                             rate_neurons=not spiking, action_gradient=action_gradient,
                             action_columns=None if columns is None else slice(*columns), tag=f"{label}.learn"))
    _expose(model, net, signals)
    return signals


def _expose(model: object, net: LIFNetwork, signals: LIFNetworkSignals) -> None:
    """Name the network's signals in ``model.sig[net]`` (``W0``, ``b0``, ``feedback0``, ``C``, ``a0``, ``voltage0``,
    ``output`` ...), where Nengo's optimiser keeps them up to date and users and probes find them."""
    named = {"output": signals.output, "C": signals.input_feedback}
    for name, group in (("W", signals.weights), ("b", signals.biases), ("a", signals.activities),
                        ("J", signals.currents), ("voltage", signals.voltage), ("feedback", signals.paths)):
        named.update({f"{name}{i}": s for i, s in enumerate(group)})
    model.sig[net].update({k: v for k, v in named.items() if v is not None})


@Builder.register(LIFNetwork)
def build_lif_network(model: object, net: LIFNetwork, progress: object = None) -> None:
    """Build a standalone :class:`LIFNetwork`: its ``input``, ``output`` (and ``error``) nodes, and its operators.

    A learning network with ``action_columns`` also forms its input gradient there:
    ``model.sig[net]["input_gradient"]``.
    """
    for node in (net.input, net.output, net.error):
        if node is not None:
            model.build(node)
    learning = gradient = None
    if net.learning is not None:
        learning = _signal(np.ones(1), f"{net.label}.learning", readonly=True)
        if net.action_columns is not None:  # d output / d input at those columns, for a unit output error
            gradient = model.sig[net]["input_gradient"] = Signal(np.zeros(np.ptp(net.action_columns)),
                                                                 name=f"{net.label}.input_gradient")
    signals = build_lif_ops(model, net, [model.sig[net.input]["out"]], learning=learning,
                            error_out=model.sig[net.error]["out"] if net.error is not None else None,
                            action_gradient=gradient)
    model.add_op(Copy(signals.output, model.sig[net.output]["in"], inc=True, tag=f"{net.label}.output"))


def _scalar(name: str, value: float = 0.0) -> Signal:
    return _signal(np.full(1, value), name)


@Builder.register(SpikingSACNetwork)
def build_spiking_sac(model: object, net: SpikingSACNetwork, progress: object = None) -> None:
    """Build the spiking SAC model: actor, policy head, critics, TD error, action gradients, actor error, updates.

    1. Inputs the agent writes before each step: observation, learning, reward, has_reward, the damping rule's
       modulation.
    2. The actor's forward pass, then :class:`SimPolicyHead` (the action, with the learned damping).
    3. With critics: their forward passes on ``[observation, action]`` (skipped while learning is off),
       :class:`SimTDError`, each critic's backward pass (TD errors of its hidden layers, and dQ/da),
       :class:`SimActorError`, the actor's backward pass, and every network's update.
    4. The damping weights' :class:`SimPerturbationDelta` (if the model learns them).
    """
    head = net.head
    na = net.act_dim
    observation = Signal(np.zeros(net.obs_dim), name="observation")
    learning = _scalar("learning")
    io = HeadSignals(
        observation=observation, learning=learning, reward=_scalar("reward"), has_reward=_scalar("has_reward"),
        actor_output=Signal(shape=(2 * na,), name="actor.output"), damping_weights=_signal(net.damping_weights,
                                                                                             "damping.weights"),
        action=Signal(shape=(na,), name="action"), eps=Signal(np.zeros(na), name="eps"),
        logp=Signal(shape=(1,), name="logp"), episode_steps=_scalar("episode_steps"))
    critics = net.critics
    learns = bool(critics) and net.actor.learning is not None
    if learns:
        io.td = Signal(np.zeros(len(critics)), name="td")
        io.previous_q, io.has_previous_q = Signal(np.zeros(len(critics)), name="previous_q"), _scalar("has_previous_q")
        io.td_updates = _scalar("td_updates")
        io.action_gradients = [Signal(np.zeros(na), name=f"dq{k + 1}_da") for k in range(len(critics))]
        io.actor_error = Signal(np.zeros(2 * na), name="actor.error")
    actor = build_lif_ops(model, net.actor, [observation], learning=learning if learns else None,
                          error_out=io.actor_error)
    io.actor_output = actor.output
    model.add_op(SimPolicyHead(io, net.velocity_columns, explore=head.explore, hold=head.hold, rng=net.rng,
                               tag="policy_head"))
    for k, critic in enumerate(critics):
        io.q.append(build_lif_ops(model, critic, [observation, io.action], learning=learning,
                                  error_out=io.td[k:k + 1], enabled=learning,
                                  action_gradient=io.action_gradients[k]).output)
    if learns:
        model.add_op(SimTDError(io, alpha=head.alpha, gamma_step=head.gamma_step, step_fraction=head.step_fraction,
                                tag="td_error"))
        model.add_op(SimActorError(io, alpha=head.alpha, explore=head.explore, tag="actor_error"))
    exposed = {name: getattr(io, name) for name in ("observation", "learning", "reward", "has_reward", "action", "eps",
                                                    "episode_steps", "has_previous_q", "td_updates", "damping_weights")}
    if net.damping_rule is not None:
        modulation = Signal(np.zeros(3), name="damping.modulation")
        exposed["modulation"] = modulation
        exposed["damping_mean"] = add_perturbation_ops(model, net.damping_rule, modulation, io.damping_weights,
                                                       tag="damping")
    model.sig[net].update({name: signal for name, signal in exposed.items() if signal is not None})
    model.params[net] = None


def add_perturbation_ops(model: object, rule_type: PerturbationDelta, modulation: Signal, weights: Signal,
                         tag: str) -> Signal:
    """A :class:`PerturbationDelta` on ``weights``, driven by ``modulation``, outside any connection: its change
    signal and its copy into the weights, then :func:`_add_perturbation`. Returns the learned weights' signal."""
    delta = Signal(np.zeros(weights.shape), name=f"{tag}.delta")
    model.add_op(Copy(delta, weights, inc=True, tag=f"{tag}: weights += delta"))
    return _add_perturbation(model, rule_type, modulation, weights, delta=delta, tag=tag)


def _add_perturbation(model: object, rule_type: PerturbationDelta, modulation: Signal, weights: Signal, *,
                      delta: Signal, tag: str) -> Signal:
    """The rule's per-synapse state and :class:`SimPerturbationDelta`; returns the signal of the learned
    (unperturbed) weights, which is what a checkpoint saves."""
    start = PerturbationState.start(weights.initial_value, np.random.default_rng(rule_type.seed + 1))
    state = [Signal(np.array(getattr(start, name), dtype=float), name=f"{tag}.{name}")
             for name in ("mean", "xi", "trial", "phase", "spread")]
    model.add_op(SimPerturbationDelta(modulation, weights, delta, state, rule_type, tag=f"{tag}.perturbation_delta"))
    return state[0]


@Builder.register(PerturbationDelta)
def build_perturbation_delta(model: object, perturbation: PerturbationDelta, rule: object) -> None:
    """Build a :class:`PerturbationDelta` rule on a connection: its modulatory input ``model.sig[rule]["in"]``.

    Nengo's learning-rule builder has already added ``weights += delta``; ``model.sig[rule]["mean"]`` holds the
    learned (unperturbed) weights.
    """
    modulation = Signal(shape=(3,), name="PerturbationDelta:modulation")
    model.add_op(Reset(modulation))
    model.sig[rule]["in"] = modulation
    model.sig[rule]["mean"] = _add_perturbation(model, perturbation, modulation, model.sig[rule.connection]["weights"],
                                                delta=model.sig[rule]["delta"], tag=str(rule))


__all__ = ["add_perturbation_ops", "build_lif_network", "build_lif_ops", "build_perturbation_delta",
           "build_spiking_sac"]
