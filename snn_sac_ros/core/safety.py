"""Torque safety for a controller that commands real hardware: pure logic, no ROS.

Every torque the controller publishes goes through :meth:`TorqueGuard.filter`, which checks it (finite,
one value per joint) and clamps it, once, to the guard's limits: the checkpoint's torque scale unless
``max_torque`` is tighter, never above the URDF effort limits. It stops the arm when any of these holds,
and says which:

- the e-stop is latched, or was since the last activation (:class:`EStop`: only a reset while not asserted,
  then a re-activation, give torque back);
- the controller is not active;
- the control loop itself stalled: more than ``stall_timeout`` seconds since the previous tick;
- no valid joint state has arrived within ``state_timeout`` seconds (the publisher died or stalled);
- the input of this tick was invalid (NaN, missing joint, stale stamp ...);
- no torque was computed, or the computed torque is not finite.

The first three give zero torque at once. The others are *soft* stops, shaped by :class:`StopBehaviour`:
zero at once, a ramp from the last command to zero, or damping only (``-Kd dq``, while the newest joint
state is fresh). ``max_torque_rate`` limits how fast the policy's torque may change, so a command that
comes back after a stop rises smoothly instead of jumping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

STALL_REASON = "control loop stalled"  # how a watchdog reason for a stalled loop begins
ESTOP_REASON = "e-stop latched"
INACTIVE_REASON = "controller inactive"
#: A state_timeout shorter than this many joint-state periods zeroes on ordinary jitter: refused.
MIN_TIMEOUT_PERIODS = 2.5


@dataclass
class GuardDecision:
    """What the guard let through, and why it stopped the policy's torque if it did (empty when it did not)."""

    torque: np.ndarray
    reasons: list[str] = field(default_factory=list)

    @property
    def zeroed(self) -> bool:
        """True when the policy's torque was not applied (a stop, of whatever shape)."""
        return bool(self.reasons)


class StopMode(StrEnum):
    """How a soft stop takes torque away."""

    ZERO = "zero"
    RAMP = "ramp"
    DAMPING = "damping"


@dataclass(frozen=True)
class StopBehaviour:
    """The torque during a soft stop.

    ``zero``: 0 at once. ``ramp``: the last command scaled down linearly to 0 over ``ramp_seconds``.
    ``damping``: ``-damping * dq`` [Nm s/rad] with the newest joint velocity while that state is fresh, else 0
    (a stale velocity is not the arm's).
    """

    mode: StopMode = StopMode.ZERO
    ramp_seconds: float = 0.1
    damping: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not np.isfinite(self.ramp_seconds) or self.ramp_seconds <= 0:
            raise ValueError(f"stop ramp time must be a positive number of seconds, got {self.ramp_seconds}")
        if self.mode is StopMode.DAMPING and (not self.damping or not np.all(np.isfinite(self.damping))
                                              or np.any(np.asarray(self.damping) < 0)):
            raise ValueError(f"damping stop needs finite gains >= 0 [Nm s/rad] per joint, got {list(self.damping)}")

    def torque(self, start: np.ndarray, elapsed: float, dq: np.ndarray | None) -> np.ndarray:
        """The stop torque ``elapsed`` seconds after a stop that began at command ``start``."""
        if self.mode is StopMode.RAMP:
            return start * max(0.0, 1.0 - elapsed / self.ramp_seconds)
        if self.mode is StopMode.DAMPING and dq is not None:
            return -np.asarray(self.damping) * dq
        return np.zeros_like(start)


