"""Control-loop timing statistics: tick compute time percentiles and deadline misses; a simulator's shares.

A tick misses its deadline when its compute time exceeds the control period, or when it starts more
than one whole period later than its predecessor's start plus one period (a skipped tick).
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np


class TickStats:
    """Rolling statistics over the last ``window`` ticks, plus totals since creation."""

    def __init__(self, period: float, window: int = 5000) -> None:
        if period <= 0:
            raise ValueError(f"control period must be positive, got {period}")
        self.period = float(period)
        self._compute = deque(maxlen=window)
        self._starts = deque(maxlen=window)
        self.ticks = 0
        self.deadline_misses = 0
        self._last_start: float | None = None

    def record(self, start: float, compute_seconds: float) -> bool:
        """Record one tick that started at ``start`` [s, monotonic] and took ``compute_seconds``.

        Returns True when this tick missed its deadline.
        """
        missed = compute_seconds > self.period
        if self._last_start is not None and start - self._last_start > 2.0 * self.period:
            missed = True
        self._last_start = start
        self._compute.append(compute_seconds)
        self._starts.append(start)
        self.ticks += 1
        self.deadline_misses += int(missed)
        return missed

    def summary(self) -> dict[str, float]:
        """Achieved rate [Hz], compute p50/p99/max [ms] over the window, and deadline misses (total)."""
        if not self._compute:
            return {"rate_hz": 0.0, "tick_p50_ms": 0.0, "tick_p99_ms": 0.0, "tick_max_ms": 0.0,
                    "deadline_misses": self.deadline_misses, "ticks": self.ticks}
        compute = np.asarray(self._compute) * 1e3
        span = self._starts[-1] - self._starts[0]
        rate = (len(self._starts) - 1) / span if span > 0 else 0.0
        return {"rate_hz": float(rate), "tick_p50_ms": float(np.percentile(compute, 50)),
                "tick_p99_ms": float(np.percentile(compute, 99)), "tick_max_ms": float(compute.max()),
                "deadline_misses": self.deadline_misses, "ticks": self.ticks}


@dataclasses.dataclass
class StepTiming:
    """Wall-time accounting of control steps since ``start``, for diagnostics and the benchmark.

    ``physics`` is time inside PyBullet's stepSimulation, ``arm`` the whole of ``apply_torque`` (physics
    plus gravity compensation and state read-out), ``ros`` building and publishing the messages.
    Everything else in ``wall`` is the executor, the command callbacks and idle time.
    """

    start: float
    sim_start: float
    steps: int = 0
    physics: float = 0.0
    arm: float = 0.0
    ros: float = 0.0
    slips: int = 0

    def summary(self, now: float, sim_now: float) -> dict[str, float]:
        wall = max(now - self.start, 1e-9)
        per_step = 1e6 / max(self.steps, 1)
        return {
            "wall_s": wall, "sim_s": sim_now - self.sim_start, "real_time_factor": (sim_now - self.sim_start) / wall,
            "control_steps": self.steps, "slips": self.slips,
            "pybullet_share": self.physics / wall, "arm_wrapper_share": (self.arm - self.physics) / wall,
            "ros_share": self.ros / wall, "other_share": max(0.0, 1.0 - (self.arm + self.ros) / wall),
            "pybullet_us_per_step": self.physics * per_step, "arm_us_per_step": self.arm * per_step,
            "ros_us_per_step": self.ros * per_step,
        }
