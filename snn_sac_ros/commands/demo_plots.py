"""Plots of a demo run: distance to target, torques, adaptation to the payload, actor spikes."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after matplotlib.use: the backend must be chosen first
import numpy as np


def _target_changes(series: dict) -> np.ndarray:
    """Sim times at which the target changed."""
    targets = series.get("target", np.zeros((0, 3)))
    if len(targets) < 2:
        return np.zeros(0)
    changed = np.any(np.diff(targets, axis=0) != 0, axis=1)
    return series["t"][1:][changed]


def _gains_at_reach_ends(series: dict, changes: np.ndarray, reaches: int) -> np.ndarray | None:
    """The controller's learned damping gains (reaches x joints) at the end of each reach, if recorded."""
    t, gains = np.asarray(series.get("damping_t", [])), np.asarray(series.get("damping", []))
    if len(t) == 0 or gains.ndim != 2 or len(series.get("t", [])) == 0:
        return None
    ends = np.r_[changes, series["t"][-1]][:reaches]
    ends = np.r_[ends, np.full(reaches - len(ends), ends[-1])]
    return np.column_stack([np.interp(ends, t, gains[:, j]) for j in range(gains.shape[1])])


def _read_reaches_csv(path: Path) -> list[tuple[float, float]]:
    """``(final distance [m], payload [kg])`` per reach from the reach_targets node's ``reaches.csv``."""
    if not path.exists():
        return []
    with open(path) as handle:
        return [(float(r["final_distance_m"]), float(r["payload_kg"])) for r in csv.DictReader(handle)]


def write_plots(out: Path, record: dict, payload_reach: int | None,
                reaches: list[tuple[float, float]] | None = None) -> list[Path]:
    """Write the demo's PNGs into ``out``; returns their paths (plots without data are skipped).

    ``reaches``: ``(final distance [m], payload [kg])`` per reach (default: ``out/reaches.csv``).
    """
    series = record["series"]
    written = []
    changes = _target_changes(series)
    payload_time = changes[payload_reach - 1] if payload_reach and 0 < payload_reach <= len(changes) else None
    if len(series.get("t", [])):
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.plot(series["t"], np.asarray(series["distance"]) * 100, lw=0.8, label="end effector to target")
        for t in changes:
            ax.axvline(t, color="0.85", lw=0.6, zorder=0)
        ax.axhline(2, color="g", ls="--", lw=0.8, label="2 cm")
        ax.axhline(5, color="orange", ls="--", lw=0.8, label="5 cm")
        if payload_time is not None:
            ax.axvline(payload_time, color="r", lw=1.5, label="payload added")
        ax.set(xlabel="sim time [s]", ylabel="distance [cm]", title="Reaching: distance to target (grey: new target)")
        ax.set_yscale("log")
        ax.legend(loc="upper right", fontsize=8)
        written.append(_save(fig, out / "distance.png"))
    if len(series.get("torque_t", [])):
        fig, ax = plt.subplots(figsize=(10, 4))
        torques = np.asarray(series["torque"])
        for j in range(torques.shape[1]):
            ax.plot(series["torque_t"], torques[:, j], lw=0.7, label=f"joint {j + 1}")
        if payload_time is not None:
            ax.axvline(payload_time, color="r", lw=1.5, label="payload added")
        ax.set(xlabel="sim time [s]", ylabel="applied torque [Nm]", title="Joint torques applied by the arm")
        ax.legend(loc="upper right", fontsize=8)
        written.append(_save(fig, out / "torques.png"))
    rows = _read_reaches_csv(out / "reaches.csv") if reaches is None else reaches
    if rows:
        final = np.array([d for d, _ in rows]) * 100
        loaded = np.array([kg > 0 for _, kg in rows])
        fig, ax = plt.subplots(figsize=(8, 4))
        index = np.arange(1, len(final) + 1)
        ax.bar(index[~loaded], final[~loaded], color="tab:blue", label="no payload")
        ax.bar(index[loaded], final[loaded], color="tab:red", label="with payload")
        ax.axhline(2, color="g", ls="--", lw=0.8, label="2 cm")
        ax.set(xlabel="reach", ylabel="final distance [cm]",
               title="Adaptation: final distance per reach, before and after the payload")
        handles, labels = ax.get_legend_handles_labels()
        gains = _gains_at_reach_ends(series, changes, len(final))
        if gains is not None:
            twin = ax.twinx()
            for j in range(gains.shape[1]):
                handles += twin.plot(index, gains[:, j], marker="o^sv"[j % 4], color=f"C{(j + 4) % 10}", lw=1,
                                     ms=4)
                labels.append(f"learned damping, joint {j + 1}")
            twin.set_ylabel("learned damping gain [Nm s/rad]")
            twin.set_ylim(bottom=0)
        ax.legend(handles, labels, fontsize=8, loc="upper left")
        written.append(_save(fig, out / "adaptation.png"))
    spikes_file = out / "spikes.npz"
    if spikes_file.exists():
        data = np.load(spikes_file)
        spikes, dt = data["spikes"], float(data["dt"])
        fig, ax = plt.subplots(figsize=(10, 4))
        steps, neurons = np.nonzero(spikes)
        ax.scatter(steps * dt, neurons, s=1, marker="|", color="k")
        ax.set(xlabel="time [s]", ylabel="actor neuron", title=f"Spike raster: {spikes.shape[1]} actor neurons")
        written.append(_save(fig, out / "spike_raster.png"))
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
