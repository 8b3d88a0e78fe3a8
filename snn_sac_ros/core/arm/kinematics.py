"""The end effector's position from joint positions, as one compiled pass down the arm's kinematic chain.

The controller computes the end effector on every tick; PyBullet does it by setting each joint and asking for
the link's state (a call per joint and one more: 10-50 us a tick). :class:`KinematicChain` reads the chain once
from the loaded body (joint origins, axes and types, each link's inertial frame, as PyBullet keeps them) and
computes the same point in a numba kernel in 2-3 us. It agrees with PyBullet's ``getLinkState`` to within
1e-7 m (tested on every preset and on a URDF the package does not ship).

PyBullet's frames: a link's frame is its inertial (centre of mass) frame. A joint's origin lies in the parent
link's inertial frame, its axis in the child's; the child's URDF frame (the end effector's, for its link) is at
the pivot, and its centre of mass at the URDF's inertial origin from there.
"""

from __future__ import annotations

import numba
import numpy as np
import pybullet as pb

_REVOLUTE, _PRISMATIC, _FIXED = 0, 1, 2
_KINDS = {pb.JOINT_REVOLUTE: _REVOLUTE, pb.JOINT_PRISMATIC: _PRISMATIC, pb.JOINT_FIXED: _FIXED}


def _rotation(quaternion: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(quaternion), dtype=float).reshape(3, 3)


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _turn(r: np.ndarray, m: np.ndarray, p: np.ndarray, v: np.ndarray) -> None:  # pragma: no cover
    """In place: ``p += r @ v``, then ``r = r @ m`` (3 x 3, written out: no BLAS call for a 3 x 3 product)."""
    for i in range(3):
        p[i] += r[i, 0] * v[0] + r[i, 1] * v[1] + r[i, 2] * v[2]
    for i in range(3):
        a, b, c = r[i, 0], r[i, 1], r[i, 2]
        for j in range(3):
            r[i, j] = a * m[0, j] + b * m[1, j] + c * m[2, j]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _chain_position(q: np.ndarray, joints: np.ndarray, constant: np.ndarray, frames: np.ndarray,
                    root: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``joints[i]``: the index in ``q`` of the chain's i-th joint (-1: at ``constant[i]``) and its kind;
    ``frames[i]``: the joint's axis (in its link's inertial frame), its origin in the parent's inertial frame
    (position, rotation rows), and the offset from the pivot to its link's centre of mass (in the link's inertial
    frame); ``root``: the base's inertial frame (position, rotation rows) and the base frame's position, which is
    subtracted at the end."""
    p = root[0].copy()
    r = root[1:4].copy()
    zero = np.zeros(3)
    turn = np.empty((3, 3))
    last = joints.shape[0] - 1
    for i in range(joints.shape[0]):
        frame = frames[i]
        _turn(r, frame[2:5], p, frame[1])
        source, kind = joints[i, 0], joints[i, 1]
        angle = q[source] if source >= 0 else constant[i]
        x, y, z = frame[0, 0], frame[0, 1], frame[0, 2]
        if kind == _REVOLUTE:
            c, s = np.cos(angle), np.sin(angle)
            t = 1.0 - c
            turn[0, 0], turn[0, 1], turn[0, 2] = t * x * x + c, t * x * y - s * z, t * x * z + s * y
            turn[1, 0], turn[1, 1], turn[1, 2] = t * x * y + s * z, t * y * y + c, t * y * z - s * x
            turn[2, 0], turn[2, 1], turn[2, 2] = t * x * z - s * y, t * y * z + s * x, t * z * z + c
            _turn(r, turn, p, zero)
        elif kind == _PRISMATIC:
            for k in range(3):
                p[k] += angle * (r[k, 0] * x + r[k, 1] * y + r[k, 2] * z)
        if i < last:
            for k in range(3):
                p[k] += r[k, 0] * frame[5, 0] + r[k, 1] * frame[5, 1] + r[k, 2] * frame[5, 2]
    return p - root[4]


class KinematicChain:
    """Base to end-effector link of a loaded PyBullet body; :meth:`position` maps the controlled joints' positions
    [rad, m] to the end effector [m, base frame] as ``PyBulletArm.forward_kinematics`` does, the joints outside the
    controlled ones at ``held`` (joint index -> position; others at zero)."""

    def __init__(self, client: object, body: int, *, ee_index: int, controlled: list[int], held: dict[int, float],
                 base_position: np.ndarray) -> None:
        chain = []
        link = ee_index
        while link >= 0:
            chain.append(link)
            link = client.getJointInfo(body, link)[16]
        chain.reverse()
        rows = []
        for link in chain:
            info = client.getJointInfo(body, link)
            if info[2] not in _KINDS:
                raise ValueError(f"joint {info[1].decode()!r} of type {info[2]} is on the end effector's chain: "
                                 "only revolute, prismatic and fixed joints are modelled")
            dynamics = client.getDynamicsInfo(body, link)
            inertial = _rotation(dynamics[4])
            # PyBullet's joint orientation is the inverse of the parent-to-child inertial frame rotation; the pivot
            # to the child's centre of mass, in the child's inertial frame, is the inertial origin rotated back
            frame = np.vstack([info[13], info[14], _rotation(info[15]).T, inertial.T @ np.asarray(dynamics[3])])
            rows.append((controlled.index(link) if link in controlled else -1, held.get(link, 0.0), _KINDS[info[2]],
                         frame))
        root_p, root_q = client.getBasePositionAndOrientation(body)
        self._joints = np.array([(row[0], row[2]) for row in rows], dtype=np.int64).reshape(len(rows), 2)
        self._constant = np.array([row[1] for row in rows], dtype=float)
        self._frames = np.array([row[3] for row in rows], dtype=float).reshape(len(rows), 6, 3)
        self._root = np.vstack([root_p, _rotation(root_q), base_position]).astype(float)
        self.n_joints = len(controlled)
        self.position(np.zeros(self.n_joints))  # compiled (or loaded from numba's cache) now, not in a control tick

    def position(self, q: np.ndarray) -> np.ndarray:
        """The end effector [m, base frame] at the controlled joints' positions ``q``."""
        return _chain_position(np.asarray(q, dtype=float), self._joints, self._constant, self._frames, self._root)