class EStop:
    """A latching e-stop: ``true`` latches; nothing else releases it but :meth:`reset` while not asserted.

    A ``false`` message only records that the e-stop is no longer asserted. With a ``heartbeat_timeout``
    [s] above 0, silence on the e-stop topic for that long latches it too (a cut cable or a dead e-stop
    node must not read as "released"). The latch outlives a controller's configure/cleanup cycles.
    """

    def __init__(self, heartbeat_timeout: float = 0.0) -> None:
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.latched = False
        self.asserted = False
        self.reason = ""
        self._last_message: float | None = None
        self._heartbeat_since: float | None = None

    def message(self, engaged: bool, now: float) -> bool:
        """An e-stop message at ``now``; True when it latched the e-stop just now."""
        self._last_message = now
        self.asserted = bool(engaged)
        if engaged and not self.latched:
            self.latched, self.reason = True, "e-stop asserted"
            return True
        return False

    def start_heartbeat(self, now: float) -> None:
        """Begin counting silence from ``now`` (activation), if no message came yet."""
        self._heartbeat_since = now if self._last_message is None else self._last_message

    def check_heartbeat(self, now: float) -> bool:
        """Latch when the e-stop topic has been silent longer than the heartbeat timeout; True if it latched now."""
        if self.heartbeat_timeout <= 0 or self.latched:
            return False
        last = self._last_message if self._last_message is not None else self._heartbeat_since
        if last is None or now - last <= self.heartbeat_timeout:
            return False
        self.latched = True
        self.reason = f"no e-stop message for {now - last:.2f} s (heartbeat timeout {self.heartbeat_timeout:g} s)"
        return True

    def reset(self, now: float) -> tuple[bool, str]:
        """Release the latch, unless the e-stop is still asserted or its heartbeat is missing."""
        if not self.latched:
            return True, "e-stop was not latched"
        if self.asserted:
            return False, "the e-stop is still asserted (its last message was true): release it first"
        if self.heartbeat_timeout > 0 and (self._last_message is None
                                           or now - self._last_message > self.heartbeat_timeout):
            return False, "no recent e-stop heartbeat: the e-stop topic is silent"
        was = self.reason
        self.latched, self.reason = False, ""
        return True, f"e-stop latch released (was: {was}); activate the controller to resume torque"


class JointStatePeriod:
    """The joint states' period [s]: the median interval of the last ``window`` states, then fixed.

    Intervals between header stamps where they increase (the publisher's clock), else between arrivals
    (a driver that leaves stamps at zero). The caller feeds it every state, not only the newest one it
    acts on (a busy controller keeping one state merges the rest away), and fixes it (:meth:`fix`) once
    measured after an activation.
    """

    def __init__(self, window: int = 50) -> None:
        self._stamps: deque[float] = deque(maxlen=window + 1)
        self._arrivals: deque[float] = deque(maxlen=window + 1)
        self.fixed: float | None = None

    def arrived(self, stamp: float, now: float) -> None:
        """A valid state stamped ``stamp`` [s, the publisher's clock] arrived at ``now`` [s, monotonic]."""
        self._stamps.append(stamp)
        self._arrivals.append(now)

    def clear(self) -> None:
        """Forget the states and the fixed period (a new activation measures again)."""
        self._stamps.clear()
        self._arrivals.clear()
        self.fixed = None

    def _steps(self) -> np.ndarray:
        """Positive intervals: the stamps' where they increase, else the arrivals'."""
        stamps = np.diff(np.asarray(self._stamps)) if len(self._stamps) > 1 else np.zeros(0)
        if stamps.size and np.all(stamps >= 0) and np.sum(stamps > 0) >= stamps.size // 2:
            return stamps[stamps > 0]
        arrivals = np.diff(np.asarray(self._arrivals)) if len(self._arrivals) > 1 else np.zeros(0)
        return arrivals[arrivals > 0]

    @property
    def samples(self) -> int:
        """How many intervals the estimate rests on."""
        return int(self._steps().size)

    def period(self) -> float:
        """The fixed period, else the current estimate [s] (NaN before two states)."""
        if self.fixed is not None:
            return self.fixed
        steps = self._steps()
        return float(np.median(steps)) if steps.size else float("nan")

    def fix(self) -> float:
        """Fix the period at its current estimate; returns it."""
        self.fixed = None
        self.fixed = self.period()
        return self.fixed


