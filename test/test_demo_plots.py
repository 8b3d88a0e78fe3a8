"""The demo's plots from a recorded run: the adaptation plot shows the learned damping per reach."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_sac_ros.commands.demo_plots import _gains_at_reach_ends, write_plots


def _record(reaches: int, with_gains: bool) -> dict:
    t = np.arange(0.0, 4.0 * reaches, 0.01)
    target = np.repeat(np.arange(reaches), 400)[:, None] * np.ones(3)  # a new target every 4 s
    series = {"t": t, "distance": np.full(len(t), 0.03), "target": target.astype(float),
              "torque_t": t, "torque": np.zeros((len(t), 2))}
    if with_gains:
        series["damping_t"] = t[::100]
        series["damping"] = np.column_stack([t[::100] / 10.0, np.zeros(len(t[::100]))])
    return {"series": series}


def test_adaptation_plot_with_and_without_learned_damping(tmp_path: Path) -> None:
    reaches = 6
    rows = "\n".join(f"{i},{0.01 * (i + 1)},{2.0 if i >= 3 else 0.0}" for i in range(reaches))
    (tmp_path / "reaches.csv").write_text("reach,final_distance_m,payload_kg\n" + rows + "\n")
    for with_gains in (True, False):
        written = write_plots(tmp_path, _record(reaches, with_gains), payload_reach=3)
        assert {p.name for p in written} >= {"distance.png", "torques.png", "adaptation.png"}
        assert (tmp_path / "adaptation.png").stat().st_size > 5000


def test_gains_are_read_at_the_end_of_each_reach() -> None:
    record = _record(4, with_gains=True)["series"]
    changes = np.array([4.0, 8.0, 12.0])
    gains = _gains_at_reach_ends(record, changes, 4)
    np.testing.assert_allclose(gains[:, 0], [0.4, 0.8, 1.2, 1.5], atol=0.01)  # gain = t / 10, last at t = 15
    assert _gains_at_reach_ends(_record(4, with_gains=False)["series"], changes, 4) is None
