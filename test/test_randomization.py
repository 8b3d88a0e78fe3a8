"""Randomisation of the arm: profiles parse and refuse bad values, off is the nominal arm bit for bit, a seeded
randomised env repeats, and each item changes what it says it changes (real PyBullet, no mocks)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from snn_sac_ros.adapters.gym.env import ArmReachEnv
from snn_sac_ros.core.arm import PyBulletArm
from snn_sac_ros.core.arm.randomization import (
    ProfileError,
    RandomizationProfile,
    available_profiles,
    held_out_profiles,
    load_profile,
)


def _profile_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_every_shipped_profile_loads_and_off_means_none() -> None:
    assert {"train", "eval-mass30", "eval-delay10ms", "eval-encoder", "eval-payload1kg"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_profile(name)
        assert profile is not None and profile.name == name and profile.description
    for off in ("", "off", "none", None, RandomizationProfile()):
        assert load_profile(off) is None
    assert load_profile("eval-delay10ms").command_delay_ms == (10.0, 10.0)  # one number: a fixed value


@pytest.mark.parametrize("text, message", [
    ("link_mas: [0.1, 0.2]", "unknown item(s) ['link_mas']"),
    ("link_mass: [0.2, 0.1]", "has low > high"),
    ("command_delay_ms: -5", "outside [0, 1000]"),
    ("link_mass: -0.95", "outside [-0.9, 10]"),
    ("torque_noise: [1.0, 2.0]", "torque_noise must be a number"),
    ("payload_kg: heavy", "payload_kg must be a number or [low, high]"),
    ("joint_friction: [0.0, 1.0, 2.0]", "joint_friction must be a number or [low, high]"),
    ("position_noise: .nan", "position_noise must be a number"),
    ("velocity_noise: true", "velocity_noise must be a number"),
    ("- link_mass", "must be a mapping"),
    ("link_mass: [0.1", "not valid YAML"),
])
def test_bad_profiles_are_refused_with_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _profile_file(tmp_path, text)
    with pytest.raises(ProfileError) as error:
        load_profile(str(path))
    assert message in str(error.value) and str(path) in str(error.value)


def test_unknown_profile_names_list_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"unknown randomisation profile 'trian'.*'train'"):
        load_profile("trian")
    with pytest.raises(FileNotFoundError):
        load_profile(str(tmp_path / "missing.yaml"))


def _top(profile: RandomizationProfile, item: str) -> float:
    """The largest value ``profile`` can draw for ``item`` (latency with its jitter)."""
    value = max(np.atleast_1d(getattr(profile, item)))
    return value + profile.command_delay_jitter_ms if item == "command_delay_ms" else value


@pytest.mark.parametrize("training", ["train", "train-wide"])
def test_held_out_perturbations_lie_outside_the_training_ranges(training: str) -> None:
    train = load_profile(training)
    assert len(held_out_profiles()) >= 4
    for name in held_out_profiles():
        held_out = load_profile(name)
        items = [k for k, v in held_out.to_dict().items() if k not in ("name", "description") and np.any(v)]
        assert items, name
        for item in items:
            assert min(np.atleast_1d(getattr(held_out, item))) > _top(train, item), (name, item)


def _rollout(env: ArmReachEnv, seed: int, steps: int = 25) -> tuple[np.ndarray, list[float]]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), rewards


@pytest.mark.parametrize("arm", ["planar2", "kuka_iiwa"])
def test_off_is_bit_for_bit_the_nominal_arm(arm: str, tmp_path: Path) -> None:
    zeros = _profile_file(tmp_path, "description: every item at zero\nlink_mass: [0.0, 0.0]\ncommand_delay_ms: 0\n")
    nominal = ArmReachEnv(arm)
    reference = _rollout(nominal, 3)
    for off in ("off", str(zeros), RandomizationProfile()):
        env = ArmReachEnv(arm, randomize=off)
        assert env.arm.perturbation is None
        observations, rewards = _rollout(env, 3)
        assert np.array_equal(observations, reference[0]) and rewards == reference[1]
        env.close()
    nominal.close()


def test_a_seeded_randomised_env_repeats_exactly() -> None:
    env, again = ArmReachEnv("planar2", randomize="train"), ArmReachEnv("planar2", randomize="train")
    nominal = ArmReachEnv("planar2")
    first = _rollout(env, 11)
    _rollout(env, 12)  # other episodes between
    assert np.array_equal(_rollout(env, 11)[0], first[0])
    assert np.array_equal(_rollout(again, 11)[0], first[0])
    assert not np.array_equal(_rollout(nominal, 11)[0], first[0])
    # the targets stay the nominal env's: the perturbation draws from streams of its own
    for e in (env, nominal):
        e.reset(seed=5)
    assert np.array_equal(env.target, nominal.target)
    for e in (env, again, nominal):
        e.close()


def _pair(profile: RandomizationProfile, arm: str = "planar2", **kwargs: object) -> tuple[PyBulletArm, PyBulletArm]:
    """A nominal arm and a perturbed one, both just reset."""
    nominal, perturbed = PyBulletArm(arm, **kwargs), PyBulletArm(arm, **kwargs)
    perturbed.perturb(profile, seed=0)
    perturbed.reset()
    return nominal, perturbed


def test_heavier_links_accelerate_less_by_their_factor_and_detaching_restores_them() -> None:
    nominal, heavy = _pair(RandomizationProfile(link_mass=0.3))
    torque = np.array([1.0, 0.5])
    # from rest, every mass and inertia x 1.3 scales the mass matrix by 1.3: one physics step's speed by 1 / 1.3
    np.testing.assert_allclose(heavy.apply_torque(torque).dq * 1.3, nominal.apply_torque(torque).dq, rtol=1e-9)
    heavy.perturb(None)
    for arm in (heavy, nominal):
        arm.reset()
    assert np.array_equal(heavy.apply_torque(torque).dq, nominal.apply_torque(torque).dq)


@pytest.mark.parametrize("profile", [RandomizationProfile(link_mass=0.3), RandomizationProfile(payload_kg=1.0)])
def test_extra_mass_is_unknown_to_gravity_compensation(profile: RandomizationProfile) -> None:
    nominal, heavy = _pair(profile, "kuka_iiwa", substeps=20)
    np.testing.assert_allclose(heavy.gravity_torque(), nominal.gravity_torque())  # the firmware's model is nominal
    for _ in range(10):
        held, sagged = nominal.apply_torque(np.zeros(7)), heavy.apply_torque(np.zeros(7))
    assert np.abs(held.q - nominal.home).max() < 0.01 < np.abs(sagged.q - heavy.home).max()


def test_payload_is_added_at_the_end_effector_with_the_declared_one() -> None:
    _, arm = _pair(RandomizationProfile(payload_kg=1.0), "kuka_iiwa")
    base_mass = arm._ee_base_mass
    ee_mass = arm._client.getDynamicsInfo(arm._body, arm._ee_index)[0]
    assert ee_mass == pytest.approx(base_mass + 1.0)
    arm.set_payload(0.5)
    assert arm._client.getDynamicsInfo(arm._body, arm._ee_index)[0] == pytest.approx(base_mass + 1.5)
    arm.reset()  # the next episode draws again and keeps the declared payload
    assert arm._client.getDynamicsInfo(arm._body, arm._ee_index)[0] == pytest.approx(base_mass + 1.5)


def test_a_command_takes_effect_the_delay_later() -> None:
    """10 ms of latency at 1 kHz physics: the delayed arm's trajectory is the nominal one, 10 steps later."""
    nominal, delayed = _pair(RandomizationProfile(command_delay_ms=10.0))
    commands = np.random.default_rng(0).uniform(-1, 1, (60, 2))
    q_nominal = np.array([nominal.apply_torque(c).q for c in commands])
    q_delayed = np.array([delayed.apply_torque(c).q for c in commands])
    assert np.array_equal(q_delayed[:10], np.tile(delayed.home, (10, 1)))  # nothing yet
    assert np.array_equal(q_delayed[10:], q_nominal[:50])


