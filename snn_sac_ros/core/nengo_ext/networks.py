"""Nengo objects (the frontend): a layered LIF network that learns by local rules, and the spiking SAC model.

Their builders (:mod:`snn_sac_ros.core.nengo_ext.builder`) turn each into a few fused operators
(:mod:`snn_sac_ros.core.nengo_ext.operators`) instead of Nengo's per-connection ones: a network of ``L`` layers
runs as three operators, not ~30.
"""

from __future__ import annotations

from dataclasses import dataclass

import nengo
import numpy as np

from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.nengo_ext.learning_rules import LocalLearning, PerturbationDelta


@dataclass(frozen=True)
class Layers:
    """A layered network's parameters: ``W[l]`` (post, pre), ``b[l]`` (post,), and the feedback its mode uses.

    ``feedback[l]`` carries errors to hidden layer ``l`` (random and learned paths: the shape of ``W[l + 1]``;
    direct paths: ``(n_out, n_l)``); ``input_feedback`` is a critic's ``C`` for its action gradient.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    feedback: tuple[np.ndarray, ...] = ()
    input_feedback: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> Layers:
        """The layers saved under ``prefix`` (``actor/W0`` ...): feedback ``B{l}`` or ``D{l}``, and ``C``."""
        n = sum(1 for k in arrays if k.startswith(f"{prefix}/W"))
        feedback = [arrays[f"{prefix}/{kind}{i}"] for kind in ("B", "D") for i in range(n - 1)
                    if f"{prefix}/{kind}{i}" in arrays]
        return cls(tuple(arrays[f"{prefix}/W{i}"] for i in range(n)), tuple(arrays[f"{prefix}/b{i}"] for i in range(n)),
                   tuple(feedback), arrays.get(f"{prefix}/C"))

    def arrays(self, prefix: str, feedback_kind: str = "B") -> dict[str, np.ndarray]:
        """Named arrays for a checkpoint (the inverse of :meth:`from_arrays`)."""
        out = {f"{prefix}/W{i}": w for i, w in enumerate(self.weights)}
        out.update({f"{prefix}/b{i}": b for i, b in enumerate(self.biases)})
        out.update({f"{prefix}/{feedback_kind}{i}": m for i, m in enumerate(self.feedback)})
        if self.input_feedback is not None:
            out[f"{prefix}/C"] = self.input_feedback
        return out


def neuron_type(lif: LIFParams, spiking: bool) -> nengo.neurons.NeuronType:
    cls = nengo.LIF if spiking else nengo.LIFRate
    return cls(tau_rc=lif.tau_rc, tau_ref=lif.tau_ref, amplitude=lif.amplitude)


class LIFNetwork(nengo.Network):
    """``input -> LIF -> ... -> LIF -> linear output`` with the given weights, learning by local rules if asked.

    Spiking (``nengo.LIF``) or rate (``nengo.LIFRate``) neurons with gain 1 and bias 0 (biases are learned like
    weights); connections from neurons filtered by ``Lowpass(synapse)`` when ``synapse`` is set. With ``learning``,
    connect the output error to :attr:`error`: every connection, hidden ones included, then learns by its local
    rule, the hidden errors arriving by the feedback mode's path.

    Parameters
    ----------
    layers: weights, biases and feedback matrices. lif: neuron constants. spiking: LIF or LIF rate neurons.
    synapse: time constant [s] of the connections leaving neurons (None: unfiltered).
    learning: how the connections learn (None: they do not).
    reference: the weights the anchor pulls toward (default: ``layers``).
    action_columns: for a critic, the inputs whose gradient it forms (its action) for the actor.
    io_nodes: make ``input``, ``output`` and ``error`` nodes (a model that wires signals itself, as the SAC model
        does, needs none).
    """

    def __init__(self, layers: Layers, lif: LIFParams, *, spiking: bool, synapse: float | None = None,
                 learning: LocalLearning | None = None, reference: Layers | None = None,
                 action_columns: tuple[int, int] | None = None, label: str | None = None, seed: int | None = None,
                 io_nodes: bool = True) -> None:
        super().__init__(label=label, seed=seed)
        self.layers, self.lif, self.spiking, self.synapse = layers, lif, spiking, synapse
        self.learning, self.reference, self.action_columns = learning, reference or layers, action_columns
        self.sizes = (layers.weights[0].shape[1], *(w.shape[0] for w in layers.weights))
        self.input = self.output = self.error = None
        if io_nodes:
            with self:
                self.input = nengo.Node(size_in=self.sizes[0], label="input")
                self.output = nengo.Node(size_in=self.sizes[-1], label="output")
                if learning is not None:
                    self.error = nengo.Node(size_in=self.sizes[-1], label="error")

    @property
    def neuron_type(self) -> nengo.neurons.NeuronType:
        return neuron_type(self.lif, self.spiking)

    def read_layers(self, sim: nengo.Simulator) -> Layers:
        """The network's parameters as they are now in ``sim`` (float32, as checkpoints hold them)."""
        sig = sim.model.sig[self]

        def now(name: str) -> np.ndarray:
            return np.array(sim.signals[sig[name]], np.float32)

        n = len(self.layers.weights)
        learned = self.learning is not None and self.learning.mode.learns_feedback
        feedback = tuple(now(f"feedback{i}") for i in range(n - 1)) if learned else self.layers.feedback
        input_feedback = now("C") if learned and "C" in sig else self.layers.input_feedback
        return Layers(tuple(now(f"W{i}") for i in range(n)), tuple(now(f"b{i}") for i in range(n)), feedback,
                      input_feedback)


@dataclass(frozen=True)
class HeadConfig:
    """The SAC head's constants: the temperature, the per-step discount and reward share, exploration."""

    alpha: float
    gamma_step: float
    step_fraction: float
    hold: int
    explore: bool


class SpikingSACNetwork(nengo.Network):
    """The deployed spiking SAC: an actor, twin critics and the head that computes the action, the TD errors and
    the actor's error inside the network, plus the joint damping learned by weight perturbation.

    Build the actor and the critics (``io_nodes=False``) inside this network's context. The built model exposes
    its inputs and outputs as signals in ``sim.model.sig[net]``: ``observation``, ``learning``, ``reward``,
    ``has_reward``, ``modulation`` (of the damping rule), ``action``, ``eps``, ``episode_steps``,
    ``has_previous_q``, ``td_updates``, ``damping_weights`` and ``damping_mean`` (with a damping rule).
    """

    def __init__(self, *, obs_dim: int, act_dim: int, head: HeadConfig, damping_weights: np.ndarray,
                 velocity_columns: list[int], damping_rule: PerturbationDelta | None, rng: np.random.Generator,
                 label: str | None = None, seed: int | None = None) -> None:
        super().__init__(label=label, seed=seed)
        self.obs_dim, self.act_dim, self.head = obs_dim, act_dim, head
        self.damping_weights, self.velocity_columns = np.asarray(damping_weights, float), list(velocity_columns)
        self.damping_rule, self.rng = damping_rule, rng
        self.actor: LIFNetwork | None = None
        self.critics: list[LIFNetwork] = []
