"""What a control tick costs: events of the spiking networks, the same networks' dense multiply-accumulates, and
energy estimates on a Loihi-class chip and on a CPU from published per-event energies.

Counted per simulator step from :meth:`OnlineAgent.activity` (the last step's hidden activities) and the layer
widths (``sizes``: input first), per network:

* ``spikes``: hidden spikes emitted. A spiking layer's activity is ``amplitude / dt`` where a neuron spiked, so
  ``sum(a) * dt / amplitude`` counts them; for a rate layer (the critics) it is the spike count the same rates
  would give, what the layer would emit as spiking neurons on a chip.
* ``synaptic_events``: spikes times fan-out (each hidden spike reaches every neuron of the next layer).
* ``input_events``: the observation drives the first layer every step as graded input (``n_in * n_hidden``
  synaptic operations, dense: this part is not event-driven).
* ``neuron_updates``: every hidden neuron, every step. ``dense_macs``: the multiply-accumulates of the same
  layers as a dense ANN (``sum n_l * n_{l+1}``). ``learning_updates``: synapses changed per step while learning is
  on (every weight of a learning network: our rules update them all each step).

Energies are estimates, not measurements: event counts times published per-event figures, no idle or host power,
a chip's figures applied to a network that was never mapped onto it. The critics compute only while learning is
on (with it off they stand still), so they cost nothing then.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Loihi (Intel, 14 nm), measured: Davies et al. 2018, "Loihi: A Neuromorphic Manycore Processor with On-Chip
# Learning", IEEE Micro 38(1):82-99, Table 2.
LOIHI_SYNAPTIC_OP_PJ = 23.6
"""energy per synaptic spike operation (the table's minimum) [pJ]"""
LOIHI_SYNAPTIC_UPDATE_PJ = 120.0
"""energy per synaptic update (pairwise STDP, the table's learning figure) [pJ]"""
LOIHI_NEURON_UPDATE_PJ = 81.0
"""energy per active neuron update (52 pJ inactive; every hidden neuron here gets input every step) [pJ]"""
LOIHI_SPIKE_PJ = 1.7
"""energy per spike sent within a tile [pJ]"""
# CPU: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V.
CPU_MAC_PJ = 3.7 + 0.9
"""a 32-bit float multiply (3.7 pJ) plus add (0.9 pJ): arithmetic alone, a lower bound for a CPU [pJ]"""
CPU_WEIGHT_READ_PJ = 50.0
"""reading one 32-bit weight from a 1 MB cache (Horowitz: 100 pJ per 64-bit access) [pJ]"""


@dataclass
class NetworkCost:
    """One network's counts per simulator step (see the module docstring) and their energy estimates [nJ]."""

    spikes: float = 0.0
    synaptic_events: float = 0.0
    input_events: float = 0.0
    neuron_updates: float = 0.0
    dense_macs: float = 0.0
    learning_updates: float = 0.0

    @property
    def loihi_nj(self) -> float:
        """Inference on a Loihi-class chip: synaptic operations, neuron updates and spikes [nJ]."""
        return 1e-3 * ((self.synaptic_events + self.input_events) * LOIHI_SYNAPTIC_OP_PJ
                       + self.neuron_updates * LOIHI_NEURON_UPDATE_PJ + self.spikes * LOIHI_SPIKE_PJ)

    @property
    def loihi_learning_nj(self) -> float:
        """On-chip learning: synaptic updates [nJ]."""
        return 1e-3 * self.learning_updates * LOIHI_SYNAPTIC_UPDATE_PJ

    @property
    def cpu_nj(self) -> float:
        """The same network as a dense ANN on a CPU, arithmetic only [nJ]."""
        return 1e-3 * self.dense_macs * CPU_MAC_PJ

    @property
    def cpu_with_fetch_nj(self) -> float:
        """The dense ANN with every weight read from cache once per step [nJ]."""
        return 1e-3 * self.dense_macs * (CPU_MAC_PJ + CPU_WEIGHT_READ_PJ)

    @property
    def cpu_learning_nj(self) -> float:
        """Backprop-style learning on a CPU: a backward pass and an update, two more MACs per weight [nJ]."""
        return 1e-3 * 2 * self.learning_updates * CPU_MAC_PJ

    def add(self, other: NetworkCost, weight: float = 1.0) -> None:
        for name in asdict(self):
            setattr(self, name, getattr(self, name) + weight * getattr(other, name))

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "loihi_nj": self.loihi_nj, "loihi_learning_nj": self.loihi_learning_nj,
                "cpu_nj": self.cpu_nj, "cpu_with_fetch_nj": self.cpu_with_fetch_nj,
                "cpu_learning_nj": self.cpu_learning_nj}


