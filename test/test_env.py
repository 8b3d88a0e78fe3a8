"""The gymnasium env: registration, check_env for every arm, info keys, determinism, contracts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import snn_sac_ros
from snn_sac_ros.adapters.gym.env import ArmReachEnv
from snn_sac_ros.core.contracts import ActionContract, ObservationContract
from snn_sac_ros.core.resources import data_path

ARMS = ["planar2", "kuka_iiwa", "panda"]


@pytest.mark.parametrize("arm", [*ARMS, "urdf-path"])
def test_check_env_passes(arm: str) -> None:
    kwargs = {"arm": arm}
    if arm == "urdf-path":
        kwargs = {"arm": str(data_path("urdf", "planar2.urdf")), "joints": ["shoulder", "elbow"], "ee_link": "tip"}
    env = gym.make(snn_sac_ros.ENV_ID, render_mode="rgb_array", **kwargs)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("arm", ARMS)
def test_a_seeded_episode_repeats_exactly_after_other_episodes(arm: str) -> None:
    """Joints the policy does not control (panda's fingers) start every episode where they started the first."""
    env = gym.make(snn_sac_ros.ENV_ID, arm=arm).unwrapped
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)
    episodes = []
    for _ in range(3):
        env.reset(seed=123)
        episodes.append([env.step(action)[:2] for _ in range(50)])
    env.close()
    for other in episodes[1:]:
        for (obs, reward), (obs_again, reward_again) in zip(episodes[0], other):
            np.testing.assert_array_equal(obs, obs_again)
            assert reward == reward_again


def test_info_reports_distance_and_success_and_episodes_truncate() -> None:
    env = gym.make(snn_sac_ros.ENV_ID, arm="planar2")
    _, info = env.reset(seed=1)
    assert set(info) >= {"distance", "is_success", "success_2cm", "success_5cm"}
    np.testing.assert_allclose(info["distance"], np.linalg.norm(info["ee_position"] - info["target"]))
    steps, truncated = 0, False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
        assert not terminated and reward <= 0.0
        steps += 1
    assert steps == env.unwrapped.max_episode_steps == 100
    env.close()


def test_reaching_the_target_counts_as_success() -> None:
    env = gym.make(snn_sac_ros.ENV_ID, arm="planar2")
    q = np.array([0.3, 1.0])
    target = env.unwrapped.arm.forward_kinematics(q)
    _, info = env.reset(seed=0, options={"q": q, "target": target})
    assert info["distance"] < 1e-9 and info["is_success"] and info["success_2cm"]
    far = target + np.array([0.03, 0.0, 0.0])
    _, info = env.reset(seed=0, options={"q": q, "target": far})
    assert not info["success_2cm"] and info["success_5cm"]
    env.close()


def test_same_seed_same_episode() -> None:
    def rollout(seed: int) -> np.ndarray:
        env = gym.make(snn_sac_ros.ENV_ID, arm="kuka_iiwa")
        obs, _ = env.reset(seed=seed)
        actions = np.random.default_rng(seed).uniform(-1, 1, (30, 7)).astype(np.float32)
        out = [obs] + [env.step(a)[0] for a in actions]
        env.close()
        return np.array(out)

    np.testing.assert_array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_observation_contract_scales_into_unit_range_and_refuses_bad_input() -> None:
    env = gym.make(snn_sac_ros.ENV_ID, arm="planar2")
    contract: ObservationContract = env.unwrapped.observation_contract
    assert contract.layout() == ["q/shoulder", "q/elbow", "dq/shoulder", "dq/elbow", "target/x", "target/y",
                                 "error/x", "error/y"]
    obs = contract.encode(np.array([np.pi, -2.8]), np.array([100.0, 0.0]), np.zeros(3), np.array([0.5, 0, 0]))
    np.testing.assert_allclose(obs[:3], [1.0, -1.0, 1.0], atol=1e-5)  # URDF limit is 3.1416
    with pytest.raises(ValueError, match="non-finite"):
        contract.encode(np.array([np.nan, 0.0]), np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="q must have 2"):
        contract.encode(np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(3))
    assert ObservationContract.from_dict(contract.to_dict()) == contract
    env.close()


