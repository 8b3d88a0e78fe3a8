"""Arms: descriptions (:mod:`.specs`) and the PyBullet torque interface (:mod:`.pybullet_arm`)."""

from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm
from snn_sac_ros.core.arm.specs import PRESETS, ArmSpec, resolve_arm

__all__ = ["PRESETS", "ArmSpec", "ArmState", "PyBulletArm", "resolve_arm"]