def state_timeout_problem(state_timeout: float, period: float) -> str:
    """Why ``state_timeout`` is too short for joint states arriving every ``period`` seconds ('' if it is not)."""
    if not np.isfinite(period) or state_timeout >= MIN_TIMEOUT_PERIODS * period * (1 - 1e-9):
        return ""
    return (f"state_timeout {state_timeout * 1e3:.1f} ms is under {MIN_TIMEOUT_PERIODS:g} joint-state periods "
            f"(measured period {period * 1e3:.2f} ms): every late state would stop the arm; set state_timeout "
            f">= {MIN_TIMEOUT_PERIODS * period:.4f} s")


def check_max_torque(max_torque: np.ndarray, n_joints: int) -> np.ndarray:
    """``max_torque`` as per-joint limits [Nm]; refuses a wrong length and values <= 0 or not finite."""
    tight = np.asarray(max_torque, dtype=float)
    if tight.shape != (n_joints,):
        raise ValueError(f"max_torque needs {n_joints} values, got {tight.size}")
    if not np.all(np.isfinite(tight)) or np.any(tight <= 0):
        raise ValueError(f"max_torque must be finite values > 0 [Nm] (0 does not mean 'stop' nor 'no limit'), "
                         f"got {tight.tolist()}")
    return tight


