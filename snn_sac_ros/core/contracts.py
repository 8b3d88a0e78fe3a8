"""The observation/action contract: what a policy sees and what its output means, in one place.

The gymnasium env, the trainer, the checkpoints and the ROS controller node all go through these two
classes, so the policy that was trained is exactly the policy that runs on the robot. Checkpoints store
``to_dict()`` of both and refuse to load into a different contract.

Observation (every entry scaled into [-1, 1], the radius Nengo ensembles represent best):

=====================  =========================================================================
block                  scaling
=====================  =========================================================================
``q``                  joint position mapped linearly from [lower, upper] to [-1, 1]
``dq``                 joint velocity / velocity scale, clipped
``target``             target position (task axes) relative to the workspace centre / reach
``error``              tanh((target - end effector) / error_scale): fine resolution near the goal
``action`` (optional)  the policy's own action over the last policy period (``last_action``)
=====================  =========================================================================

Action: one value per joint in [-1, 1]; ``torque = action * torque_scale`` [Nm], plus the model's
gravity torque when ``gravity_compensation`` is on (the policy then outputs a residual), clipped to the
URDF effort limits. ``torque_scale`` is a share of the effort limits, capped per joint by the arm spec's
``action_max_acceleration`` times the joint's inertia at home. Where the arm spec sets damping, the arm also
subtracts ``joint_damping * dq``: the policy's torque is a residual on top of that too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm

_AXES = "xyz"


def _tuple(values: object) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float).ravel())


@dataclass(frozen=True)
class ObservationContract:
    """Encodes joint state, end-effector position and target into the policy's input vector."""

    joint_names: tuple[str, ...]
    q_lower: tuple[float, ...]
    q_upper: tuple[float, ...]
    dq_scale: tuple[float, ...]
    target_axes: str
    workspace_center: tuple[float, ...]
    workspace_reach: float
    error_scale: float = 0.03
    """[m]; the tanh of the error saturates beyond ~2x this, so the policy's finest input resolution is
    where success is judged (2 cm). Checkpoints store it; those made with 0.1 keep 0.1."""
    last_action: bool = False
    """Append the action of the last policy period (the mean over its ticks where the controller ticks faster):
    with a command delay, part of it is still in flight, and the policy cannot see that from the joint state."""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for name in ("q_lower", "q_upper", "dq_scale"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one value per joint ({n})")
        if not self.target_axes or any(a not in _AXES for a in self.target_axes):
            raise ValueError(f"target_axes must be a subset of 'xyz', got {self.target_axes!r}")
        if len(self.workspace_center) != 3:
            raise ValueError("workspace_center must be a 3-D point")

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def axis_indices(self) -> list[int]:
        return [_AXES.index(a) for a in self.target_axes]

    @property
    def size(self) -> int:
        return (3 if self.last_action else 2) * self.n_joints + 2 * len(self.target_axes)

    def layout(self) -> list[str]:
        """Name of every observation entry, in order."""
        return ([f"q/{j}" for j in self.joint_names] + [f"dq/{j}" for j in self.joint_names]
                + [f"target/{a}" for a in self.target_axes] + [f"error/{a}" for a in self.target_axes]
                + ([f"action/{j}" for j in self.joint_names] if self.last_action else []))

    def encode(self, q: np.ndarray, dq: np.ndarray, ee_position: np.ndarray, target: np.ndarray,
               last_action: np.ndarray | None = None) -> np.ndarray:
        """Policy input (float32, in [-1, 1]) from joint state [rad, rad/s] and positions [m, base frame], and
        for a ``last_action`` contract the last period's action (None: zero, as at the start).

        Raises ``ValueError`` for wrong lengths or non-finite values, so bad sensor data never reaches
        a policy.
        """
        q, dq = np.asarray(q, dtype=float), np.asarray(dq, dtype=float)
        ee, target = np.asarray(ee_position, dtype=float), np.asarray(target, dtype=float)
        values = [("q", q, self.n_joints), ("dq", dq, self.n_joints), ("ee_position", ee, 3), ("target", target, 3)]
        if last_action is not None:
            last_action = np.asarray(last_action, dtype=float)
            values.append(("last_action", last_action, self.n_joints))
        for name, value, size in values:
            if value.shape != (size,):
                raise ValueError(f"{name} must have {size} values, got shape {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} has non-finite values: {value.tolist()}")
        return self.encode_unchecked(q, dq, ee, target, last_action)

    def encode_unchecked(self, q: np.ndarray, dq: np.ndarray, ee_position: np.ndarray, target: np.ndarray,
                         last_action: np.ndarray | None = None) -> np.ndarray:
        """:meth:`encode` without its checks, for a caller that validated its inputs where they entered (the
        controller's tick: joint states by name, range and finiteness on arrival, targets likewise), so each
        value is checked once."""
        lower, span, dq_scale, axes, center = self._encoding
        target = np.asarray(target, dtype=float)[axes]
        parts = [
            2.0 * (np.asarray(q, dtype=float) - lower) / span - 1.0,
            np.asarray(dq, dtype=float) / dq_scale,
            (target - center) / self.workspace_reach,
            np.tanh((target - np.asarray(ee_position, dtype=float)[axes]) / self.error_scale),
        ]
        if self.last_action:
            parts.append(np.zeros(self.n_joints) if last_action is None else np.asarray(last_action, dtype=float))
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)

    @cached_property
    def _encoding(self) -> tuple[np.ndarray, ...]:
        """The constant arrays of :meth:`encode_unchecked`, made once (it runs at the control rate)."""
        axes = np.array(self.axis_indices)
        lower = np.array(self.q_lower)
        center = np.array(self.workspace_center)[axes]
        return lower, np.array(self.q_upper) - lower, np.array(self.dq_scale), axes, center

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.last_action:
            del data["last_action"]  # as checkpoints saved before the field existed record it
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ObservationContract:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class ActionContract:
    """Turns a policy output in [-1, 1] per joint into joint torques [Nm]."""

    joint_names: tuple[str, ...]
    torque_scale: tuple[float, ...]
    effort_limits: tuple[float, ...]
    gravity_compensation: bool
    joint_damping: tuple[float, ...] = ()
    """[Nm s/rad] per joint, applied by the arm itself (PyBullet, or the robot's own controller), or by
    :meth:`to_torque` for a caller that passes ``dq``; recorded so that a policy trained with damping is
    refused on an arm without it. Empty: none."""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.torque_scale) != n or len(self.effort_limits) != n:
            raise ValueError(f"torque_scale and effort_limits must have one value per joint ({n})")
        if self.joint_damping and len(self.joint_damping) != n:
            raise ValueError(f"joint_damping must be empty or have one value per joint ({n})")

    @property
    def size(self) -> int:
        return len(self.joint_names)

    def to_torque(self, action: np.ndarray, gravity_torque: np.ndarray | None = None,
                  dq: np.ndarray | None = None) -> np.ndarray:
        """Joint torques [Nm] for ``action``, clipped to the effort limits.

        ``gravity_torque`` is added in gravity-compensation mode, and ``joint_damping * dq`` subtracted, when
        the caller (a ROS node driving a robot that does neither by itself) supplies them; the PyBullet arm
        applies its own instead. Raises ``ValueError`` on a wrong length or a non-finite value: callers then
        command zero torque.
        """
        action = np.asarray(action, dtype=float)
        if action.shape != (self.size,):
            raise ValueError(f"action must have {self.size} values, got shape {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action has non-finite values: {action.tolist()}")
        if dq is not None:
            dq = np.asarray(dq, dtype=float)
            if dq.shape != (self.size,) or not np.all(np.isfinite(dq)):
                raise ValueError(f"dq must be {self.size} finite values, got {dq.tolist()}")
        torque = self.scale(np.clip(action, -1.0, 1.0), dq)
        if self.gravity_compensation and gravity_torque is not None:
            torque = torque + np.asarray(gravity_torque, dtype=float)
        limits = np.array(self.effort_limits)
        return np.clip(torque, -limits, limits)

    def scale(self, action: np.ndarray, dq: np.ndarray | None = None) -> np.ndarray:
        """``action * torque_scale`` [Nm], minus ``joint_damping * dq`` when ``dq`` is given: no checks and no
        clamp, for the controller's tick, whose torque guard checks and clamps every command once."""
        scale, damping = self._scaling
        torque = np.asarray(action, dtype=float) * scale
        if damping is not None and dq is not None:
            torque = torque - damping * dq
        return torque

    @cached_property
    def _scaling(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The constant arrays of :meth:`scale`, made once (it runs at the control rate)."""
        return np.array(self.torque_scale), np.array(self.joint_damping) if self.joint_damping else None

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.joint_damping:
            del data["joint_damping"]  # as checkpoints saved before the field existed record it
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ActionContract:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def contracts_for(arm: PyBulletArm, workspace_center: np.ndarray, workspace_reach: float, *,
                  last_action: bool = False) -> tuple[ObservationContract, ActionContract]:
    """The contracts for an arm and its reach task's workspace (centre [m] and reach [m]); ``last_action``: the
    observation ends with the last period's action."""
    obs = ObservationContract(
        joint_names=arm.joint_names, q_lower=_tuple(arm.lower), q_upper=_tuple(arm.upper),
        dq_scale=_tuple(arm.velocity_limits), target_axes=arm.spec.target_axes,
        workspace_center=_tuple(workspace_center), workspace_reach=float(workspace_reach), last_action=last_action)
    torque_scale = arm.effort_limits * arm.spec.action_torque_fraction
    if arm.spec.action_max_acceleration > 0:
        # rounded to 0.1 mNm: the contract is compared exactly, and the inertia's last bits are the physics
        # engine's, not the robot's
        cap = np.round(arm.spec.action_max_acceleration * arm.joint_inertia(arm.home), 4)
        torque_scale = np.minimum(torque_scale, cap)
    act = ActionContract(
        joint_names=arm.joint_names, torque_scale=_tuple(torque_scale),
        effort_limits=_tuple(arm.effort_limits), gravity_compensation=arm.gravity_compensation,
        joint_damping=_tuple(arm.joint_damping) if np.any(arm.joint_damping) else ())
    return obs, act
