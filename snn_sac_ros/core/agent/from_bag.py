"""Replay transitions from a recorded run: what ``train --from-bag`` learns from.

A recording holds one tick record per control tick (:mod:`snn_sac_ros.core.recording`), at the controller's rate
(e.g. 500 Hz); the replay agent's discount is per training step (the checkpoint's ``control_hz``, e.g. 50 Hz). So
each transition spans ``stride = tick rate / control_hz`` ticks of one reach in which the policy's torque went out
on every tick: its action is the mean of the recorded actions over the window (the held action that moves the arm
as they did), its observations are the states at the window's ends, encoded by the checkpoint's contract, and
its reward is :meth:`ReachTask.reward` of the distance at the window's end (the forward kinematics of the recorded
joint positions to the recorded target) and that action: the same reward definition training and the controller
use, whatever the recording's reward said.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.contracts import ObservationContract
from snn_sac_ros.core.recording.reader import Ticks, load_ticks
from snn_sac_ros.core.task import ReachTask


@dataclass
class Transitions:
    """``(obs, action, reward, next_obs, done)`` arrays, one row per transition."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    dones: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)


def _acted(ticks: Ticks) -> np.ndarray:
    """Per tick: the policy acted and its torque went out."""
    return ticks.commanded & np.all(np.isfinite(ticks.action), axis=1)


def _segments(ticks: Ticks, ok: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of ticks within one reach in which the policy acted and its torque went out (``ok``,
    from :func:`_acted`)."""
    out, start = [], None
    for k in range(len(ticks) + 1):
        same = k < len(ticks) and ok[k] and (start is None or ticks.episode[k] == ticks.episode[start])
        if start is not None and not same:
            out.append((start, k))
            start = None
        if k < len(ticks) and ok[k] and start is None:
            start = k
    return out


def transitions(ticks: Ticks, arm: PyBulletArm, contract: ObservationContract, control_hz: float,
                task: ReachTask | None = None) -> Transitions:
    """The replay transitions of a recording's ticks (see the module docstring)."""
    task = task or ReachTask()
    if tuple(ticks.joint_names) != tuple(contract.joint_names):
        raise ValueError(f"the recording's joints {list(ticks.joint_names)} are not the checkpoint's "
                         f"{list(contract.joint_names)}")
    dt = float(np.median(np.diff(ticks.t))) if len(ticks) > 1 else 0.0
    if not dt > 0:
        raise ValueError("the recording's tick stamps do not advance: cannot tell its rate")
    stride = max(1, round(1.0 / (control_hz * dt)))
    rows: dict[str, list] = {k: [] for k in ("obs", "actions", "rewards", "next_obs")}

    # a last-action contract sees the mean action of the period before each tick, zero where no command went out:
    # what the controller's tick fed the policy
    acted = _acted(ticks)
    went_out = np.where(acted[:, None], np.nan_to_num(ticks.action), 0.0)

    def encode(k: int) -> np.ndarray:
        held = went_out[max(0, k - stride):k].sum(axis=0) / stride if contract.last_action else None
        return contract.encode(ticks.q[k], ticks.dq[k], arm.forward_kinematics(ticks.q[k]), ticks.target[k], held)

    for start, stop in _segments(ticks, acted):
        for k in range(start, stop - stride, stride):  # the window's end tick k + stride is inside the segment
            action = np.clip(ticks.action[k:k + stride].mean(axis=0), -1.0, 1.0)
            end = k + stride
            distance = task.distance(arm.forward_kinematics(ticks.q[end]), ticks.target[end])
            rows["obs"].append(encode(k))
            rows["actions"].append(action)
            rows["rewards"].append(task.reward(distance, action))
            rows["next_obs"].append(encode(end))
    n, size = len(rows["obs"]), contract.size
    return Transitions(np.array(rows["obs"], np.float32).reshape(n, size),
                       np.array(rows["actions"], np.float32).reshape(n, -1) if n else np.zeros((0, 0), np.float32),
                       np.array(rows["rewards"], np.float32).reshape(n, 1),
                       np.array(rows["next_obs"], np.float32).reshape(n, size), np.zeros((n, 1), np.float32))


def bag_transitions(path: str | Path, arm: PyBulletArm, contract: ObservationContract, control_hz: float
                    ) -> tuple[Transitions, dict]:
    """A recording's transitions and what a checkpoint records about it (path, SHA-256, ticks, transitions)."""
    ticks = load_ticks(path)
    found = transitions(ticks, arm, contract, control_hz)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found, {"path": str(Path(path).resolve()), "sha256": digest, "ticks": len(ticks),
                   "transitions": len(found)}
