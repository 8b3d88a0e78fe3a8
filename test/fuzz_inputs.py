"""Malformed inputs for the fuzz tests: joint states, targets and effort commands, as plain data.

Kept free of ROS so that the cases can be read (and reused by other tests) as a table: each case names
the error kind the node must report (``None`` for variants that are unusual but valid and must be
accepted), and builds its message fields from a random generator, so every message differs a little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NAN, INF, HUGE = math.nan, math.inf, 1.7976931348623157e308
JOINTS = ("shoulder", "elbow")
#: A valid configuration of planar2 near which the fake robot sits.
Q_OK = np.array([0.0, 1.2])


@dataclass(frozen=True)
class StateCase:
    """One kind of joint_states message: fields, and the controller's error kind (None: must be accepted)."""

    kind: str | None
    #: rng -> (names, positions, velocities, efforts, stamp offset [s] from now or absolute "sec" with abs_sec)
    build: Callable[[np.random.Generator], tuple[list[str], list[float], list[float], list[float], float]]
    abs_sec: int | None = None  # stamp sec to use instead of now + offset


def _ok(rng: np.random.Generator) -> tuple[list[float], list[float]]:
    return (Q_OK + rng.uniform(-0.01, 0.01, 2)).tolist(), rng.uniform(-0.01, 0.01, 2).tolist()


def _names(*names: str) -> list[str]:
    return list(names)


def _case(kind: str | None, *, names: list[str] | None = None, pos: Callable | None = None, vel: Callable | None = None,
          stamp: float = 0.0, abs_sec: int | None = None, effort: list[float] | None = None) -> StateCase:
    def build(rng: np.random.Generator) -> tuple[list[str], list[float], list[float], list[float], float]:
        q, dq = _ok(rng)
        return (list(names if names is not None else JOINTS), pos(q) if pos else q, vel(dq) if vel else dq,
                list(effort or []), stamp)
    return StateCase(kind, build, abs_sec)


#: Malformed joint_states, by name. Error kinds are core/joint_input.py's and the controller's stamp checks.
BAD_STATES: dict[str, StateCase] = {
    "nan_position": _case("non_finite", pos=lambda q: [NAN, q[1]]),
    "nan_velocity": _case("non_finite", vel=lambda d: [d[0], NAN]),
    "inf_position": _case("non_finite", pos=lambda q: [q[0], INF]),
    "neg_inf_velocity": _case("non_finite", vel=lambda d: [-INF, d[1]]),
    "all_nan": _case("non_finite", pos=lambda q: [NAN, NAN], vel=lambda d: [NAN, NAN]),
    "huge_position": _case("out_of_range", pos=lambda q: [1e300, q[1]]),
    "max_float_position": _case("out_of_range", pos=lambda q: [q[0], -HUGE]),
    "huge_velocity": _case("out_of_range", vel=lambda d: [1e12, d[1]]),
    "position_beyond_limits": _case("out_of_range", pos=lambda q: [q[0], 10.0]),
    "empty": _case("missing_joint", names=[], pos=lambda q: [], vel=lambda d: []),
    "duplicated_joint": _case("duplicate_joint", names=_names("shoulder", "elbow", "shoulder"),
                              pos=lambda q: [*q, 0.3], vel=lambda d: [*d, 0.0]),
    "duplicated_joint_conflicting": _case("duplicate_joint", names=_names("elbow", "elbow", "shoulder"),
                                          pos=lambda q: [0.1, 2.0, q[0]], vel=lambda d: [0.0, 0.0, d[0]]),
    "missing_joint": _case("missing_joint", names=_names("shoulder"), pos=lambda q: q[:1], vel=lambda d: d[:1]),
    "unknown_joints_only": _case("missing_joint", names=_names("wrist", "gripper")),
    "names_differ_in_case": _case("missing_joint", names=_names("Shoulder", "ELBOW")),
    "short_position": _case("wrong_length", pos=lambda q: q[:1]),
    "long_position": _case("wrong_length", pos=lambda q: [*q, 0.0, 0.0]),
    "empty_position": _case("wrong_length", pos=lambda q: []),
    "empty_velocity": _case("wrong_length", vel=lambda d: []),
    "long_velocity": _case("wrong_length", vel=lambda d: [*d, 1.0]),
    "stale_stamp": _case("stale_stamp", stamp=-2.0),
    "zero_stamp": _case("stale_stamp", abs_sec=0),
    "future_stamp": _case("future_stamp", stamp=5.0),
    "far_future_stamp": _case("future_stamp", abs_sec=2**31 - 1),
}

