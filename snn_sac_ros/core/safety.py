"""Torque safety for a controller that commands real hardware: pure logic, no ROS.

Every torque the controller publishes goes through :meth:`TorqueGuard.filter`. The guard commands zero
torque (the arm's own gravity compensation then holds it, as under ros2_control with an effort
interface) whenever any of these holds, and says which:

- the e-stop is latched (it stays latched until explicitly released, even if the e-stop topic goes quiet);
- the controller is not active;
- no valid joint state has arrived within ``state_timeout`` seconds (the publisher died or stalled);
- the control loop itself stalled: more than ``stall_timeout`` seconds since the previous tick;
- the input of this tick was invalid (NaN, missing joint, stale stamp ...);
- the computed torque has a non-finite value.

Otherwise the torque is clamped to the URDF effort limits and, tighter, to ``max_torque``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GuardDecision:
    """What the guard let through, and why it zeroed the torque if it did (empty when it did not)."""

    torque: np.ndarray
    reasons: list[str] = field(default_factory=list)

    @property
    def zeroed(self) -> bool:
        return bool(self.reasons)


STALL_REASON = "control loop stalled"  # how a watchdog reason for a stalled loop begins


class TorqueGuard:
    """Clamps torques and zeroes them on e-stop, watchdog timeouts and invalid values.

    Parameters
    ----------
    effort_limits: per-joint URDF effort limits [Nm].
    max_torque: optional tighter per-joint limits [Nm]; values <= 0 mean "URDF limit only".
    state_timeout: joint states older than this [s] give zero torque.
    stall_timeout: a gap between ticks longer than this [s] gives zero torque for that tick.
    """

    def __init__(self, effort_limits: np.ndarray, max_torque: np.ndarray | None = None,
                 state_timeout: float = 0.02, stall_timeout: float = 0.05) -> None:
        self.effort_limits = np.asarray(effort_limits, dtype=float)
        if np.any(~np.isfinite(self.effort_limits)) or np.any(self.effort_limits <= 0):
            raise ValueError(f"effort limits must be positive and finite, got {self.effort_limits.tolist()}")
        self.set_max_torque(max_torque)
        if state_timeout <= 0 or stall_timeout <= 0:
            raise ValueError("state_timeout and stall_timeout must be positive")
        self.state_timeout = float(state_timeout)
        self.stall_timeout = float(stall_timeout)
        self.estop_latched = False
        self.active = False
        self._last_state_time: float | None = None
        self._last_tick_time: float | None = None

    @property
    def limits(self) -> np.ndarray:
        """The per-joint torque bound in force [Nm]."""
        return self._limits

    def set_max_torque(self, max_torque: np.ndarray | None) -> None:
        """Tighter per-joint limits [Nm] (<= 0 or None: the URDF limit)."""
        if max_torque is None:
            self._limits = self.effort_limits.copy()
            return
        tight = np.asarray(max_torque, dtype=float)
        if tight.shape != self.effort_limits.shape or not np.all(np.isfinite(tight)):
            raise ValueError(f"max_torque must be {self.effort_limits.size} finite values, got {tight.tolist()}")
        self._limits = np.where(tight > 0, np.minimum(tight, self.effort_limits), self.effort_limits)

    def engage_estop(self) -> None:
        self.estop_latched = True

    def release_estop(self) -> None:
        self.estop_latched = False

    def state_received(self, now: float) -> None:
        """A valid joint state arrived at ``now`` [s]."""
        self._last_state_time = now

    def state_age(self, now: float) -> float:
        """Seconds since the last valid joint state (infinite before the first)."""
        return np.inf if self._last_state_time is None else now - self._last_state_time

    def watchdog_reasons(self, now: float) -> list[str]:
        """Why the watchdog would zero the torque at ``now`` (empty if it would not)."""
        reasons = []
        age = self.state_age(now)
        if age > self.state_timeout:
            reasons.append("no joint states" if np.isinf(age) else f"joint states stale ({age * 1e3:.1f} ms old)")
        if self._last_tick_time is not None and now - self._last_tick_time > self.stall_timeout:
            reasons.append(f"{STALL_REASON} ({(now - self._last_tick_time) * 1e3:.1f} ms between ticks)")
        return reasons

    def filter(self, torque: np.ndarray | None, now: float, input_error: str | None = None) -> GuardDecision:
        """The torque to publish this tick. ``torque`` None means the policy produced nothing."""
        reasons = self.watchdog_reasons(now)
        self._last_tick_time = now
        if self.estop_latched:
            reasons.insert(0, "e-stop latched")
        if not self.active:
            reasons.insert(0, "controller inactive")
        if input_error:
            reasons.append(input_error)
        if torque is None:
            if not reasons:
                reasons.append("no command computed")
        else:
            torque = np.asarray(torque, dtype=float)
            if torque.shape != self.effort_limits.shape:
                reasons.append(f"torque has {torque.size} values for {self.effort_limits.size} joints")
            elif not np.all(np.isfinite(torque)):
                reasons.append("non-finite torque computed")
        if reasons:
            return GuardDecision(np.zeros_like(self.effort_limits), reasons)
        return GuardDecision(np.clip(torque, -self._limits, self._limits))
