"""Physics sanity of the PyBullet torque arm: the set-up mistakes these catch are silent otherwise."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from snn_sac_ros.core.arm import PRESETS, PyBulletArm, resolve_arm
from snn_sac_ros.core.contracts import ActionContract, contracts_for
from snn_sac_ros.core.resources import data_path
from snn_sac_ros.core.task import ReachTask


@pytest.fixture(scope="module", params=["kuka_iiwa", "panda"])
def seven_dof(request: pytest.FixtureRequest) -> str:
    return request.param


def _hold_zero(arm: PyBulletArm, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    start = arm.reset()
    state = start
    for _ in range(round(seconds / arm.control_dt)):
        state = arm.apply_torque(np.zeros(arm.n_joints))
    return start.q, state.q


def test_seven_dof_arm_falls_under_gravity_with_zero_torque(seven_dof: str) -> None:
    with PyBulletArm(seven_dof, substeps=10, gravity_compensation=False) as arm:
        start_ee = arm.state().ee_position
        q0, q1 = _hold_zero(arm, 0.5)
        assert np.max(np.abs(q1 - q0)) > 0.3
        assert arm.state().ee_position[2] < start_ee[2] - 0.1


def test_gravity_compensation_holds_the_arm_still(seven_dof: str) -> None:
    with PyBulletArm(seven_dof, substeps=10, gravity_compensation=True) as arm:
        q0, q1 = _hold_zero(arm, 1.0)
        assert np.max(np.abs(q1 - q0)) < 1e-3


def test_gravity_torque_is_nonzero_for_a_vertical_arm_and_zero_for_the_planar_one() -> None:
    with PyBulletArm("kuka_iiwa") as kuka, PyBulletArm("planar2") as planar:
        assert np.max(np.abs(kuka.gravity_torque())) > 1.0
        assert np.max(np.abs(planar.gravity_torque())) < 1e-9


def test_torque_above_the_effort_limit_is_clamped() -> None:
    with PyBulletArm("planar2", gravity_compensation=False) as arm:
        huge = np.array([1e6, -1e6])
        state = arm.apply_torque(huge)
        np.testing.assert_allclose(state.effort, [arm.effort_limits[0], -arm.effort_limits[1]])
        assert np.all(arm.effort_limits == [3.0, 1.5])  # read from the shipped URDF


def test_torque_moves_the_planar_arm_the_right_way() -> None:
    with PyBulletArm("planar2", substeps=10) as arm:
        start = arm.reset()
        for _ in range(20):
            state = arm.apply_torque(np.array([1.0, 0.0]))
        assert state.q[0] > start.q[0] + 0.05
        assert state.dq[0] > 0.0
        assert state.sim_time == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [np.array([np.nan, 0.0]), np.array([np.inf, 0.0]), np.zeros(3)])
def test_bad_torque_commands_raise_before_anything_moves(bad: np.ndarray) -> None:
    with PyBulletArm("planar2") as arm:
        before = arm.state()
        with pytest.raises(ValueError, match="torque"):
            arm.apply_torque(bad)
        after = arm.state()
        np.testing.assert_array_equal(before.q, after.q)
        assert after.sim_time == before.sim_time


def test_same_commands_give_the_same_trajectory() -> None:
    torques = np.random.default_rng(3).uniform(-2, 2, (50, 7))

    def trajectory() -> np.ndarray:
        with PyBulletArm("kuka_iiwa", substeps=5) as arm:
            return np.array([arm.apply_torque(t).q for t in torques])

    np.testing.assert_array_equal(trajectory(), trajectory())


@pytest.mark.parametrize("arm_name", sorted(PRESETS))
def test_targets_are_reachable_by_inverse_kinematics(arm_name: str) -> None:
    task = ReachTask()
    rng = np.random.default_rng(7)
    with PyBulletArm(arm_name) as arm:
        for _ in range(15):
            target = task.sample_target(arm, rng)
            assert target[2] >= arm.spec.target_min_z
            q = arm.inverse_kinematics(target)
            assert np.all(q >= arm.lower - 1e-6) and np.all(q <= arm.upper + 1e-6)
            assert np.linalg.norm(arm.forward_kinematics(q) - target) < task.success_threshold


def test_targets_stay_within_the_specs_azimuth() -> None:
    task = ReachTask()
    spec = resolve_arm("kuka_iiwa")

    def azimuths(max_azimuth: float) -> np.ndarray:
        rng = np.random.default_rng(3)
        with PyBulletArm(replace(spec, target_max_azimuth=max_azimuth)) as arm:
            targets = np.array([task.sample_target(arm, rng) for _ in range(60)])
        return np.abs(np.arctan2(targets[:, 1], targets[:, 0]))

    assert np.all(azimuths(0.5) <= 0.5)
    assert np.any(azimuths(np.pi) > 0.5)


def test_joint_damping_brings_a_coasting_joint_to_rest() -> None:
    spec = replace(resolve_arm("kuka_iiwa"), damping_seconds=0.0)

    def speed_after(damping_seconds: float, seconds: float) -> tuple[float, float]:
        with PyBulletArm(replace(spec, damping_seconds=damping_seconds), substeps=10) as arm:
            start = np.zeros(arm.n_joints)
            start[0] = 1.0
            arm.reset(arm.home, start)
            for _ in range(round(seconds / arm.control_dt)):
                state = arm.apply_torque(np.zeros(arm.n_joints))
            _, act = contracts_for(arm, np.zeros(3), 1.0)
            return abs(state.dq[0]), float(np.sum(act.joint_damping))

    coasting, no_damping = speed_after(0.0, 0.6)
    damped, damping = speed_after(0.2, 0.6)  # three time constants: alone, e^-3 = 0.05 of the speed is left
    assert coasting > 0.4 and no_damping == 0.0  # the other joints take up some of its motion
    assert damped < 0.2 and damping > 0.0, damped


def test_the_contract_adds_joint_damping_only_for_a_caller_that_asks() -> None:
    plain = ActionContract(joint_names=("a", "b"), torque_scale=(2.0, 1.0), effort_limits=(5.0, 5.0),
                           gravity_compensation=True)
    damped = replace(plain, joint_damping=(0.5, 0.25))
    action, dq = np.array([0.5, -0.5]), np.array([2.0, -4.0])
    np.testing.assert_allclose(damped.to_torque(action), [1.0, -0.5])  # the arm damps by itself
    np.testing.assert_allclose(damped.to_torque(action, dq=dq), [0.0, 0.5])
    np.testing.assert_allclose(plain.to_torque(action, dq=dq), [1.0, -0.5])
    with pytest.raises(ValueError, match="dq"):
        damped.to_torque(action, dq=np.array([np.nan, 0.0]))


def test_forward_kinematics_of_planar2_matches_its_link_lengths() -> None:
    with PyBulletArm("planar2") as arm:
        np.testing.assert_allclose(arm.forward_kinematics(np.zeros(2))[:2], [0.55, 0.0], atol=1e-9)
        np.testing.assert_allclose(arm.forward_kinematics(np.array([np.pi / 2, 0.0]))[:2], [0.0, 0.55], atol=1e-9)
        # Forward kinematics does not disturb the arm's state.
        np.testing.assert_allclose(arm.state().q, arm.home)


def test_custom_urdf_path_with_joint_list() -> None:
    path = str(data_path("urdf", "planar2.urdf"))
    with PyBulletArm(path, joints=["elbow"], ee_link="tip") as arm:
        assert arm.joint_names == ("elbow",)
        assert arm.effort_limits.tolist() == [1.5]
    with pytest.raises(ValueError, match="not movable joints"):
        PyBulletArm(path, joints=["wrist"])
    with pytest.raises(ValueError, match="unknown arm"):
        resolve_arm("ur5")


def test_payload_changes_the_dynamics() -> None:
    def swing(payload: float) -> float:
        with PyBulletArm("planar2", substeps=10) as arm:
            arm.set_payload(payload)
            for _ in range(20):
                state = arm.apply_torque(np.array([1.0, 0.0]))
            return float(state.q[0] - arm.home[0])

    assert swing(1.0) < 0.7 * swing(0.0)


def test_render_draws_the_arm_without_a_display() -> None:
    with PyBulletArm("planar2") as arm:
        image = arm.render(160, 120)
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8
        assert image.std() > 5  # not a blank frame


@pytest.mark.parametrize("arm_name", ["planar2", "kuka_iiwa", "panda"])
def test_jacobian_matches_finite_differences_of_forward_kinematics(arm_name: str) -> None:
    with PyBulletArm(arm_name) as arm:
        q = np.random.default_rng(0).uniform(arm.lower, arm.upper) * 0.8
        eps = 1e-4
        numeric = np.stack([(arm.forward_kinematics(q + eps * e) - arm.forward_kinematics(q - eps * e)) / (2 * eps)
                            for e in np.eye(arm.n_joints)], axis=1)
        jacobian = arm.jacobian(q)
        assert jacobian.shape == (3, arm.n_joints)
        np.testing.assert_allclose(jacobian, numeric, atol=1e-3)
        arm.reset(q)
        np.testing.assert_allclose(arm.jacobian(), jacobian)  # default: the arm's current configuration


def test_reward_is_steepest_where_success_is_judged() -> None:
    """The precision term makes the last 2 cm worth more than 20 cm far away; weight 0 is Reacher's reward."""
    task, action = ReachTask(), np.zeros(2)

    def gain(near: float, far: float, t: ReachTask = task) -> float:
        return t.reward(near, action) - t.reward(far, action)

    assert gain(0.0, 0.02) > 10 * gain(0.20, 0.22) > 0
    reacher = ReachTask(precision_weight=0.0)
    assert reacher.reward(0.3, np.ones(2)) == pytest.approx(-0.3 - reacher.torque_cost)
    assert gain(0.0, 0.02, reacher) == pytest.approx(gain(0.20, 0.22, reacher))


