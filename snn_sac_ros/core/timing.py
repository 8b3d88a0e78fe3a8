"""Control-loop timing statistics: tick compute time percentiles and deadline misses.

A tick misses its deadline when its compute time exceeds the control period, or when it starts more
than one whole period later than its predecessor's start plus one period (a skipped tick).
"""

from __future__ import annotations

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