def network_cost(sizes: Sequence[int], activities: Sequence[np.ndarray], *, dt: float, amplitude: float,
                 learning: bool) -> NetworkCost:
    """One step's cost of a feed-forward network with layer widths ``sizes`` and hidden ``activities``."""
    sizes = [int(s) for s in sizes]
    if len(activities) != len(sizes) - 2:
        raise ValueError(f"{len(sizes) - 2} hidden layers need as many activity vectors, got {len(activities)}")
    spikes = [float(np.sum(a)) * dt / amplitude for a in activities]
    synapses = float(sum(a * b for a, b in itertools.pairwise(sizes)))
    return NetworkCost(spikes=sum(spikes), synaptic_events=sum(s * sizes[i + 2] for i, s in enumerate(spikes)),
                       input_events=float(sizes[0] * sizes[1]), neuron_updates=float(sum(sizes[1:-1])),
                       dense_macs=synapses, learning_updates=synapses if learning else 0.0)


class CostMeter:
    """Mean cost per tick over the ticks :meth:`add` saw, per network (``actor``, ``q1``, ``q2``) and in total.

    :meth:`add` only sums each hidden layer's activity (a few microseconds: it can run on every control tick);
    :meth:`per_tick` turns the sums into counts and energies. A tick of ``steps_per_tick`` simulator steps counts
    the last step's activity that many times (the agent exposes the last step only).
    """

    def __init__(self) -> None:
        self.ticks = 0
        self._sizes: dict[str, tuple[int, ...]] = {}
        self._activity: dict[str, list[float]] = {}  # per network, per hidden layer: summed activity x steps
        self._steps: dict[str, float] = {}  # per network: simulator steps it computed
        self._learning_steps: dict[str, float] = {}
        self._dt = self._amplitude = 0.0

    def add(self, agent: object) -> None:
        """Count the agent's last tick (call after :meth:`OnlineAgent.step`)."""
        steps, learning = agent.steps_per_tick, agent.learning
        if not self._sizes:
            self._dt, self._amplitude = agent.dt, agent.lif.amplitude
            nets = {"actor": agent.actor, **dict(zip(("q1", "q2"), agent.critics))}
            for name, layers in agent.activity().items():
                self._sizes[name] = tuple(nets[name].sizes)
                self._activity[name] = [0.0] * len(layers)
                self._steps[name] = self._learning_steps[name] = 0.0
        for name, layers in agent.activity().items():
            if name != "actor" and not learning:
                continue  # the critics stand still while learning is off
            acc = self._activity[name]
            for i, a in enumerate(layers):
                acc[i] += steps * a.sum()
            self._steps[name] += steps
            self._learning_steps[name] += steps if learning else 0
        self.ticks += 1

    def per_tick(self) -> dict[str, NetworkCost]:
        """Mean per tick, per network, plus ``total``."""
        n = max(self.ticks, 1)
        out = {}
        for name, sizes in self._sizes.items():
            if not self._steps[name]:
                continue  # a critic while learning was off throughout
            # the counts are linear in the activity and in the steps computed: one step's cost, scaled
            one = network_cost(sizes, [a / max(self._steps[name], 1.0) for a in self._activity[name]], dt=self._dt,
                               amplitude=self._amplitude, learning=True)
            share, learning_share = self._steps[name] / n, self._learning_steps[name] / n
            out[name] = NetworkCost(spikes=one.spikes * share, synaptic_events=one.synaptic_events * share,
                                    input_events=one.input_events * share, neuron_updates=one.neuron_updates * share,
                                    dense_macs=one.dense_macs * share, learning_updates=one.learning_updates
                                    * learning_share)
        total = NetworkCost()
        for cost in out.values():
            total.add(cost)
        out["total"] = total
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """:meth:`per_tick` as plain dicts (for ``--json``, a demo summary, ``/diagnostics``)."""
        return {name: cost.as_dict() for name, cost in self.per_tick().items()}
