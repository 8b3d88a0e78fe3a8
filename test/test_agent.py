"""The spiking SAC agent: CLI train + eval smoke run, the deployed Nengo actor against the trainer, online
learning through the OnlineAgent API, and learning sanity checks that fail when learning is broken."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.checkpoint import load_checkpoint, save_checkpoint
from snn_sac_ros.core.agent.online import DampingLearning, OnlineAgent, resume_source
from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.networks.rate import LIFRateNet


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint from a very short training run of the real train command."""
    out = tmp_path_factory.mktemp("train")
    assert main(["train", "--arm", "planar2", "--steps", "400", "--learning-starts", "200", "--batch-size", "32",
                 "--hidden", "32", "32", "--seed", "1", "--out", str(out), "--no-progress", "--json"]) == 0
    return out / "checkpoint.npz"


def test_train_and_eval_cli_smoke(tiny_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny_checkpoint.parent
    assert (out / "learning_curve.csv").read_text().startswith("step,episode,return")
    assert (out / "learning_curve.png").stat().st_size > 1000
    meta = load_checkpoint(tiny_checkpoint).metadata
    assert meta["arm"] == "planar2" and meta["seed"] == 1 and meta["hidden"] == [32, 32]
    assert meta["train_command"] == ("snn-sac-ros train --arm planar2 --steps 400 --learning-starts 200 "
                                     f"--batch-size 32 --hidden 32 32 --seed 1 --out {out} --no-progress --json")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--episodes", "2", "--spiking", "--json"]) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["episodes"] == 2 and result["spiking"] is True
    for key in ("success_2cm", "success_5cm", "mean_final_distance_m", "mean_return"):
        assert np.isfinite(result[key])


def test_rate_mode_nengo_actor_equals_trainer(tiny_checkpoint: Path) -> None:
    """The LIF-rate Nengo actor reproduces the NumPy trainer's deterministic action exactly."""
    ckpt = load_checkpoint(tiny_checkpoint)
    agent = OnlineAgent(ckpt, spiking=False, learning=False, actor_only=True)
    sac = SpikingSAC(ckpt.metadata["obs_dim"], ckpt.metadata["act_dim"],
                     SACConfig.from_dict(ckpt.metadata["sac_config"]))
    sac.load_arrays(ckpt.arrays)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs = rng.uniform(-1, 1, agent.obs_dim)
        np.testing.assert_allclose(agent.step(obs), sac.act(obs, deterministic=True), rtol=1e-4, atol=1e-5)


def test_online_agent_learns_saves_and_toggles(tiny_checkpoint: Path, tmp_path: Path) -> None:
    agent = OnlineAgent.from_checkpoint(tiny_checkpoint, spiking=True, learning=True, dt=0.001, seed=0)
    assert agent.observation_contract.joint_names == ("shoulder", "elbow")
    rng = np.random.default_rng(1)
    obs = rng.uniform(-0.5, 0.5, agent.obs_dim)
    before = agent.weights_digest()
    for _ in range(50):
        action = agent.step(obs, reward=-0.3)
        assert action.shape == (agent.act_dim,) and np.all(np.abs(action) <= 1.0)
    learned = agent.weights_digest()
    assert learned != before and agent.updates > 0
    agent.learning = False
    for _ in range(20):
        agent.step(obs, reward=-0.3)
    assert agent.weights_digest() == learned  # learning off: weights frozen
    assert agent.spike_raster(16).shape == (70, 16) and agent.spike_raster(16).any()
    saved = agent.save(tmp_path / "online.npz")
    again = OnlineAgent.from_checkpoint(saved, spiking=True, learning=False,
                                        expected_observation=agent.observation_contract,
                                        expected_action=agent.action_contract)
    assert again.weights_digest() == learned
    assert again.metadata["online_updates"] == agent.updates
    with pytest.raises(ValueError, match="observation"):
        agent.step(np.full(agent.obs_dim, np.nan))


def test_resume_runs_saved_weights_only_if_they_were_learned_from_the_checkpoint(tiny_checkpoint: Path,
                                                                                 tmp_path: Path) -> None:
    """Online weights learned from another checkpoint (an earlier release's) are set aside, not run, not lost."""
    agent = OnlineAgent.from_checkpoint(tiny_checkpoint, spiking=False, learning=True, dt=0.001, seed=0)
    for _ in range(30):
        agent.step(np.full(agent.obs_dim, 0.2), reward=-0.3)
    save = agent.save(tmp_path / "online.npz")
    agent.close()
    assert resume_source(save, tiny_checkpoint) == (save, None)
    other = load_checkpoint(tiny_checkpoint)
    arrays = {**other.arrays, "actor/W0": other.arrays["actor/W0"] + 0.01}
    meta = {k: v for k, v in other.metadata.items() if k != "format_version"}
    other_path = save_checkpoint(tmp_path / "other.npz", arrays, meta)
    learned = save.read_bytes()
    source, aside = resume_source(save, other_path)
    assert source == other_path and not save.exists()
    assert aside is not None and aside.parent == save.parent and aside.read_bytes() == learned
    assert resume_source(save, other_path) == (other_path, None)


@pytest.mark.parametrize("feedback", ["exact", "random"])
def test_critic_td_error_falls_on_a_fixed_batch(feedback: str) -> None:
    """With gamma = 0 the critic's TD target is the reward: the local rules must fit it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (128, 6)).astype(np.float32)
    target = (np.sin(2 * x[:, :1]) * x[:, 1:2] + 0.5 * x[:, 2:3] ** 2).astype(np.float32)
    net = LIFRateNet((6, 64, 64, 1), LIFParams(), feedback, seed=0)
    net.calibrate(x)
    first = float(np.mean((net.forward(x)[0] - target) ** 2))
    for _ in range(300):
        y, cache = net.forward(x)
        net.learn(cache, y - target, 3e-3)
    last = float(np.mean((net.forward(x)[0] - target) ** 2))
    assert last < 0.2 * first, f"{feedback}: mse {first:.4f} -> {last:.4f}"


def test_actor_learns_an_easy_bandit() -> None:
    """One-step task (gamma 0), reward -|a - a*|^2 with a* = 0.5 s[:2]: SAC must move the actor to a*."""
    rng = np.random.default_rng(0)
    cfg = SACConfig(hidden=(48, 48), gamma=0.0, batch_size=64, actor_lr=1e-3, critic_lr=3e-3)
    sac = SpikingSAC(4, 2, cfg, seed=0)
    obs = rng.uniform(-1, 1, (512, 4)).astype(np.float32)

    def reward(s: np.ndarray, a: np.ndarray) -> np.ndarray:
        return -np.sum((a - 0.5 * s[:, :2]) ** 2, axis=1, keepdims=True).astype(np.float32)

    acts = rng.uniform(-1, 1, (512, 2)).astype(np.float32)
    sac.calibrate(obs, acts)

    def error() -> float:
        a = np.array([sac.act(s, deterministic=True) for s in obs[:64]])
        return float(np.mean(np.sum((a - 0.5 * obs[:64, :2]) ** 2, axis=1)))

    before = error()
    for _ in range(600):
        idx = rng.integers(0, 512, 64)
        s = obs[idx]
        a = np.array([sac.act(o) for o in s[:8]] + list(rng.uniform(-1, 1, (56, 2))), np.float32)
        sac.update(s, a, reward(s, a), s, np.ones((64, 1), np.float32))
    after = error()
    assert after < 0.3 * before, f"actor error {before:.3f} -> {after:.3f}"


def test_temperature_tunes_toward_the_configured_entropy_and_old_configs_keep_theirs() -> None:
    """The temperature follows ``target_entropy_per_action``: a higher target entropy ends at a higher alpha.
    A config saved before the field existed reads back as -1 per action, what it was trained with."""
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (256, 4)).astype(np.float32)
    acts = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
    rewards = rng.normal(size=(256, 1)).astype(np.float32)
    alphas = {}
    for per_action in (-2.0, 1.0):
        sac = SpikingSAC(4, 2, SACConfig(hidden=(32, 32), batch_size=64, target_entropy_per_action=per_action), seed=0)
        assert sac.target_entropy == 2 * per_action
        sac.calibrate(obs, acts)
        for k in range(200):
            idx = np.arange(64) + 64 * (k % 4)
            sac.update(obs[idx], acts[idx], rewards[idx], obs[idx], np.zeros((64, 1), np.float32))
        alphas[per_action] = sac.alpha
    assert alphas[1.0] > 1.0 > alphas[-2.0], alphas
    saved = SACConfig().to_dict()
    del saved["target_entropy_per_action"]
    assert SACConfig.from_dict(saved).target_entropy_per_action == -1.0


def test_anchored_online_learning_stays_near_the_checkpoint_and_saves_its_reference(
        tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Under the same sustained errors, the anchor keeps the weights closer to the trained ones; a saved online
    checkpoint carries the trained weights as its reference, so a restart stays anchored to them."""
    ckpt = load_checkpoint(tiny_checkpoint)
    rng = np.random.default_rng(2)
    observations = rng.uniform(-0.5, 0.5, (400, ckpt.metadata["obs_dim"]))
    drift = {}
    for tau in (0.0, 0.02):
        agent = OnlineAgent(ckpt, spiking=False, learning=True, dt=0.001, seed=0, online_lr=1e-3, anchor_tau=tau)
        for obs in observations:
            agent.step(obs, reward=-1.0)
        now = agent.current_arrays()
        drift[tau] = max(float(np.abs(now[k] - ckpt.arrays[k]).max()) for k in ("q1/W2", "q1/W1", "actor/W2"))
        assert drift[tau] > 0
    assert drift[0.02] < 0.5 * drift[0.0], drift
    saved = agent.save(tmp_path / "online.npz")
    arrays = load_checkpoint(saved).arrays
    np.testing.assert_array_equal(arrays["reference/q1/W1"], ckpt.arrays["q1/W1"])
    assert not np.array_equal(arrays["q1/W1"], ckpt.arrays["q1/W1"])
    resumed = OnlineAgent.from_checkpoint(saved, spiking=False, learning=False)
    np.testing.assert_array_equal(resumed.current_arrays()["reference/q1/W1"], ckpt.arrays["q1/W1"])
    with pytest.raises(ValueError, match="anchor_tau"):
        OnlineAgent(ckpt, anchor_tau=-1.0)


def test_adaptive_damping_learns_from_reach_costs_saves_and_resumes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Damping gains learned by perturbation trials from the rewards the agent is given, through Nengo.

    The reward of each tick is minus the squared distance of the gains *in use* (read back from the action:
    ``action = policy + damping``) from a goal: the trials must find the goal without being told it.
    """
    ckpt = load_checkpoint(tiny_checkpoint)
    goal = np.array([1.0, 0.4])
    obs = np.zeros(ckpt.metadata["obs_dim"])
    contract = ckpt.observation_contract
    velocity = [contract.layout().index(f"dq/{j}") for j in ckpt.action_contract.joint_names]
    obs[velocity] = 0.05
    per_gain = -np.array(contract.dq_scale)[:2] / np.array(ckpt.action_contract.torque_scale) * 0.05
    base = OnlineAgent(ckpt, spiking=False, learning=False, actor_only=True).step(obs)

    agent = OnlineAgent(ckpt, spiking=False, learning=True, online_lr=0.0, seed=4,
                        damping=DampingLearning(sigma=0.1, rate=0.2, max_gain=2.0, cost_tau=0.0))
    np.testing.assert_array_equal(agent.damping_gains(), [0.0, 0.0])  # a trained checkpoint holds none
    reward, in_use = None, []
    for tick in range(3000):  # 600 trials of 5 ticks
        if tick % 5 == 0:
            agent.end_episode()
        gains = (agent.step(obs, reward) - base) / per_gain
        in_use.append(gains)
        reward = -float(np.sum((gains - goal) ** 2))
    learned = agent.damping_gains()
    np.testing.assert_allclose(learned, goal, atol=0.1)
    assert np.min(in_use) >= -1e-6  # perturbed or not, a gain never turns negative
    agent.learning = False
    agent.step(obs)
    np.testing.assert_allclose((agent.step(obs) - base) / per_gain, learned, atol=1e-6)  # off: no perturbation

    saved = load_checkpoint(agent.save(tmp_path / "online.npz"))
    np.testing.assert_allclose(saved.arrays["damping/gain"], learned)
    resumed = OnlineAgent(saved, spiking=False, learning=False, actor_only=True)
    np.testing.assert_allclose(resumed.damping_gains(), learned)
    np.testing.assert_allclose((resumed.step(obs) - base) / per_gain, learned, atol=1e-6)

    saved.arrays["damping/gain"] = np.array([np.nan, 0.0])
    with pytest.raises(ValueError, match="damping/gain"):
        OnlineAgent(saved, actor_only=True)
    with pytest.raises(ValueError, match="damping sigma"):
        DampingLearning(sigma=-0.1)


def test_several_simulator_steps_per_tick_keep_the_network_on_real_time(tiny_checkpoint: Path) -> None:
    """With steps_per_tick k, a tick advances the simulator k steps of dt: k * dt of network time per tick."""
    ckpt = load_checkpoint(tiny_checkpoint)
    agent = OnlineAgent(ckpt, spiking=True, learning=True, dt=0.0005, steps_per_tick=2, seed=0)
    obs = np.full(agent.obs_dim, 0.2)
    for _ in range(10):
        agent.step(obs, reward=-0.3)
    assert agent.sim.n_steps == 20
    assert agent.sim.time == pytest.approx(10 * 0.001)
    with pytest.raises(ValueError, match="steps_per_tick"):
        OnlineAgent(ckpt, steps_per_tick=0)


def test_exploration_holds_each_sample_for_one_trained_control_period(tiny_checkpoint: Path) -> None:
    """explore=True acts with the stochastic policy while learning: a new sample every control period
    the checkpoint was trained at (20 ms at 50 Hz), held in between, whatever the steps per tick."""
    ckpt = load_checkpoint(tiny_checkpoint)
    obs = np.full(ckpt.observation_contract.size, 0.2)
    for steps_per_tick in (1, 2):
        agent = OnlineAgent(ckpt, spiking=False, learning=True, explore=True, dt=0.001 / steps_per_tick,
                            steps_per_tick=steps_per_tick, seed=3, online_lr=0.0, anchor_tau=0.0)
        ticks = 60  # 60 ms: samples drawn at 0, 20 and 40 ms
        samples = []
        for _ in range(ticks):
            agent.step(obs, reward=-0.3)
            samples.append(agent.exploration_noise)
        changes = [i for i in range(1, ticks) if not np.array_equal(samples[i], samples[i - 1])]
        assert changes == [20, 40], (steps_per_tick, changes)
        assert np.any(samples[0] != 0)
        agent.learning = False  # not learning: the deterministic tanh(mean), no sample
        agent.step(obs)
        assert not np.any(agent.exploration_noise)


def test_with_learning_off_only_the_actor_computes_and_switching_needs_no_rebuild(tiny_checkpoint: Path) -> None:
    """Learning off: the critics and every learning operator do no work (their signals stand still) while the actor
    acts; learning on again, in the same simulator, they resume and the weights change."""
    agent = OnlineAgent(load_checkpoint(tiny_checkpoint), spiking=True, learning=False, dt=0.001, seed=0)
    sim, critic = agent.sim, agent.sim.model.sig[agent.critics[0]]
    obs = np.full(agent.obs_dim, 0.2)

    def critic_state() -> list[np.ndarray]:
        return [sim.signals[critic[k]].copy() for k in ("J0", "a0", "output")]

    agent.step(obs, -0.5)
    still, digest = critic_state(), agent.weights_digest()
    actions = [agent.step(obs + 0.01 * k, -0.5) for k in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(still, critic_state()))
    assert agent.weights_digest() == digest and not np.allclose(actions[0], actions[-1])
    built = sim
    agent.learning = True
    for k in range(20):
        agent.step(obs + 0.01 * k, -0.5)
    assert agent.sim is built and agent.updates > 0 and agent.weights_digest() != digest
    assert not all(np.array_equal(a, b) for a, b in zip(still, critic_state()))


def test_activity_reports_the_actors_spikes_and_the_critics_rates(tiny_checkpoint: Path) -> None:
    agent = OnlineAgent(load_checkpoint(tiny_checkpoint), spiking=True, learning=True, dt=0.001, seed=0)
    for _ in range(30):
        agent.step(np.full(agent.obs_dim, 0.3), -0.5)
    activity = agent.activity()
    assert set(activity) == {"actor", "q1", "q2"} and [a.size for a in activity["actor"]] == [32, 32]
    spikes = np.concatenate(activity["actor"])
    assert set(np.unique(spikes)) <= {0.0, agent.lif.amplitude / agent.dt} and np.any(spikes)
    assert np.all(activity["q1"][0] >= 0) and np.any(activity["q1"][0] > 0)


def test_the_spiking_start_depends_on_the_seed_alone(tiny_checkpoint: Path) -> None:
    """The actor's initial voltages come from the agent's seed, not from how many other objects the model holds:
    an evaluating agent (actor only) and a learning one with the same seed act the same until learning moves them."""
    ckpt = load_checkpoint(tiny_checkpoint)
    obs = np.full(ckpt.observation_contract.size, 0.2)
    agents = [OnlineAgent(ckpt, spiking=True, learning=False, actor_only=True, seed=3),
              OnlineAgent(ckpt, spiking=True, learning=False, seed=3, damping=DampingLearning())]
    for _ in range(30):  # the spikes reach the output after two synapses: compare a while
        np.testing.assert_array_equal(*(a.step(obs) for a in agents))
    other = OnlineAgent(ckpt, spiking=True, learning=False, actor_only=True, seed=4)
    starts = [a.sim.signals[a.sim.model.sig[a.actor]["voltage0"]] for a in (agents[0], other)]
    assert not np.array_equal(*starts)


def test_eval_writes_an_animation_of_the_reaches_with_the_target(tiny_checkpoint: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    gif = tmp_path / "reaches.gif"
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--episodes", "2", "--animation", str(gif),
                 "--animation-episodes", "1", "--json"]) == 0
    assert _last_json(capsys.readouterr().out)["animation"] == str(gif)
    with Image.open(gif) as image:
        assert image.n_frames == 50  # every 2nd step of one 100-step planar2 episode
        first = np.asarray(image.convert("RGB"), dtype=int)
    green = (first[..., 1] > 150) & (first[..., 0] < 80) & (first[..., 2] < 80)  # the target marker
    assert green.sum() > 5


@pytest.mark.parametrize("steps_per_tick", [1, 3])
def test_act_gives_the_action_before_the_learning_and_act_then_finish_is_step(steps_per_tick: int) -> None:
    """A controller sends the command after ``act`` and learns in ``finish``: the action and the learned weights are
    those of ``step``, bit for bit, and (one simulator step a tick) no weight has moved when the action is out."""
    from snn_sac_ros.core.resources import shipped_checkpoint

    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    whole, split = (OnlineAgent(ckpt, spiking=True, learning=True, dt=0.002, online_lr=1e-3, seed=3,
                                steps_per_tick=steps_per_tick) for _ in range(2))
    rng = np.random.default_rng(0)
    for tick in range(30):
        obs, reward = rng.uniform(-0.5, 0.5, whole.obs_dim), (-rng.uniform() if tick else None)
        expected = whole.step(obs, reward)
        before = split.weights_digest()
        action = split.act(obs, reward)
        if steps_per_tick == 1:  # (a longer tick learns on its steps before the last)
            assert split.weights_digest() == before, "act must leave the learning to finish"
        split.finish()
        assert np.array_equal(action, expected)
    assert split.updates == whole.updates > 0
    assert split.weights_digest() == whole.weights_digest() != OnlineAgent(ckpt, dt=0.002).weights_digest()
