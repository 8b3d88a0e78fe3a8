"""The fused Nengo operators: the same numbers as the per-connection operators they replaced, and what each
learning operator reads (weight transport or not).

``data/online_reference.npz`` holds what the agent computed with one Nengo operator per connection and Python
nodes for the policy, the TD error and the actor error (written by the script
``git show da717d3:test/data/make_online_reference.py`` on that commit's code): a tiny checkpoint, then for
a spiking and a rate actor with learning on (online rate 1e-3, anchor 0.05 s, adaptive damping, the spiking
neurons started from :func:`initial_voltage`) 240 ticks of seeded observations and rewards, an episode boundary
every 60 ticks, learning off for ticks 100-139. The fused operators reproduce every weight to 1e-15 (most of them
bit for bit) and every action to 1e-12: where they differ, a product adds up in another order (the sweep that
carries an error down and updates the weights in one pass sums along its own loop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snn_sac_ros.core.agent.checkpoint import load_checkpoint, save_checkpoint
from snn_sac_ros.core.agent.online import DampingLearning, OnlineAgent
from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC
from snn_sac_ros.core.learning.feedback import FEEDBACK_MODES
from snn_sac_ros.core.nengo_ext.operators import SimLIFLearn
from snn_sac_ros.core.nengo_ext.sac_operators import SimActorError, SimTDError

REFERENCE = Path(__file__).parent / "data" / "online_reference.npz"
TICKS, EPISODE, OFF = 240, 60, range(100, 140)


def initial_voltage(layer: int, size: int) -> np.ndarray:
    """The actor's spiking neurons' voltages at the first step, per hidden layer (as the reference run set them)."""
    return np.random.default_rng(100 + layer).uniform(0.0, 1.0, size)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    data = dict(np.load(REFERENCE))
    path = tmp_path_factory.mktemp("reference") / "checkpoint.npz"
    path.write_bytes(data.pop("checkpoint").tobytes())
    return data, path


@pytest.mark.parametrize("mode", ["spiking", "rate"])
def test_fused_operators_compute_what_the_per_connection_operators_did(mode: str, reference: tuple) -> None:
    data, path = reference
    agent = OnlineAgent(load_checkpoint(path), spiking=mode == "spiking", learning=True, dt=0.002, seed=5,
                        online_lr=1e-3, anchor_tau=0.05, damping=DampingLearning(sigma=0.2, rate=0.3, cost_tau=0.02))
    sim, actor = agent.sim, agent.sim.model.sig[agent.actor]
    for layer in range(2 if mode == "spiking" else 0):
        voltage = sim.signals[actor[f"voltage{layer}"]]
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
    np.testing.assert_allclose(actions, data[f"{mode}/actions"], rtol=0, atol=1e-12)
    assert agent.updates == data[f"{mode}/updates"]
    np.testing.assert_array_equal(agent.damping_gains(), data[f"{mode}/damping"])
    for name, net in [("actor", agent.actor), *zip(("q1", "q2"), agent.critics)]:
        for key in (f"{kind}{i}" for kind in "Wb" for i in range(3)):
            np.testing.assert_allclose(sim.signals[sim.model.sig[net][key]], data[f"{mode}/weights/{name}/{key}"],
                                       rtol=0, atol=1e-15, err_msg=f"{name}/{key}")


def _checkpoint_with_feedback(mode: str, base: Path, out: Path) -> Path:
    """The reference checkpoint's set-up with untrained networks of ``mode`` (its feedback matrices included)."""
    ckpt = load_checkpoint(base)
    meta = {k: v for k, v in ckpt.metadata.items() if k != "format_version"}
    config = SACConfig.from_dict(meta["sac_config"])
    config.feedback = mode
    meta["sac_config"] = config.to_dict()
    sac = SpikingSAC(meta["obs_dim"], meta["act_dim"], config, seed=1)
    return save_checkpoint(out, {**sac.arrays(), "log_alpha": ckpt.arrays["log_alpha"]}, meta)


@pytest.mark.parametrize("mode", sorted(FEEDBACK_MODES))
def test_error_operators_read_forward_weights_only_in_modes_with_weight_transport(
        mode: str, reference: tuple, tmp_path: Path) -> None:
    """Inspect what the builder makes every operator that carries an error read, and what each learning operator
    sends its errors through: no forward weight of another synapse, except in the modes that say they transport
    them. (A learning operator updates its own network's weights in place: that is the synapse's own weight.)"""
    agent = OnlineAgent.from_checkpoint(_checkpoint_with_feedback(mode, reference[1], tmp_path / "c.npz"),
                                        learning=True, dt=0.002)
    sig = agent.sim.model.sig
    forward = {id(sig[net][f"W{i}"]): f"{name}/W{i}"
               for name, net in [("actor", agent.actor), *zip(("q1", "q2"), agent.critics)] for i in range(3)}
    learners = [op for op in agent.sim.step_order if isinstance(op, SimLIFLearn)]
    heads = [op for op in agent.sim.step_order if isinstance(op, SimActorError | SimTDError)]
    assert len(learners) == 3 and len(heads) == 2
    carried = {forward[id(s)] for op in learners for s in op.error_paths() if id(s) in forward}
    carried |= {forward[id(s)] for op in learners + heads for s in op.reads if id(s) in forward}
    assert bool(carried) == FEEDBACK_MODES[mode].weight_transport, sorted(carried)