class TorqueGuard:
    """Checks and clamps torques; stops the arm on e-stop, watchdog timeouts and invalid values.

    Parameters
    ----------
    effort_limits: per-joint URDF effort limits [Nm]: nothing beyond them is ever commanded.
    default_limits: the clamp while ``max_torque`` is unset [Nm], within the effort limits (a controller
        passes its checkpoint's torque scale: the torques the policy was trained with).
    state_timeout: joint states older than this [s] stop the arm.
    stall_timeout: a gap between ticks longer than this [s] gives zero torque for that tick.
    stop: the shape of a soft stop. max_torque_rate: largest change of the policy's torque [Nm/s], one value
        or one per joint (0: none).
    estop: the e-stop latch, which may outlive this guard.
    """

    def __init__(self, effort_limits: np.ndarray, default_limits: np.ndarray | None = None, *,
                 state_timeout: float = 0.02, stall_timeout: float = 0.05, stop: StopBehaviour | None = None,
                 max_torque_rate: float | np.ndarray = 0.0, estop: EStop | None = None) -> None:
        self.effort_limits = np.asarray(effort_limits, dtype=float)
        if np.any(~np.isfinite(self.effort_limits)) or np.any(self.effort_limits <= 0):
            raise ValueError(f"effort limits must be positive and finite, got {self.effort_limits.tolist()}")
        default = self.effort_limits if default_limits is None else check_max_torque(default_limits, self.n_joints)
        self._default = np.minimum(default, self.effort_limits)
        self.set_max_torque(None)
        if state_timeout <= 0 or stall_timeout <= 0:
            raise ValueError("state_timeout and stall_timeout must be positive")
        self.state_timeout = float(state_timeout)
        self.stall_timeout = float(stall_timeout)
        self.stop = stop or StopBehaviour()
        if self.stop.damping and len(self.stop.damping) != self.n_joints:
            raise ValueError(f"stop damping needs {self.n_joints} gains, got {len(self.stop.damping)}")
        self.set_max_torque_rate(max_torque_rate)
        self.estop = estop or EStop()
        self.active = False
        self._armed = True  # an e-stop disarms until the next activation
        self._last_state_time: float | None = None
        self._last_tick_time: float | None = None
        self._last_output = np.zeros(self.n_joints)
        self._stop_start: tuple[float, np.ndarray] | None = None

    @property
    def n_joints(self) -> int:
        return self.effort_limits.size

    @property
    def limits(self) -> np.ndarray:
        """The per-joint torque bound in force [Nm]."""
        return self._limits

    @property
    def estop_latched(self) -> bool:
        return self.estop.latched

    def set_max_torque(self, max_torque: np.ndarray | None) -> None:
        """Tighter per-joint limits [Nm] (None: the default limits); never looser than the URDF."""
        if max_torque is None:
            self._limits = self._default.copy()
            return
        self._limits = np.minimum(check_max_torque(max_torque, self.n_joints), self.effort_limits)

    def set_max_torque_rate(self, rate: float | np.ndarray) -> None:
        """Largest change of the policy's torque [Nm/s], one value or one per joint (0: none)."""
        rate = np.broadcast_to(np.asarray(rate, dtype=float), (self.n_joints,)).copy()
        if not np.all(np.isfinite(rate)) or np.any(rate < 0):
            raise ValueError(f"max_torque_rate must be finite values >= 0 [Nm/s], got {rate.tolist()}")
        self.max_torque_rate = rate

    def state_received(self, now: float) -> None:
        """A valid joint state arrived at ``now`` [s]."""
        self._last_state_time = now

    def state_age(self, now: float) -> float:
        """Seconds since the last valid joint state (infinite before the first)."""
        return np.inf if self._last_state_time is None else now - self._last_state_time

    def watchdog_reasons(self, now: float) -> list[str]:
        """Why the watchdog would stop the arm at ``now`` (empty if it would not)."""
        reasons = []
        if self._last_tick_time is not None and now - self._last_tick_time > self.stall_timeout:
            reasons.append(f"{STALL_REASON} ({(now - self._last_tick_time) * 1e3:.1f} ms between ticks)")
        age = self.state_age(now)
        if age > self.state_timeout:
            reasons.append("no joint states" if np.isinf(age) else f"joint states stale ({age * 1e3:.1f} ms old)")
        return reasons

    def zero_sent(self) -> None:
        """Zero went out instead of the last decision (a stall inside a tick, the stall watchdog): a rate-limited
        command rises from there, not from what was computed."""
        self._last_output = np.zeros(self.n_joints)

    def restart(self) -> None:
        """At activation: arm (unless the e-stop is latched) and forget the last command and tick, so the
        first command rises from zero."""
        self._armed = not self.estop.latched
        self._last_output = np.zeros(self.n_joints)
        self._last_tick_time = None
        self._stop_start = None

    def filter(self, torque: np.ndarray | None, now: float, input_error: str | None = None,
               dq: np.ndarray | None = None) -> GuardDecision:
        """The torque to publish this tick. ``torque`` None means the policy produced nothing; ``dq`` is the
        newest valid joint velocity, for a damping stop."""
        reasons = self.watchdog_reasons(now)
        dt = 0.0 if self._last_tick_time is None else now - self._last_tick_time
        self._last_tick_time = now
        hard = [r for r in reasons if r.startswith(STALL_REASON)]
        if self.estop.latched:
            self._armed = False
            hard.insert(0, ESTOP_REASON)
        elif not self._armed and self.active:
            hard.insert(0, f"{ESTOP_REASON} since activation and reset: activate again to resume torque")
        if not self.active:
            hard.insert(0, INACTIVE_REASON)
        soft = [r for r in reasons if not r.startswith(STALL_REASON)]
        if input_error:
            soft.append(input_error)
        if torque is None:
            if not soft:
                soft.append("no command computed")
        else:
            torque = np.asarray(torque, dtype=float)
            if torque.shape != self.effort_limits.shape:
                soft.append(f"torque has {torque.size} values for {self.n_joints} joints")
            elif not np.all(np.isfinite(torque)):
                soft.append("non-finite torque computed")
        if hard:
            out, self._stop_start = np.zeros(self.n_joints), None
        elif soft:
            if self._stop_start is None:
                self._stop_start = (now, self._last_output.copy())
            fresh = dq if dq is not None and self.state_age(now) <= self.state_timeout else None
            out = self.stop.torque(self._stop_start[1], now - self._stop_start[0], fresh)
        else:
            self._stop_start = None
            out = self._rate_limited(torque, dt)
        out = np.clip(out, -self._limits, self._limits)
        self._last_output = out
        return GuardDecision(out, hard + soft)

    def _rate_limited(self, torque: np.ndarray, dt: float) -> np.ndarray:
        if not np.any(self.max_torque_rate > 0):
            return torque
        step = np.where(self.max_torque_rate > 0, self.max_torque_rate * dt, np.inf)
        return self._last_output + np.clip(torque - self._last_output, -step, step)