def test_action_contract_maps_to_torque_and_clamps() -> None:
    contract = ActionContract(joint_names=("a", "b"), torque_scale=(2.0, 1.0), effort_limits=(3.0, 1.5),
                              gravity_compensation=True)
    np.testing.assert_allclose(contract.to_torque(np.array([0.5, -1.0])), [1.0, -1.0])
    np.testing.assert_allclose(contract.to_torque(np.array([5.0, 0.0])), [2.0, 0.0])  # action clipped to 1
    np.testing.assert_allclose(contract.to_torque(np.array([1.0, 1.0]), np.array([2.0, 0.2])), [3.0, 1.2])
    with pytest.raises(ValueError, match="non-finite"):
        contract.to_torque(np.array([np.inf, 0.0]))
    assert ActionContract.from_dict(contract.to_dict()) == contract


def test_render_rgb_array_shows_the_arm() -> None:
    env = gym.make(snn_sac_ros.ENV_ID, arm="kuka_iiwa", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 5
    env.close()


def test_a_chained_reach_starts_where_the_last_ended_on_the_target_its_seed_gives() -> None:
    env = gym.make(snn_sac_ros.ENV_ID, arm="kuka_iiwa", observe_last_action=True).unwrapped
    env.reset(seed=3)
    action = np.full(7, 0.4, dtype=np.float32)
    for _ in range(20):
        env.step(action)
    moving = env.arm.state()
    obs, info = env.reset(seed=4, options={"chain": True})
    chained = env.arm.state()
    np.testing.assert_allclose(chained.q, moving.q, atol=1e-12)
    np.testing.assert_allclose(chained.dq, moving.dq, atol=1e-12)
    assert np.abs(moving.dq).max() > 0.1  # it was moving, and still is
    np.testing.assert_array_equal(obs[-7:], action)  # the command in flight is still observed
    _, home_info = env.reset(seed=4)
    np.testing.assert_array_equal(home_info["target"], info["target"])
    assert np.abs(env.arm.state().q - env.arm.home).max() <= env.arm.spec.home_noise + 1e-12
    assert np.abs(env.arm.state().q - moving.q).max() > 0.05
    env.close()


def test_chain_reaches_is_the_probability_that_a_reset_chains() -> None:
    def chained(chain_reaches: float) -> list[bool]:
        env = gym.make(snn_sac_ros.ENV_ID, arm="planar2", chain_reaches=chain_reaches).unwrapped
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        kept = []
        for _ in range(40):
            for _ in range(5):
                env.step(rng.uniform(-1, 1, 2).astype(np.float32))
            before = env.arm.state().q
            env.reset()
            kept.append(bool(np.array_equal(env.arm.state().q, before)))
        env.close()
        return kept

    assert not any(chained(0.0))
    assert all(chained(1.0))
    assert 5 < sum(chained(0.5)) < 35
    with pytest.raises(ValueError, match="chain_reaches"):
        gym.make(snn_sac_ros.ENV_ID, arm="planar2", chain_reaches=1.5)


def test_a_torque_added_beside_the_policy_sees_what_the_policy_saw_and_acts() -> None:
    """An adaptation pathway runs beside the policy on the sensed state (noisy encoders here), as in the controller."""
    seen = []

    def beside(state: object, target: np.ndarray, torque: np.ndarray) -> np.ndarray:
        seen.append((state, target.copy()))
        return np.full(2, 0.5)

    runs = {}
    for added in (None, beside):
        env = ArmReachEnv("planar2", randomize="eval-encoder", added_torque=added)
        obs, _ = env.reset(seed=3)
        true_q = env.arm.state().q
        runs[added is None] = env.step(np.zeros(2, dtype=np.float32))[0]
        if added is not None:
            state, target = seen[0]
            np.testing.assert_array_equal(target, env.target)
            contract = env.observation_contract
            np.testing.assert_allclose(contract.encode(state.q, state.dq, state.ee_position, target), obs, atol=1e-6)
            assert not np.array_equal(state.q, true_q)  # the encoders' reading, not the truth
        env.close()
    assert len(seen) == 1 and not np.allclose(runs[True], runs[False])