def test_jittered_latency_keeps_commands_in_order_within_its_range() -> None:
    _, arm = _pair(RandomizationProfile(command_delay_ms=5.0, command_delay_jitter_ms=4.0))
    active = [arm.apply_torque(np.array([0.01 * (k + 1), 0.0])).effort[0] for k in range(300)]
    lag = [k - (round(a / 0.01) - 1) for k, a in enumerate(active) if a > 0]
    assert np.all(np.diff(active) >= 0)  # a later command never takes effect before an earlier one
    assert min(lag) >= 5 and max(lag) <= 9 and len(set(lag)) >= 3


def test_joint_readings_have_the_stated_noise_and_quantisation() -> None:
    _, arm = _pair(RandomizationProfile(position_noise=0.002, velocity_noise=0.05), "kuka_iiwa")
    state = arm.apply_torque(np.full(7, 0.05))
    readings = [arm.measure(state) for _ in range(4000)]
    q, dq = np.array([r.q for r in readings]), np.array([r.dq for r in readings])
    np.testing.assert_allclose(q.std(axis=0), 0.002, rtol=0.06)
    np.testing.assert_allclose(dq.std(axis=0), 0.05, rtol=0.06)
    assert np.abs(q.mean(axis=0) - state.q).max() < 4 * 0.002 / math.sqrt(4000)
    # the end effector is where the readings put it, as a controller computes it
    np.testing.assert_allclose(readings[0].ee_position, arm.forward_kinematics(readings[0].q), atol=1e-9)
    assert np.array_equal(arm.state().q, state.q)  # reading does not move the arm

    _, encoder = _pair(load_profile("eval-encoder"), "kuka_iiwa")
    state = encoder.apply_torque(np.full(7, 0.05))
    reading = encoder.measure(state)
    steps = reading.q / 0.0003835
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)  # whole encoder counts
    assert np.abs(reading.q - state.q).max() <= 0.0003835 / 2 + 1e-12
    np.testing.assert_allclose(reading.dq / 0.0384, np.round(reading.dq / 0.0384), atol=1e-6)


