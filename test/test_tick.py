"""The one control tick (core/control/tick.py) that the controller node and the core rollout both run."""

from __future__ import annotations

import numpy as np
import pytest

from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.control.tick import ReachTick, target_problem, tick_problem
from snn_sac_ros.core.joint_input import order_joint_state
from snn_sac_ros.core.resources import shipped_checkpoint


@pytest.fixture(scope="module")
def arm() -> PyBulletArm:
    with PyBulletArm("planar2") as model:
        yield model


def _tick(arm: PyBulletArm, learning: bool) -> ReachTick:
    agent = OnlineAgent(load_checkpoint(shipped_checkpoint("planar2")), spiking=False, learning=learning, dt=0.002,
                        online_lr=1e-3)
    return ReachTick(agent, arm.forward_kinematics, arm.velocity_limits, 0.002)


def test_a_new_target_ends_the_episode_and_returns_the_reach_distance(arm: PyBulletArm) -> None:
    tick = _tick(arm, learning=False)
    target = arm.forward_kinematics(np.array([0.9, 0.5]))
    assert tick.set_target(target) is None  # the first target ends no reach
    result = tick.step(np.array([0.0, 1.2]), np.zeros(2))
    assert result.torque is not None and result.torque.shape == (2,) and not result.learned
    assert tick.set_target(target.copy()) is None  # the same target again: same episode
    ended = tick.set_target(arm.forward_kinematics(np.array([-0.5, 1.0])))
    assert ended == pytest.approx(result.distance)
    with pytest.raises(RuntimeError, match="target"):
        ReachTick(tick.agent, arm.forward_kinematics, arm.velocity_limits, 0.002).step(np.zeros(2), np.zeros(2))


def test_jumping_states_are_acted_on_but_never_learned_from(arm: PyBulletArm) -> None:
    """A state that moved farther than the arm can in a tick does not train the policy; smooth states do."""
    tick = _tick(arm, learning=True)
    tick.set_target(arm.forward_kinematics(np.array([0.9, 0.5])))
    before = tick.agent.weights_digest()
    rng = np.random.default_rng(0)
    for _ in range(40):
        result = tick.step(rng.uniform(arm.lower, arm.upper), np.zeros(2))
        assert result.torque is not None and not result.learned
    assert tick.agent.learning, "learning must be back on after a jumped tick"
    assert tick.agent.weights_digest() == before
    assert tick.jumps == 40
    q = np.array([0.0, 1.2])
    tick.step(q, np.zeros(2))  # compared with the last random state: a jump too
    learned = [tick.step(q + 0.001 * k, np.full(2, 0.5)).learned for k in range(1, 40)]
    assert all(learned) and tick.agent.weights_digest() != before


def test_continuous_joints_are_wrapped_not_refused(arm: PyBulletArm) -> None:
    continuous = np.array([True, False])
    q, _ = order_joint_state(["shoulder", "elbow"], [4.0 + 2 * np.pi, 1.2], [0.0, 0.0], ("shoulder", "elbow"),
                             lower=arm.lower, upper=arm.upper, velocity_limits=arm.velocity_limits,
                             continuous=continuous)
    assert q[0] == pytest.approx(4.0 - 2 * np.pi) and q[1] == 1.2
    tick = ReachTick(_tick(arm, learning=False).agent, arm.forward_kinematics, arm.velocity_limits, 0.002,
                     continuous=continuous)
    tick.start_from(np.array([np.pi - 0.001, 1.2]), np.zeros(2))
    assert not tick.jumped(np.array([-np.pi + 0.001, 1.2]), np.zeros(2), 0.002)  # across the wrap: 2 mrad


def test_targets_outside_the_trained_workspace_are_refused(arm: PyBulletArm) -> None:
    contract = load_checkpoint(shipped_checkpoint("planar2")).observation_contract
    assert target_problem(arm.forward_kinematics(np.array([0.9, 0.5])), contract, np.pi) is None
    assert target_problem(np.array([np.nan, 0.0, 0.0]), contract, np.pi)[0] == "target_non_finite"
    assert target_problem(np.array([5.0, 0.0, 0.0]), contract, np.pi)[0] == "target_out_of_reach"
    assert target_problem(np.array([-0.3, 0.1, 0.0]), contract, np.pi / 2)[0] == "target_outside_training"


def test_the_unchecked_encoding_equals_the_checked_one() -> None:
    contract = load_checkpoint(shipped_checkpoint("planar2")).observation_contract
    args = (np.array([0.3, -2.0]), np.array([30.0, -1.0]), np.array([0.2, 0.1, 0.0]), np.array([0.1, 0.4, 0.0]))
    np.testing.assert_array_equal(contract.encode(*args), contract.encode_unchecked(*args))


def test_a_state_stepped_on_again_keeps_its_verdict(arm: PyBulletArm) -> None:
    """A loop faster than the states steps twice on one state: a teleported state is not learned from the
    second time either (it did not move from itself), and a smooth one still is."""
    tick = _tick(arm, learning=True)
    tick.set_target(arm.forward_kinematics(np.array([0.9, 0.5])))
    q = np.array([0.0, 1.2])
    tick.start_from(q, np.zeros(2))
    before = tick.agent.weights_digest()
    for far in (np.array([2.5, 2.0]), np.array([-2.5, -2.0])) * 3:
        assert not tick.step(far, np.zeros(2)).learned
        assert not tick.step(far, np.zeros(2), new_state=False).learned
    assert tick.agent.weights_digest() == before
    tick.step(q, np.zeros(2))  # a jump back
    assert tick.step(q + 0.001, np.zeros(2)).learned and tick.step(q + 0.001, np.zeros(2), new_state=False).learned


def test_a_tick_without_a_joint_state_in_its_snapshot_runs_no_policy() -> None:
    """The guard may already know of a state the tick's snapshot does not hold (it arrived in between): no step."""
    assert tick_problem(False, None, "", True) == "no joint states"
    assert tick_problem(True, None, "", True) is None
    assert tick_problem(True, ("nan", "joint state has NaN"), "", True) == "joint state has NaN"
    assert tick_problem(True, None, "measuring the joint-state period (3 of 20 states)", True).startswith("measuring")
    assert tick_problem(True, None, "", False) == "no target received yet"


def test_a_step_left_unfinished_learns_in_finish_and_a_jumped_one_not_at_all(arm: PyBulletArm) -> None:
    """The controller publishes between ``step(..., finish=False)`` and ``finish()``: the learning is in finish, and a
    jumped tick's learning stays off through it."""
    tick = _tick(arm, learning=True)
    tick.set_target(arm.forward_kinematics(np.array([0.9, 0.5])))
    q = np.array([0.0, 1.2])
    tick.step(q, np.zeros(2))
    before = tick.agent.weights_digest()
    result = tick.step(q + 0.001, np.full(2, 0.5), finish=False)
    assert result.learned and result.torque is not None and tick.agent.weights_digest() == before
    assert tick.finish() == "" and tick.agent.weights_digest() != before
    assert tick.finish() == ""  # nothing left to finish
    before = tick.agent.weights_digest()
    assert not tick.step(q + 1.0, np.zeros(2), finish=False).learned  # a jump
    assert not tick.agent.learning  # off until its learning step ran
    tick.finish()
    assert tick.agent.learning and tick.agent.weights_digest() == before
