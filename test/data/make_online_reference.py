"""Write ``online_reference.npz``: what the online agent computes on a fixed input sequence.

The fused Nengo operators must reproduce these numbers (test_online_operators.py). The file was written by this
script with the per-connection operators the agent had before the fused ones (commit 3c064e7): a tiny checkpoint
(16 + 16 LIF neurons per network), then for a spiking and a rate actor with learning on (online rate 1e-3,
anchor 0.05 s, adaptive damping; the spiking neurons' initial voltages set by
:func:`initial_voltage`) 240 ticks of seeded observations and rewards, an episode boundary every 60
ticks and learning off for ticks 100-139, recording every action, the weights at the end (float64, as the simulator
holds them), the number of TD updates and the damping gains.

    python test/data/make_online_reference.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TICKS, EPISODE, OFF = 240, 60, range(100, 140)


def initial_voltage(layer: int, size: int) -> np.ndarray:
    """The actor's spiking neurons' voltages at the first step, per hidden layer."""
    return np.random.default_rng(100 + layer).uniform(0.0, 1.0, size)


def run(checkpoint: Path, spiking: bool) -> dict[str, np.ndarray]:
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.agent.online import DampingLearning, OnlineAgent

    ckpt = load_checkpoint(checkpoint)
    agent = OnlineAgent(ckpt, spiking=spiking, learning=True, dt=0.002, seed=5, online_lr=1e-3, anchor_tau=0.05,
                        damping=DampingLearning(sigma=0.2, rate=0.3, cost_tau=0.02))
    if spiking:  # a known start: Nengo draws the neurons' initial voltages from seeds that depend on the model
        for layer, ensemble in enumerate(agent.actor.hidden):
            voltage = agent.sim.signals[agent.sim.model.sig[ensemble.neurons]["voltage"]]
            voltage[...] = initial_voltage(layer, voltage.size)
    rng = np.random.default_rng(11)
    actions = []
    for tick in range(TICKS):
        if tick % EPISODE == 0:
            agent.end_episode()
        if agent.learning != (tick not in OFF):
            agent.learning = tick not in OFF
        obs = np.clip(rng.normal(0.0, 0.4, agent.obs_dim), -1, 1)
        actions.append(agent.step(obs, float(-rng.uniform(0.0, 1.0)) if tick % EPISODE else None))
    out = {"actions": np.array(actions), "damping": agent.damping_gains(), "updates": np.array(agent.updates)}
    sim = agent.sim
    for name, net in [("actor", agent.actor), *zip(("q1", "q2"), agent.critics)]:
        for kind, connections in (("W", net.weight_connections), ("b", net.bias_connections)):
            for i, conn in enumerate(connections):  # float64, as the simulator holds them, pending change included
                sig = sim.model.sig
                weights = sim.signals[sig[conn]["weights"]] + sim.signals[sig[conn.learning_rule]["delta"]]
                out[f"weights/{name}/{kind}{i}"] = weights if kind == "W" else weights[:, 0]
    return out


def main() -> None:
    from snn_sac_ros.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        assert cli(["train", "--arm", "planar2", "--steps", "600", "--learning-starts", "300", "--batch-size", "32",
                    "--hidden", "16", "16", "--seed", "2", "--out", tmp, "--no-progress"]) == 0
        checkpoint = Path(tmp) / "checkpoint.npz"
        data = {"checkpoint": np.frombuffer(checkpoint.read_bytes(), np.uint8)}
        for spiking in (True, False):
            data.update({f"{'spiking' if spiking else 'rate'}/{k}": v for k, v in run(checkpoint, spiking).items()})
    np.savez_compressed(HERE / "online_reference.npz", **data)


if __name__ == "__main__":
    sys.exit(main())
