"""An observation with the last action (``train --observe-last-action``): the env, the tick, a recording's replay
and evaluation all give the policy the same last-action block."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import snn_sac_ros  # noqa: F401  (registers the env)
from snn_sac_ros.commands.untrained import make_checkpoint
from snn_sac_ros.core.agent.checkpoint import CheckpointError, load_checkpoint
from snn_sac_ros.core.agent.evaluate import evaluate_checkpoint
from snn_sac_ros.core.agent.from_bag import transitions
from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.agent.rollout import ReachPlan, run_reaches
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.contracts import ObservationContract
from snn_sac_ros.core.control.tick import ReachTick
from snn_sac_ros.core.recording.reader import load_ticks
from snn_sac_ros.core.recording.run import RolloutRecorder

DT = 0.002  # 500 Hz ticks: 10 per 50 Hz policy period


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint("planar2", (32, 32), tmp_path_factory.mktemp("la") / "la.npz", last_action=True)


def test_the_env_observes_the_last_clipped_action_and_zero_after_a_reset() -> None:
    env = gym.make("snn_sac_ros/ArmReach-v0", arm="planar2", observe_last_action=True)
    contract = env.unwrapped.observation_contract
    assert contract.size == 10 and contract.layout()[-2:] == ["action/shoulder", "action/elbow"]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (10,) and np.all(obs[-2:] == 0)
    obs, *_ = env.step(np.array([0.25, -3.0]))
    np.testing.assert_allclose(obs[-2:], [0.25, -1.0])
    obs, _ = env.reset(seed=1)
    assert np.all(obs[-2:] == 0)
    env.close()


def test_a_last_action_checkpoint_is_refused_where_the_nominal_contract_is_expected(checkpoint: Path) -> None:
    with PyBulletArm("planar2") as arm:
        from snn_sac_ros.core.contracts import contracts_for
        from snn_sac_ros.core.task import ReachTask

        nominal, _ = contracts_for(arm, *ReachTask().workspace(arm))
    assert "last_action" not in nominal.to_dict()  # the checkpoints saved before the field still match
    assert ObservationContract.from_dict(nominal.to_dict()).last_action is False
    with pytest.raises(CheckpointError, match="last_action"):
        load_checkpoint(checkpoint, expected_observation=nominal)


def test_the_tick_observes_the_mean_action_of_the_last_whole_policy_period_held_over_the_next(
        checkpoint: Path) -> None:
    """As the env does: the last step's action, constant through the step; not a mean that slides every tick."""
    agent = OnlineAgent(load_checkpoint(checkpoint), spiking=True, learning=False, dt=DT, actor_only=True, seed=1)
    with PyBulletArm("planar2") as arm:
        tick = ReachTick(agent, arm.forward_kinematics, arm.velocity_limits, DT)
        tick.set_target(arm.forward_kinematics(np.array([0.9, 0.5])))
        q, dq, actions = np.array([0.1, 1.2]), np.zeros(2), []
        for i in range(34):
            result = tick.step(q, dq)
            whole = 10 * (i // 10)  # the ticks of the periods already whole
            held = np.mean(actions[whole - 10:whole], axis=0) if whole else np.zeros(2)
            np.testing.assert_allclose(result.observation[-2:], np.clip(held, -1, 1), atol=1e-6)
            actions.append(result.action)
        assert len({tuple(np.round(a, 9)) for a in actions[20:30]}) > 1  # spiking: each tick's action differs
        tick.command_dropped()  # the arm got zero torque instead: none of the period's actions went out
        assert np.all(tick.step(q, dq).observation[-2:] == 0)
        for _ in range(9):
            assert np.all(tick.step(q, dq).observation[-2:] == 0)  # a new period starts at the drop
        assert np.any(tick.step(q, dq).observation[-2:] != 0)
    agent.close()


def test_a_recordings_replay_encodes_the_observation_the_tick_gave_the_policy(checkpoint: Path,
                                                                               tmp_path: Path) -> None:
    ckpt = load_checkpoint(checkpoint)
    path = tmp_path / "run.mcap"
    with PyBulletArm("planar2", physics_dt=0.001, substeps=2) as arm:
        agent = OnlineAgent(ckpt, spiking=True, learning=False, dt=DT, seed=0, actor_only=True)
        recorder = RolloutRecorder(path, agent, arm, diagnostics_period=0.1)
        run_reaches(agent, arm, ReachPlan.random(arm, 2, seed=3, reach_seconds=0.2), on_tick=recorder)
        recorder.close()
        agent.close()
        ticks = load_ticks(path)
        found = transitions(ticks, arm, ckpt.observation_contract, control_hz=50.0)
    assert len(found) == 2 * 9 and np.any(found.obs[:, -2:] != 0)
    starts = [k for start in (0, 100) for k in range(start, start + 90, 10)]
    np.testing.assert_allclose(found.obs, ticks.observation[starts], atol=1e-6)
    np.testing.assert_allclose(found.next_obs[:, -2:], found.actions, atol=1e-6)


def test_evaluation_gives_a_last_action_checkpoint_its_own_contract(checkpoint: Path) -> None:
    result = evaluate_checkpoint(str(checkpoint), episodes=1)
    assert result["episodes"] == 1 and np.isfinite(result["mean_final_distance_m"])
