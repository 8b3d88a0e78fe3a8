"""The recorded topics and their messages as plain dicts, for recording without rclpy (the core rollout).

Field names and types are the ROS 2 messages' (see :mod:`.schemas`), so a file written from these dicts and one
written from rclpy messages by the controller read the same. Topic names are the controller's and the arm's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from snn_sac_ros.core.recording import schemas

#: topic -> schema of everything a run records
TOPICS: dict[str, schemas.MessageSchema] = {
    "/joint_states": schemas.JOINT_STATE,
    "/effort_controller/commands": schemas.FLOAT64_ARRAY,
    "/target": schemas.POINT_STAMPED,
    "/ee_pose": schemas.POSE_STAMPED,
    "/diagnostics": schemas.DIAGNOSTIC_ARRAY,
    "/snn_sac_controller/tick": schemas.TICK_RECORD,
}


def header(t: float, frame_id: str = "") -> dict:
    """A ``std_msgs/Header`` at ``t`` seconds."""
    ns = round(t * 1e9)
    return {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}, "frame_id": frame_id}


def point(p: Sequence[float]) -> dict:
    return {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])}


def _floats(values: object) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def joint_state(t: float, names: Sequence[str], q: object, dq: object, effort: object) -> dict:
    return {"header": header(t), "name": list(names), "position": _floats(q), "velocity": _floats(dq),
            "effort": _floats(effort)}


def float64_array(values: object) -> dict:
    return {"layout": {"dim": [], "data_offset": 0}, "data": _floats(values)}


def point_stamped(t: float, p: Sequence[float], frame_id: str = "base_link") -> dict:
    return {"header": header(t, frame_id), "point": point(p)}


def pose_stamped(t: float, p: Sequence[float], quaternion: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
                 frame_id: str = "base_link") -> dict:
    x, y, z, w = (float(v) for v in quaternion)
    return {"header": header(t, frame_id),
            "pose": {"position": point(p), "orientation": {"x": x, "y": y, "z": z, "w": w}}}


def diagnostic_array(t: float, name: str, values: Mapping[str, object], *, message: str = "",
                     hardware_id: str = "", level: int = 0) -> dict:
    return {"header": header(t), "status": [{
        "level": level, "name": name, "message": message, "hardware_id": hardware_id,
        "values": [{"key": str(k), "value": str(v)} for k, v in values.items()]}]}


def tick_record(t: float, *, joint_names: Sequence[str], q: object, dq: object, ee: Sequence[float],
                target: Sequence[float], observation: object, action: object | None, torque: object,
                reward: float | None, learning: bool, commanded: bool, episode: int) -> dict:
    """One ``snn_sac_ros/msg/TickRecord`` (``action`` None: the policy did not run; ``reward`` None: none given)."""
    return {"header": header(t), "joint_names": list(joint_names), "position": _floats(q), "velocity": _floats(dq),
            "ee_position": point(ee), "target": point(target),
            "observation": _floats(observation), "action": [] if action is None else _floats(action),
            "torque": _floats(torque), "reward": float("nan") if reward is None else float(reward),
            "learning": bool(learning), "commanded": bool(commanded), "episode": int(episode)}
