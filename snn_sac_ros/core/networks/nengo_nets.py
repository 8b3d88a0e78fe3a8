"""Nengo networks for the actor and the critics: LIF ensembles, weighted connections, local learning rules.

A :class:`LIFNetwork` is ``input node -> LIF ensemble -> LIF ensemble -> output node``, the weights of a
:class:`~snn_sac_ros.core.networks.rate.LIFRateNet` on its connections (hidden biases on connections from
a constant-1 node, so the ensembles have gain 1 and bias 0 and every parameter is a learnable synapse).
With ``nengo.LIFRate`` neurons and no synapses its output equals the NumPy rate network's; with
``nengo.LIF`` neurons it is the spiking deployment of the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import nengo
import numpy as np

import snn_sac_ros.core.nengo_ext.builder  # noqa: F401  (registers the rule builders)
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.nengo_ext.learning_rules import FeedbackDelta, LearnedConnection, LocalDelta


@dataclass(frozen=True)
class LearningSpec:
    """How a network's connections learn online: step size, feedback mode, pre-activity filter [s], anchor.

    ``anchor_tau`` [s] > 0 pulls every weight back toward its reference (``reference``: per layer, the
    ``(weights, biases)`` to hold to; None: the weights the network is built with) while it learns.
    """

    learning_rate: float = 1e-4
    feedback: str = "exact"
    pre_synapse: float | None = None
    seed: int = 0
    adaptive: bool = False
    anchor_tau: float = 0.0
    reference: tuple[list[np.ndarray], list[np.ndarray]] | None = None


def neuron_type(lif: LIFParams, spiking: bool) -> nengo.neurons.NeuronType:
    cls = nengo.LIF if spiking else nengo.LIFRate
    return cls(tau_rc=lif.tau_rc, tau_ref=lif.tau_ref, amplitude=lif.amplitude)


class LIFNetwork(nengo.Network):
    """Feed-forward LIF network with given weights, optionally learning by local rules.

    Parameters
    ----------
    weights, biases: per layer, ``W[l]`` of shape (post, pre) and ``b[l]`` of shape (post,).
    lif: neuron constants. spiking: ``nengo.LIF`` (True) or ``nengo.LIFRate`` (False).
    synapse: time constant [s] of the connections leaving neurons (None: unfiltered).
    learning: a :class:`LearningSpec` to put ``FeedbackDelta``/``LocalDelta`` rules on every connection.

    Attributes
    ----------
    input, output: pass-through nodes. hidden: the hidden LIF ensembles.
    weight_connections, bias_connections: per layer, input layer first.
    output_rules: the output layer's learning rules (connect the output error to each).
    """

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], lif: LIFParams, *, spiking: bool,
                 synapse: float | None = None, learning: LearningSpec | None = None, label: str | None = None,
                 seed: int | None = None) -> None:
        super().__init__(label=label, seed=seed)
        n_layers = len(weights)
        with self:
            self.input = nengo.Node(size_in=weights[0].shape[1], label="input")
            self.output = nengo.Node(size_in=weights[-1].shape[0], label="output")
            self.one = nengo.Node([1.0], label="one")
            self.hidden = [
                nengo.Ensemble(w.shape[0], 1, neuron_type=neuron_type(lif, spiking), gain=np.ones(w.shape[0]),
                               bias=np.zeros(w.shape[0]), label=f"hidden{i}")
                for i, w in enumerate(weights[:-1])
            ]
            pres = [self.input] + [e.neurons for e in self.hidden]
            posts = [e.neurons for e in self.hidden] + [self.output]
            self.weight_connections: list[nengo.Connection] = [None] * n_layers  # type: ignore[list-item]
            self.bias_connections: list[nengo.Connection] = [None] * n_layers  # type: ignore[list-item]
            downstream = None
            # output layer first: a hidden layer's FeedbackDelta reads the error of the rule it feeds
            for i in range(n_layers - 1, -1, -1):
                rule_w = rule_b = None
                if learning is not None:
                    pre_syn = learning.pre_synapse if i > 0 else None
                    ref_w, ref_b = (None, None) if learning.reference is None else (
                        learning.reference[0][i], learning.reference[1][i])
                    common = {"adaptive": learning.adaptive, "anchor_tau": learning.anchor_tau}
                    if i == n_layers - 1:
                        rule_w = LocalDelta(learning.learning_rate, pre_synapse=pre_syn, reference=ref_w, **common)
                        rule_b = LocalDelta(learning.learning_rate, reference=ref_b, **common)
                    else:
                        kw = {"feedback": learning.feedback, "lif": lif, "seed": learning.seed + 1000 + i + 1,
                              **common}
                        rule_w = FeedbackDelta(downstream, learning.learning_rate, pre_synapse=pre_syn,
                                               reference=ref_w, **kw)
                        rule_b = FeedbackDelta(downstream, learning.learning_rate, reference=ref_b, **kw)
                self.weight_connections[i] = LearnedConnection(
                    pres[i], posts[i], transform=np.array(weights[i], float), synapse=synapse if i > 0 else None,
                    learning_rule_type=rule_w)
                self.bias_connections[i] = LearnedConnection(
                    self.one, posts[i], transform=np.array(biases[i], float)[:, None], synapse=None,
                    learning_rule_type=rule_b)
                if learning is not None:
                    downstream = self.weight_connections[i].learning_rule
            self.output_rules = ([self.weight_connections[-1].learning_rule, self.bias_connections[-1].learning_rule]
                                 if learning is not None else [])

    def read_weights(self, sim: nengo.Simulator) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Weights and biases as the next simulator step will use them (including a pending learning delta)."""

        def current(conn: nengo.Connection) -> np.ndarray:
            w = np.array(sim.signals[sim.model.sig[conn]["weights"]], np.float64)
            if conn.learning_rule is not None:
                w += sim.signals[sim.model.sig[conn.learning_rule]["delta"]]
            return w.astype(np.float32)

        return [current(c) for c in self.weight_connections], [current(c)[:, 0] for c in self.bias_connections]
