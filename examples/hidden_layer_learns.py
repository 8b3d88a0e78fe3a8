"""A Nengo network whose every connection learns online, hidden layer included, with no weight transport.

Two hidden layers of spiking LIF neurons learn y = sin(pi x0) x1 from an error the network itself computes.
The hidden layers get their errors by Kolen-Pollack feedback: feedback matrices that learn by the same local
rule as the forward ones, so no synapse ever reads another's weight. Runs in a few seconds:

    python examples/hidden_layer_learns.py
"""

from itertools import pairwise

import nengo
import numpy as np

from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.learning.rules import random_feedback
from snn_sac_ros.core.nengo_ext.learning_rules import LocalLearning
from snn_sac_ros.core.nengo_ext.networks import Layers, LIFNetwork

rng = np.random.default_rng(0)
sizes = (2, 100, 100, 1)
weights = tuple(rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3 / n_in) for n_in, n_out in pairwise(sizes))
biases = (np.full(100, 1.2), np.full(100, 1.0), np.zeros(1))
feedback = tuple(random_feedback(w.shape, seed=i) for i, w in enumerate(weights[1:]))  # one per hidden layer

with nengo.Network(seed=0) as model:
    x = nengo.Node(nengo.processes.WhiteSignal(60, high=0.5, rms=0.5, seed=1), size_out=2)
    net = LIFNetwork(Layers(weights, biases, feedback), LIFParams(), spiking=True, synapse=0.005,
                     learning=LocalLearning(learning_rate=2e-4, feedback="kp", pre_synapse=0.005))
    nengo.Connection(x, net.input, synapse=None)
    target = nengo.Node(size_in=1)
    nengo.Connection(x, target, function=lambda v: np.sin(np.pi * v[0]) * v[1], synapse=0.01)
    error = nengo.Node(size_in=1)  # output minus target: the error every connection learns from
    nengo.Connection(net.output, error, synapse=0.01)
    nengo.Connection(target, error, transform=-1, synapse=None)
    nengo.Connection(error, net.error, synapse=None)
    probe = nengo.Probe(error, synapse=0.1)

with nengo.Simulator(model, progress_bar=False) as sim:
    sim.run(20.0)
    learned = net.read_layers(sim)

squared = sim.data[probe][:, 0] ** 2
first, last = np.sqrt(squared[:2000].mean()), np.sqrt(squared[-2000:].mean())
print(f"rms error, first 2 s: {first:.3f}; last 2 s: {last:.3f}")
for i, (w, w0) in enumerate(zip(learned.weights, weights)):
    print(f"layer {i}: weights moved by {np.abs(w - w0).mean():.2e} on average")