def test_torque_gain_and_noise_act_on_the_applied_torque() -> None:
    _, arm = _pair(RandomizationProfile(torque_gain=0.2))
    command = np.array([0.5, 0.25])
    np.testing.assert_allclose(arm.apply_torque(command).effort, command * 1.2)
    _, noisy = _pair(RandomizationProfile(torque_noise=4.0))
    inertia = noisy.perturbation.inertia
    errors = np.array([noisy.apply_torque(command).effort - command for _ in range(3000)])
    np.testing.assert_allclose(errors.std(axis=0), 4.0 * inertia, rtol=0.06)
    assert np.abs(errors.mean(axis=0)).max() < 4 * 4.0 * inertia.max() / math.sqrt(3000)


def test_friction_and_damping_oppose_motion_and_bring_a_coasting_arm_to_rest() -> None:
    _, arm = _pair(RandomizationProfile(joint_friction=5.0, joint_damping=2.0))
    passive, inertia = arm.perturbation.passive_torque, arm.perturbation.inertia
    np.testing.assert_allclose(passive(np.array([3.0, -2.0])), -5.0 * inertia * [1, -1] - 2.0 * inertia * [3.0, -2.0])
    # near rest, friction is capped at what stops the joint in a physics step: it never pushes a joint backwards
    slow = np.array([1e-4, -1e-4])
    assert np.all(np.abs(passive(slow)) <= 0.5 * inertia * np.abs(slow) / 1e-3 + 2.0 * inertia * np.abs(slow))
    assert np.all(np.sign(passive(slow)) == -np.sign(slow)) and not np.any(passive(np.zeros(2)))
    nominal, coasting = _pair(RandomizationProfile(joint_friction=20.0))
    for a in (nominal, coasting):
        a.reset(dq=np.array([1.5, -1.0]))
    for _ in range(400):
        free, slowed = nominal.apply_torque(np.zeros(2)).dq, coasting.apply_torque(np.zeros(2)).dq
    assert np.abs(slowed).max() < 1e-3 and np.abs(free).max() > 0.5


def test_period_jitter_varies_the_control_step_in_whole_physics_steps() -> None:
    _, arm = _pair(RandomizationProfile(period_jitter_ms=3.0), substeps=20)
    times = [arm.apply_torque(np.zeros(2)).sim_time for _ in range(200)]
    steps = np.round(np.diff([0.0, *times]) / 1e-3, 9)
    assert set(steps) <= set(range(17, 24)) and len(set(steps)) >= 5
    assert arm.physics_steps == round(times[-1] / 1e-3)
