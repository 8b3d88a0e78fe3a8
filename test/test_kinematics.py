"""The compiled kinematic chain the controller ticks with gives PyBullet's end effector on every arm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet_data
import pytest

from snn_sac_ros.core.arm import PyBulletArm

#: a URDF the package does not ship, whose links' inertial frames are rotated (the case a chain gets wrong first)
XARM = str(Path(pybullet_data.getDataPath()) / "xarm" / "xarm6_robot.urdf")


@pytest.mark.parametrize("arm_name", ["planar2", "kuka_iiwa", "panda", pytest.param(XARM, id="xarm6_urdf")])
def test_the_chain_gives_pybullets_end_effector(arm_name: str) -> None:
    with PyBulletArm(arm_name) as arm:
        chain = arm.kinematic_chain()
        rng = np.random.default_rng(0)
        for q in rng.uniform(arm.lower, arm.upper, size=(100, arm.n_joints)):
            np.testing.assert_allclose(chain.position(q), arm.forward_kinematics(q), rtol=0, atol=1e-6)


def test_the_chain_leaves_the_arm_where_it_is() -> None:
    """Nothing in PyBullet is moved: the model a controller keeps has no state to restore."""
    with PyBulletArm("kuka_iiwa") as arm:
        before = arm.state().q
        arm.kinematic_chain().position(arm.upper)
        np.testing.assert_array_equal(arm.state().q, before)
