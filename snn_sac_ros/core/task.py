"""The reach task: reachable random targets, a reward, and success at the end of an episode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm

SUCCESS_THRESHOLDS_M = (0.02, 0.05)  # the two radii every report gives


@dataclass(frozen=True)
class ReachTask:
    """Targets and reward for reaching.

    Targets are end-effector positions at joint configurations drawn uniformly within the joint limits
    (kept above ``target_min_z``, outside ``target_min_radius`` and within ``target_max_azimuth`` of the
    arm's front), so every target is reachable by construction. The reward per control step is
    ``-distance - precision_weight * tanh(distance / precision_scale) - torque_cost * mean(action**2)``
    (distance in metres, action in [-1, 1]). The first and last terms are gymnasium's Reacher; the
    precision term is there because success is judged at 2 cm: with ``-distance`` alone, the last 2 cm
    are worth 0.02 per step, too little for a critic to tell apart, and policies settled 2-3 cm short
    (median 2.4 cm). The tanh term is 25x steeper near the target and flat beyond a few centimetres.
    """

    success_threshold: float = 0.02
    torque_cost: float = 0.05
    precision_weight: float = 0.5
    precision_scale: float = 0.02

    def sample_configuration(self, arm: PyBulletArm, rng: np.random.Generator) -> np.ndarray:
        """A joint configuration whose end effector is a valid target."""
        spec = arm.spec
        for _ in range(1000):
            q = rng.uniform(arm.lower, arm.upper)
            ee = arm.forward_kinematics(q)
            if (ee[2] >= spec.target_min_z and np.hypot(ee[0], ee[1]) >= spec.target_min_radius
                    and abs(np.arctan2(ee[1], ee[0])) <= spec.target_max_azimuth):
                return q
        raise RuntimeError(f"no valid target found for {spec.name} in 1000 tries: check target_min_z, "
                           "target_min_radius and target_max_azimuth")

    def sample_target(self, arm: PyBulletArm, rng: np.random.Generator) -> np.ndarray:
        """A reachable target [m, base frame]."""
        return arm.forward_kinematics(self.sample_configuration(arm, rng))

    def workspace(self, arm: PyBulletArm, samples: int = 400, seed: int = 12345) -> tuple[np.ndarray, float]:
        """Centre and reach [m] of the target distribution, for scaling observations.

        Uses its own fixed seed so that the contract (and thus a checkpoint) never depends on the run.
        """
        rng = np.random.default_rng(seed)
        points = np.array([self.sample_target(arm, rng) for _ in range(samples)])
        axes = ["xyz".index(a) for a in arm.spec.target_axes]
        center = 0.5 * (points.max(axis=0) + points.min(axis=0))
        if arm.spec.target_axes == "xy":
            center[:2] = 0.0  # a planar arm's workspace is a disc around its base
        reach = float(np.max(np.linalg.norm(points[:, axes] - center[axes], axis=1)))
        return np.round(center, 3), round(reach * 1.05, 3)

    @staticmethod
    def distance(ee_position: np.ndarray, target: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(ee_position) - np.asarray(target)))

    def reward(self, distance: float, action: np.ndarray) -> float:
        precision = self.precision_weight * float(np.tanh(distance / self.precision_scale))
        return -distance - precision - self.torque_cost * float(np.mean(np.square(action)))

    def is_success(self, distance: float, threshold: float | None = None) -> bool:
        return distance <= (self.success_threshold if threshold is None else threshold)