@pytest.mark.parametrize("arm_name", ["planar2", "kuka_iiwa", "panda"])
def test_joint_inertia_is_the_torque_per_unit_acceleration_of_that_joint(arm_name: str) -> None:
    """Cross-checks the mass-matrix diagonal against PyBullet's inverse dynamics, a separate code path."""
    with PyBulletArm(arm_name) as arm:
        q = np.random.default_rng(1).uniform(arm.lower, arm.upper) * 0.8
        n = len(arm._movable_ids)
        positions, zeros = arm._movable_positions(q), [0.0] * n
        still = np.array(arm._inverse_dynamics(arm._body, positions, zeros, zeros))
        expected = []
        for dof in arm._controlled_dofs:
            unit = [0.0] * n
            unit[dof] = 1.0
            expected.append(arm._inverse_dynamics(arm._body, positions, zeros, unit)[dof] - still[dof])
        np.testing.assert_allclose(arm.joint_inertia(q), expected, rtol=1e-6, atol=1e-9)
        assert np.all(arm.joint_inertia(q) > 0)


def test_full_action_for_one_step_moves_every_kuka_joint_at_a_usable_speed() -> None:
    """With 30 Nm on every joint, one 20 ms step at full action left kuka's wrist turning at 31-62 rad/s."""
    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)

    env = gym.make("snn_sac_ros/ArmReach-v0", arm="kuka_iiwa")
    base = env.unwrapped
    env.reset(seed=0, options={"q": base.arm.home})
    scale = np.array(base.action_contract.torque_scale)
    acceleration = scale / base.arm.joint_inertia(base.arm.home)
    assert np.all(acceleration <= 100.1)  # the spec's cap at home (the scale is rounded to 0.1 mNm)
    np.testing.assert_allclose(scale[:4], 30.0)  # the heavy joints keep 10 % of the URDF's 300 Nm
    env.step(np.ones(7, dtype=np.float32))
    speed = np.abs(base.arm.state().dq)
    assert np.all(speed < 5.0), speed
    assert np.all(speed[:6] > 0.05), speed  # every joint that moves the end effector still moves
    env.close()


def test_the_inverse_dynamics_explain_the_simulated_arms_motion() -> None:
    """PyBullet's joints apply the URDF's <dynamics damping> (0.5 Nm s/rad on every kuka_iiwa joint) and its
    inverse dynamics leave it out: a model-based teacher then saw a third of the wrist's action range as a payload."""
    rng = np.random.default_rng(0)
    with PyBulletArm("kuka_iiwa", physics_dt=0.002) as arm, PyBulletArm("kuka_iiwa") as model:
        np.testing.assert_allclose(model.urdf_damping, 0.5)
        state, unexplained = arm.reset(), []
        for k in range(600):
            if k % 25 == 0:
                torque = rng.uniform(-0.5, 0.5, 7) * np.array([30, 30, 30, 30, 1.3, 0.9, 0.1])
            q, dq = state.q, state.dq
            state = arm.apply_torque(torque)
            unexplained.append(state.effort - model.inverse_dynamics(q, dq, (state.dq - dq) / arm.control_dt))
        mean = np.abs(unexplained).mean(axis=0)
        assert np.all(mean < 0.12), mean  # without the damping: 0.17-0.85 Nm on joints 1-6