#: Unusual but valid joint_states: the controller must act on them (map by name, ignore extra joints).
ODD_VALID_STATES: dict[str, StateCase] = {
    "reversed_order": StateCase(None, lambda rng: (
        ["elbow", "shoulder"], _ok(rng)[0][::-1], [0.0, 0.0], [], 0.0)),
    "extra_unknown_joints": _case(None, names=_names("gripper", "shoulder", "elbow", "wrist"),
                                  pos=lambda q: [0.02, *q, HUGE], vel=lambda d: [NAN, *d, 0.0]),
    "nan_effort_ignored": _case(None, effort=[NAN, INF]),
}


def random_garbage_state(rng: np.random.Generator) -> tuple[list[str], list[float], list[float], list[float], float]:
    """A joint_states with random names, lengths and values (valid by chance at most)."""
    pool = [*JOINTS, "wrist", "", "shoulder ", "élbow"]
    names = [str(rng.choice(pool)) for _ in range(int(rng.integers(0, 5)))]
    special = [NAN, INF, -INF, HUGE, -HUGE, 1e-320, 0.0]

    def values() -> list[float]:
        return [float(rng.choice(special)) if rng.random() < 0.5 else float(rng.normal(0, 100))
                for _ in range(int(rng.integers(0, 6)))]
    return names, values(), values(), values(), float(rng.choice([0.0, -100.0, 100.0]))


#: Malformed targets: (x, y, z, frame_id) and the controller's error kind.
BAD_TARGETS: dict[str, tuple[str, Callable[[np.ndarray], tuple[float, float, float, str]]]] = {
    "target_nan": ("target_non_finite", lambda p: (NAN, p[1], p[2], "base_link")),
    "target_inf": ("target_non_finite", lambda p: (p[0], -INF, p[2], "base_link")),
    "target_huge": ("target_out_of_reach", lambda p: (1e6, p[1], p[2], "base_link")),
    "target_max_float": ("target_out_of_reach", lambda p: (HUGE, HUGE, HUGE, "base_link")),
    "target_other_frame": ("target_frame", lambda p: (p[0], p[1], p[2], "world")),
    "target_garbage_frame": ("target_frame", lambda p: (p[0], p[1], p[2], "x" * 4096)),
}


#: Malformed effort commands for planar2 (2 joints): values and arm_sim's error kind (None: accepted, clamped).
def bad_commands(rng: np.random.Generator) -> dict[str, tuple[str | None, list[float]]]:
    """One instance of each malformed (or extreme but valid) command kind."""
    a, b = rng.uniform(-1, 1, 2).tolist()
    return {
        "empty": ("wrong_length", []),
        "one_value": ("wrong_length", [a]),
        "three_values": ("wrong_length", [a, b, 0.0]),
        "ten_thousand_values": ("wrong_length", rng.uniform(-1, 1, 10000).tolist()),
        "nan": ("non_finite", [NAN, b]),
        "inf": ("non_finite", [a, INF]),
        "neg_inf": ("non_finite", [-INF, -INF]),
        "nan_and_inf": ("non_finite", [NAN, -INF]),
        "huge": (None, [1e300, -1e300]),
        "max_float": (None, [HUGE, -HUGE]),
        "denormal": (None, [5e-324, -5e-324]),
    }
