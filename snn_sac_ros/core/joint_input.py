"""Validation of joint-state input by joint name: what a controller must check before trusting a message.

ros2_control's ``joint_state_broadcaster`` gives no order guarantee and may leave arrays empty, and a
faulty driver can send anything. :func:`order_joint_state` maps by name, never by index, and refuses
anything it cannot trust with a :class:`JointInputError` whose ``kind`` names the problem (for throttled
logging, one line per kind). :class:`JointStateReader` does the same at the control rate: a driver sends
the same names in the same order every time, so it checks the names once per new name list and the values
with one combined comparison (NaN fails it too), and only a message that fails is taken apart to say why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class JointInputError(ValueError):
    """A joint-state message the controller must not act on."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles [rad] wrapped into [-pi, pi)."""
    return (np.asarray(angle, dtype=float) + np.pi) % (2.0 * np.pi) - np.pi


def order_joint_state(names: Sequence[str], positions: Sequence[float], velocities: Sequence[float],
                      joint_names: Sequence[str], *, lower: np.ndarray, upper: np.ndarray,
                      velocity_limits: np.ndarray, margin: float = 0.1,
                      continuous: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of ``joint_names``, in that order, from one JointState message.

    Extra joints are ignored. Positions of ``continuous`` joints (a boolean mask) are wrapped into
    [-pi, pi): a continuous joint's encoder may count whole turns. Refused: duplicated names, a missing
    controlled joint, position or velocity arrays whose length differs from the names, non-finite values,
    positions more than ``margin`` [rad] outside the joint limits, and velocities above twice the joint's
    velocity limit.
    """
    names = list(names)
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise JointInputError("duplicate_joint", f"joint_states names {duplicated} more than once")
    missing = [j for j in joint_names if j not in names]
    if missing:
        raise JointInputError("missing_joint", f"joint_states lacks controlled joint(s) {missing}")
    if len(positions) != len(names):
        raise JointInputError("wrong_length", f"joint_states has {len(names)} names but {len(positions)} positions")
    if len(velocities) != len(names):
        raise JointInputError("wrong_length",
                              f"joint_states has {len(names)} names but {len(velocities)} velocities")
    index = [names.index(j) for j in joint_names]
    q = np.asarray(positions, dtype=float)[index]
    dq = np.asarray(velocities, dtype=float)[index]
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(dq))):
        bad = [j for j, a, b in zip(joint_names, q, dq) if not (np.isfinite(a) and np.isfinite(b))]
        raise JointInputError("non_finite", f"joint_states has non-finite position/velocity for {bad}")
    if continuous is not None and np.any(continuous):
        q = np.where(continuous, wrap_angle(q), q)
    outside = (q < lower - margin) | (q > upper + margin)
    if np.any(outside):
        bad = {j: round(float(v), 3) for j, v, o in zip(joint_names, q, outside) if o}
        raise JointInputError("out_of_range", f"joint positions outside the joint limits: {bad}")
    too_fast = np.abs(dq) > 2.0 * velocity_limits
    if np.any(too_fast):
        bad = {j: round(float(v), 3) for j, v, o in zip(joint_names, dq, too_fast) if o}
        raise JointInputError("out_of_range", f"joint velocities above twice the limit: {bad}")
    return q, dq


class JointStateReader:
    """:func:`order_joint_state` for one arm's joints and limits, cheap when the names repeat.

    The index of ``joint_names`` in a message's names is kept for the last name list seen; the values are
    accepted by one comparison against the limits (which NaN fails); anything refused goes through
    :func:`order_joint_state` for its kind and message. Same results, same errors.
    """

    def __init__(self, joint_names: Sequence[str], *, lower: np.ndarray, upper: np.ndarray,
                 velocity_limits: np.ndarray, margin: float = 0.1, continuous: np.ndarray | None = None) -> None:
        self.joint_names = tuple(joint_names)
        self._limits = {"lower": np.asarray(lower, dtype=float), "upper": np.asarray(upper, dtype=float),
                        "velocity_limits": np.asarray(velocity_limits, dtype=float), "margin": margin,
                        "continuous": continuous}
        self._low = self._limits["lower"] - margin
        self._high = self._limits["upper"] + margin
        self._fast = 2.0 * self._limits["velocity_limits"]
        self._continuous = None if continuous is None or not np.any(continuous) else np.asarray(continuous, bool)
        self._names: list[str] | None = None
        self._index: np.ndarray | None = None

    def __call__(self, names: Sequence[str], positions: Sequence[float],
                 velocities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities in ``joint_names`` order; :class:`JointInputError` when refused."""
        n = len(names)
        if names != self._names or len(positions) != n or len(velocities) != n:
            return self._slow(names, positions, velocities)
        index = self._index
        q = np.asarray(positions, dtype=float)[index]
        dq = np.asarray(velocities, dtype=float)[index]
        if self._continuous is not None:
            q = np.where(self._continuous, wrap_angle(q), q)
        if not ((self._low <= q) & (q <= self._high) & (np.abs(dq) <= self._fast)).all():  # NaN fails too
            return self._slow(names, positions, velocities)
        return q, dq

    def effort(self, efforts: Sequence[float]) -> np.ndarray | None:
        """The efforts of the state just read, in ``joint_names`` order; None when the state carries none (or not
        one finite value per joint)."""
        if self._index is None or self._names is None or len(efforts) != len(self._names):
            return None
        effort = np.asarray(efforts, dtype=float)[self._index]
        return effort if np.isfinite(effort).all() else None

    def _slow(self, names: Sequence[str], positions: Sequence[float],
              velocities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """The full checks (and their error), then the index kept for this name list."""
        self._names = None
        q, dq = order_joint_state(names, positions, velocities, self.joint_names, **self._limits)
        listed = list(names)
        # kept as given: a reader that hands the same tuple for repeated names (JointStateDecoder) compares alike
        self._names, self._index = names, np.array([listed.index(j) for j in self.joint_names])
        return q, dq
