"""``bench realtime`` runs end to end and reports every column; timing itself is never asserted (noisy machines)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.commands.bench_realtime import COLUMNS, hidden_sizes, make_checkpoint


def test_hidden_sizes_hold_the_total() -> None:
    assert hidden_sizes(4000, 1) == (1333,)
    assert hidden_sizes(4000, 2) == (667, 667)


def test_floor_acts_and_learns(tmp_path) -> None:
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.realtime_floor import FloorAgent

    ckpt = load_checkpoint(make_checkpoint("planar2", (60, 60), tmp_path / "c.npz"))
    floor = FloorAgent(ckpt, learning=True)
    before = [w.copy() for w in floor.aw + floor.cw]
    obs = np.full(floor.obs_dim, 0.3)
    for _ in range(20):
        action = floor.step(obs, -1.0)
    assert floor.n_neurons == 6 * 60
    assert action.shape == (floor.act_dim,) and np.all(np.abs(action) <= 1.0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, floor.aw + floor.cw))


@pytest.mark.parametrize("on_state", [False, True], ids=["timer", "tick_on_state"])
def test_bench_realtime_reports_every_column(tmp_path, capsys, on_state: bool) -> None:
    code = main(["bench", "realtime", "--neurons", "300", "--rates", "500", "--learning", "on", "--duration", "2",
                 "--warmup", "1", "--nengo-steps", "200", "--out", str(tmp_path), "--json",
                 *(["--tick-on-state"] if on_state else [])])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = result["rows"]
    for column in COLUMNS:
        assert column in row, column
    assert row["neurons"] == 300 and row["rate_hz"] == 500 and row["learning"] is True
    for column in COLUMNS[3:]:
        assert isinstance(row[column], int | float) and math.isfinite(row[column]), (column, row[column])
