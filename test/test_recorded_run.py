"""A recorded run, end to end: the real arm driven by the real online agent, recorded by the rollout recorder; the
plots redrawn from it; SAC fine-tuning from it (``train --from-bag``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.agent.from_bag import transitions
from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.agent.rollout import ReachPlan, run_reaches
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.recording.reader import ReadResult, load_ticks, read_messages
from snn_sac_ros.core.recording.run import RolloutRecorder
from snn_sac_ros.core.resources import shipped_checkpoint
from snn_sac_ros.core.task import ReachTask

REACHES, SECONDS, DT = 4, 0.6, 0.002


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """4 reaches of 0.6 s at 500 Hz, a 2 kg payload from the third: the file and the final distances."""
    path = tmp_path_factory.mktemp("run") / "run.mcap"
    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    with PyBulletArm("planar2", physics_dt=0.001, substeps=2) as arm:
        agent = OnlineAgent(ckpt, spiking=True, learning=False, dt=DT, seed=0, actor_only=True)
        plan = ReachPlan.random(arm, REACHES, seed=5, reach_seconds=SECONDS, payload_kg=2.0, payload_after=2)
        recorder = RolloutRecorder(path, agent, arm, diagnostics_period=0.1, metadata={"payload_reach": 2})
        finals = run_reaches(agent, arm, plan, on_tick=recorder)
        recorder.close()
        agent.close()
    assert recorder.recorder.dropped == 0 and recorder.recorder.error is None
    return path, finals


def test_the_recording_holds_every_tick_and_its_reward_is_the_tasks(recorded: tuple[Path, np.ndarray]) -> None:
    path, _ = recorded
    result = ReadResult()
    topics = [m.topic for m in read_messages(path, result=result)]
    ticks_per_reach = round(SECONDS / DT)
    assert result.complete and result.metadata["snn_sac_ros"]["payload_reach"] == "2"
    assert topics.count("/snn_sac_controller/tick") == topics.count("/joint_states") == REACHES * ticks_per_reach
    assert topics.count("/effort_controller/commands") == REACHES * ticks_per_reach
    assert topics.count("/target") == REACHES
    ticks = load_ticks(path)
    assert np.array_equal(np.unique(ticks.episode), np.arange(REACHES))
    # the reward the agent was given on a tick is the task's, for the distance of the state that tick used
    task, given = ReachTask(), np.isfinite(ticks.reward)
    assert given.sum() == REACHES * (ticks_per_reach - 1)  # none on a reach's first tick
    k = np.flatnonzero(given)
    recomputed = [task.reward(task.distance(ticks.ee[i], ticks.target[i]), ticks.action[i - 1]) for i in k]
    np.testing.assert_allclose(ticks.reward[k], recomputed, rtol=1e-9, atol=1e-12)


def test_transitions_span_a_training_step_within_a_reach(recorded: tuple[Path, np.ndarray]) -> None:
    path, _ = recorded
    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    ticks = load_ticks(path)
    with PyBulletArm("planar2") as arm:
        found = transitions(ticks, arm, ckpt.observation_contract, control_hz=50.0)
        # the state encoded from the recorded joints is the observation the policy saw on that tick
        np.testing.assert_allclose(ckpt.observation_contract.encode(
            ticks.q[0], ticks.dq[0], arm.forward_kinematics(ticks.q[0]), ticks.target[0]), ticks.observation[0],
            atol=1e-6)
    stride = 10  # 500 Hz ticks per 50 Hz training step
    per_reach = (round(SECONDS / DT) - 1) // stride
    assert len(found) == REACHES * per_reach
    np.testing.assert_allclose(found.obs[0], ticks.observation[0], atol=1e-6)
    np.testing.assert_allclose(found.next_obs[0], ticks.observation[stride], atol=1e-6)
    np.testing.assert_allclose(found.actions[0], ticks.action[:stride].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(found.obs[1], found.next_obs[0])
    assert np.all(found.rewards < 0) and np.all(found.dones == 0)


def test_plot_redraws_the_demo_plots_from_the_recording(recorded: tuple[Path, np.ndarray], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    path, finals = recorded
    assert main(["plot", str(path), "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["reaches"] == REACHES and result["payload_reach"] == 2 and result["complete"]
    assert {Path(p).name for p in result["plots"]} == {"distance.png", "torques.png", "adaptation.png"}
    assert all(Path(p).stat().st_size > 5000 for p in result["plots"])
    # each reach scored by its last recorded distance: the rollout's finals, one tick earlier
    from snn_sac_ros.commands.plot import demo_record

    _, reaches, _ = demo_record(path)
    np.testing.assert_allclose([d for d, _ in reaches], finals, atol=0.01)
    assert [kg for _, kg in reaches] == [0.0, 0.0, 2.0, 2.0]


def test_train_from_bag_fine_tunes_a_checkpoint_and_records_the_bag(recorded: tuple[Path, np.ndarray],
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    path, _ = recorded
    init = shipped_checkpoint("planar2")
    args = ["train", "--from-bag", str(path), "--init", str(init), "--steps", "30", "--batch-size", "32",
            "--mix-env", "5", "--out", str(tmp_path / "ft"), "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["updates"] == 30 and result["env_steps"] == 5 and result["transitions"] == 4 * 29
    tuned, before = load_checkpoint(result["checkpoint"]), load_checkpoint(init)
    assert [b["path"] for b in tuned.metadata["bags"]] == [str(path.resolve())]
    assert tuned.metadata["fine_tuned_from"]["updates"] == 30 and "--from-bag" in tuned.metadata["train_command"]
    assert tuned.metadata["observation_contract"] == before.metadata["observation_contract"]
    assert not np.array_equal(tuned.arrays["actor/W0"], before.arrays["actor/W0"])  # it learned
    assert not np.array_equal(tuned.arrays["q1_target/W2"], before.arrays["q1_target/W2"])
    # a second fine-tune from the result keeps the bags the first saw
    assert main(["train", "--from-bag", str(path), "--init", result["checkpoint"], "--steps", "2",
                 "--batch-size", "8", "--out", str(tmp_path / "ft2")]) == 0
    assert len(load_checkpoint(tmp_path / "ft2" / "checkpoint.npz").metadata["bags"]) == 2
    assert main(["train", "--from-bag", str(path), "--steps", "2"]) == 2  # no --init: refused


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a phase without reaches is NaN, not a NumPy warning
def test_bench_online_records_each_run(tmp_path: Path) -> None:
    assert main(["bench", "online", "--reaches", "2", "--reach-seconds", "0.2", "--seeds", "3", "--variants",
                 "frozen", "--payload-after", "1", "--record-dir", str(tmp_path)]) == 0
    ticks = load_ticks(tmp_path / "frozen-seed3.mcap")
    assert len(ticks) == 200 and not ticks.learning.any() and list(np.unique(ticks.episode)) == [0, 1]
