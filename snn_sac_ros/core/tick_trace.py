"""Per-tick timing record of a control loop, for ``snn-sac-ros bench realtime``.

``TickStats`` keeps a rolling window for ``/diagnostics``; a benchmark also needs every tick of a
60 s row, and which joint state each command was computed from (to pair it with that state's arrival
for the end-to-end latency). :class:`TickTrace` keeps that in preallocated arrays, a ring of ``size``
ticks: recording costs a few array stores, no allocation, so the loop it measures is not slowed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIELDS = ("start", "compute", "state_stamp", "publish", "policy", "recorded")


class TickTrace:
    """Ring of the last ``size`` ticks: start and publish [s, monotonic], compute [s], state stamp [s], the
    policy step's share of compute [s] (the same step as in a tight loop, here between other work: the two differ by
    what the node around it costs the step, caches and all), and whether a recorder took the tick (1/0: a benchmark
    that pauses recording within a run compares ticks with and without it under the same machine load)."""

    def __init__(self, size: int = 1 << 18) -> None:
        self.size = int(size)
        self.data = np.full((self.size, len(FIELDS)), np.nan)
        self.count = 0

    def record(self, start: float, compute: float, state_stamp: float, publish: float,
               policy: float = float("nan"), *, recorded: bool = False) -> None:
        """One tick; ``state_stamp`` is the header stamp of the joint state it used (NaN: none, zero torque);
        ``policy`` the seconds its policy step took (NaN: none ran)."""
        row = self.data[self.count % self.size]
        row[0], row[1], row[2], row[3], row[4], row[5] = start, compute, state_stamp, publish, policy, recorded
        self.count += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The recorded ticks, oldest first, one array per field."""
        n = min(self.count, self.size)
        idx = np.arange(self.count - n, self.count) % self.size
        return {name: self.data[idx, k].copy() for k, name in enumerate(FIELDS)}

    def save(self, path: str | Path) -> None:
        np.savez(path, **self.arrays())
