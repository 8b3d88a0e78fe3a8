"""The cost of a tick: event counts from the agent's real activities, energies from the cited per-event figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.core import cost
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.resources import shipped_checkpoint


def test_counts_and_energies_of_a_small_network() -> None:
    dt, amplitude = 0.002, 0.01
    spike = amplitude / dt
    c = cost.network_cost((3, 4, 5, 2), [np.array([spike, 0, spike, 0]), np.array([0, 0, spike, 0, 0])], dt=dt,
                          amplitude=amplitude, learning=True)
    assert (c.spikes, c.synaptic_events, c.input_events, c.neuron_updates) == (3, 2 * 5 + 1 * 2, 12, 9)
    assert c.dense_macs == c.learning_updates == 12 + 20 + 10
    assert c.loihi_nj == pytest.approx(1e-3 * (24 * 23.6 + 9 * 81.0 + 3 * 1.7))
    assert c.cpu_nj == pytest.approx(1e-3 * 42 * 4.6) and c.loihi_learning_nj == pytest.approx(1e-3 * 42 * 120.0)
    rates = cost.network_cost((3, 4, 5, 2), [np.full(4, 10.0), np.zeros(5)], dt=dt, amplitude=amplitude,
                              learning=False)
    assert rates.spikes == pytest.approx(4 * 10.0 * dt / amplitude) and rates.learning_updates == 0
    with pytest.raises(ValueError, match="hidden layers"):
        cost.network_cost((3, 4, 2), [], dt=dt, amplitude=amplitude, learning=False)


def test_meter_counts_the_spiking_actors_spikes_and_the_critics_only_while_learning() -> None:
    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    agent = OnlineAgent(ckpt, spiking=True, learning=False, dt=0.002, seed=0)
    rng = np.random.default_rng(0)
    meter, spikes = cost.CostMeter(), 0
    for k in range(200):
        agent.step(rng.uniform(-1, 1, agent.obs_dim).astype(np.float32), None if k == 0 else -0.1)
        meter.add(agent)
        spikes += sum(np.count_nonzero(a) for a in agent.activity()["actor"])
    assert set(meter.per_tick()) == {"actor", "total"}  # the critics stand still with learning off
    actor = meter.per_tick()["actor"]
    assert spikes > 0 and actor.spikes == pytest.approx(spikes / 200)
    assert actor.dense_macs == 8 * 256 + 256 * 256 + 256 * 4 and actor.synaptic_events < actor.dense_macs
    agent.learning = True
    for _ in range(20):
        agent.step(rng.uniform(-1, 1, agent.obs_dim).astype(np.float32), -0.1)
        meter.add(agent)
    per_tick = meter.summary()
    assert {"q1", "q2"} <= set(per_tick) and per_tick["q1"]["learning_updates"] > 0
    assert per_tick["total"]["loihi_learning_nj"] > per_tick["total"]["loihi_nj"]
    agent.close()


def test_bench_cost_prints_the_table_and_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "cost", "--arms", "planar2", "--hidden", "16x16", "256x256", "--reaches", "1",
                 "--reach-seconds", "0.1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "Davies et al. 2018" in out and "dense MAC" in out
    rows = json.loads(out.strip().splitlines()[-1])["cost"]
    assert [(r["hidden"], r["trained"], r["learning"]) for r in rows] == [
        ([16, 16], False, False), ([16, 16], False, True), ([256, 256], True, False), ([256, 256], True, True)]
    assert all(r["ticks"] == 50 for r in rows)
    trained = rows[2]["cost"]["total"]
    assert 0 < trained["synaptic_events"] < trained["dense_macs"] and trained["loihi_nj"] > 0
