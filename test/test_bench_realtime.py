"""``bench realtime`` runs end to end and reports every column; timing itself is never asserted (noisy machines)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.commands.bench_realtime import COLUMNS
from snn_sac_ros.commands.untrained import hidden_sizes, make_checkpoint
from snn_sac_ros.core.control.realtime import rt_throttling


def test_hidden_sizes_hold_the_total() -> None:
    assert hidden_sizes(4000, 1) == (1333,)
    assert hidden_sizes(4000, 2) == (667, 667)


def test_the_floor_computes_the_agents_tick(tmp_path) -> None:
    """The floor is the yardstick only if it does the agent's work: from the same start it acts and learns as the
    Nengo agent does, to the rounding of the C library's transcendental functions against NumPy's."""
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.agent.online import OnlineAgent
    from snn_sac_ros.core.realtime_floor import FloorAgent

    ckpt = load_checkpoint(make_checkpoint("planar2", (60, 60), tmp_path / "c.npz"))
    floor = FloorAgent(ckpt, learning=True, online_lr=1e-3)
    agent = OnlineAgent(ckpt, learning=True, dt=0.001, online_lr=1e-3)
    actor = agent.sim.model.sig[agent.actor]
    for layer, voltage in enumerate(floor.voltage):
        agent.sim.signals[actor[f"voltage{layer}"]][...] = voltage
    rng = np.random.default_rng(0)
    for tick in range(60):
        obs, reward = rng.uniform(-0.5, 0.5, floor.obs_dim), -rng.uniform() if tick else None
        np.testing.assert_allclose(floor.step(obs, reward), agent.step(obs, reward), atol=1e-8)
    assert floor.n_neurons == 6 * 60
    for name, net in [("actor", agent.actor), *zip(("q1", "q2"), agent.critics)]:
        for i, weights in enumerate(floor.nets[name]["W"]):
            learned = agent.sim.signals[agent.sim.model.sig[net][f"W{i}"]]
            assert not np.array_equal(learned, ckpt.arrays[f"{name}/W{i}"])
            np.testing.assert_allclose(weights, learned, atol=1e-9)


@pytest.mark.parametrize("on_state", [False, True], ids=["timer", "tick_on_state"])
def test_bench_realtime_reports_every_column(tmp_path, capsys, on_state: bool) -> None:
    """Every column, and with ``--control-thread both`` a row for the control thread and one for the executor
    timer, side by side."""
    code = main(["bench", "realtime", "--neurons", "300", "--rates", "500", "--learning", "on", "--duration", "2",
                 "--warmup", "1", "--nengo-steps", "200", "--out", str(tmp_path), "--json", "--control-thread", "both",
                 *(["--tick-on-state", "--record", "on"] if on_state else [])])
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    rows = result["rows"]
    assert " held " in next(line for line in out.splitlines() if line.startswith("neurons"))
    assert result["rt_throttling"] == (rt_throttling() or "off")  # what the figures were measured under
    assert [row["control_thread"] for row in rows] == [True, False]
    assert len(list(tmp_path.glob("*_rec.mcap"))) == 2 * int(on_state)
    for row in rows:
        for column in COLUMNS:
            assert column in row, column
        assert row["neurons"] == 300 and row["rate_hz"] == 500 and row["learning"] is True
        assert 0 < row["policy_step_us"] <= row["tick_max_ms"] * 1e3  # the policy step is a part of the tick
        assert 0 < row["command_p99_ms"] <= row["tick_max_ms"]  # so is the time to the command
        assert row["record"] is on_state
        assert 0 < row["control_rate_hz"] <= 1.1 * row["rate_hz"]  # ticks the row held, of those asked
        for column in COLUMNS[4:]:
            assert isinstance(row[column], int | float) and math.isfinite(row[column]), (column, row[column])


def test_bench_realtime_alternating_recording_splits_one_run_into_two_rows(tmp_path, capsys) -> None:
    """``--record alternate``: one run (one recording), paused and resumed within it; a row of the recorded ticks
    and a row of the others, each with every column, together the row's ticks."""
    code = main(["bench", "realtime", "--neurons", "300", "--rates", "500", "--learning", "on", "--duration", "3",
                 "--warmup", "1", "--nengo-steps", "200", "--out", str(tmp_path), "--json", "--record", "alternate",
                 "--record-period", "0.5"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(row["record"], row["record_alternating"]) for row in rows] == [(False, True), (True, True)]
    assert len(list(tmp_path.glob("*.mcap"))) == 1
    for row in rows:
        assert row["ticks"] > 200  # each phase holds about half of 3 s at 500 Hz
        for column in COLUMNS[4:]:
            assert isinstance(row[column], int | float) and math.isfinite(row[column]), (column, row[column])
    assert rows[0]["ticks"] + rows[1]["ticks"] <= 3.1 * 500


def test_bench_realtime_gives_the_control_thread_a_core_of_its_own(tmp_path, capsys) -> None:
    """``--control-cpu 1``: the controller pins its control thread to CPU 1 and every node starts on the other CPUs;
    a CPU the machine lacks is refused before anything starts."""
    assert main(["bench", "realtime", "--control-cpu", "99", "--neurons", "300", "--no-ros"]) != 0
    assert "--control-cpu 99" in capsys.readouterr().err
    code = main(["bench", "realtime", "--neurons", "300", "--rates", "500", "--learning", "on", "--duration", "2",
                 "--warmup", "1", "--nengo-steps", "200", "--out", str(tmp_path), "--json", "--control-cpu", "1"])
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert row["control_cpu"] == 1 and math.isfinite(row["tick_p50_ms"])
    log = next(tmp_path.glob("*_controller.log")).read_text()
    assert "cpu_affinity [1]: applied" in log, log[-2000:]
