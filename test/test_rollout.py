"""The controller's loop without ROS (core rollout) and ``bench online`` on top of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.agent.rollout import ReachPlan, run_reaches, task_space_pd
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.resources import shipped_checkpoint


def test_shipped_policy_reaches_targets_in_the_tick_loop() -> None:
    """The shipped checkpoint, frozen and spiking at 500 Hz, brings the arm near its targets."""
    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    with PyBulletArm("planar2", physics_dt=0.001, substeps=2) as arm:
        agent = OnlineAgent(ckpt, spiking=True, learning=False, dt=0.002, seed=0, actor_only=True)
        plan = ReachPlan.random(arm, 6, seed=3, reach_seconds=2.0)
        start = float(np.linalg.norm(arm.state().ee_position - plan.targets[0]))
        finals = run_reaches(agent, arm, plan)
    assert finals.shape == (6,) and np.all(np.isfinite(finals))
    assert np.median(finals) < 0.02, finals  # the shipped policy: median 0.6 cm here (the previous one: ~2.5 cm)
    assert start > 0.05  # it had somewhere to go
    with PyBulletArm("planar2", physics_dt=0.001) as arm, pytest.raises(ValueError, match="tick"):
        run_reaches(agent, arm, plan)


def test_bench_online_compares_variants_on_the_same_targets(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "online", "--reaches", "3", "--reach-seconds", "0.4", "--seeds", "1",
                 "--variants", "frozen", "unanchored", "adaptive", "frozen+pd", "--learning-rate", "1e-3",
                 "--payload-after", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "minus frozen" in out and "frozen+pd gains 20 N/m, 1 Nm s/rad" in out
    assert "learned damping gains" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["phases"] == ["before payload", "after, 1st half", "after, 2nd half"]
    runs = {r["variant"]: np.array(r["final_distance_m"]) for r in result["runs"]}
    assert set(runs) == {"frozen", "unanchored", "adaptive", "frozen+pd"} and all(len(v) == 3 for v in runs.values())
    assert not np.allclose(runs["frozen"], runs["unanchored"])  # learning changed what the arm did
    assert not np.allclose(runs["frozen"], runs["frozen+pd"])  # so did the added torque
    gains = {r["variant"]: r["damping_gains"] for r in result["runs"]}
    assert gains["frozen"] == [0.0, 0.0] and gains["unanchored"] == [0.0, 0.0]
    assert gains["adaptive"] != [0.0, 0.0]  # one trial pair ended: the gains moved


def test_task_space_pd_pulls_the_arm_to_a_target_without_a_policy() -> None:
    """The reference residual alone (a zero policy output) is a working reach controller."""
    with PyBulletArm("planar2", physics_dt=0.001, substeps=2) as arm:
        target = arm.forward_kinematics(np.array([0.8, 0.4]))
        pd = task_space_pd(arm, kp=100.0, kv=1.0)
        state = arm.state()
        start = np.linalg.norm(state.ee_position - target)
        for _ in range(1500):
            state = arm.apply_torque(pd(state, target, np.zeros(2)))
        assert start > 0.1 and np.linalg.norm(state.ee_position - target) < 0.02  # ~1 cm here


def test_recovery_counts_reaches_until_the_error_is_back_near_its_pre_payload_level() -> None:
    from snn_sac_ros.commands.bench_online import recovery_reaches

    finals = np.array([1.0] * 5 + [3.0] * 4 + [1.1] * 6)  # payload at 5: four bad reaches, then back
    assert recovery_reaches(finals, 5, 15, reference=1.0, window=1) == 4
    assert recovery_reaches(finals, 5, 15, reference=1.0, window=3) == 3  # a median: two good of three
    assert recovery_reaches(finals, 5, 15, reference=0.5, window=3) is None  # never within 1.2 x 0.5
    assert recovery_reaches(finals, 5, 9, reference=1.0, window=3) is None  # the payload came off at 9
    assert recovery_reaches(finals, 9, 15, reference=1.0, window=3) == 0


def test_a_plan_takes_the_payload_off_again(capsys: pytest.CaptureFixture) -> None:
    """With ``--payload-off-after`` the arm carries the payload only in between, and the table has the phase
    after it came off and a recovery column."""
    assert main(["bench", "online", "--reaches", "4", "--reach-seconds", "0.2", "--seeds", "1",
                 "--variants", "frozen", "--payload-after", "1", "--payload-off-after", "3",
                 "--recovery-window", "1", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["phases"] == ["before payload", "after, 1st half", "after, 2nd half", "payload off"]
    assert "recovery, reaches per seed" in out and len(result["rows"][0]["recovery_reaches"]) == 1
    with pytest.raises(SystemExit, match="payload-off-after"):
        main(["bench", "online", "--reaches", "4", "--payload-after", "2", "--payload-off-after", "2"])

    masses = []

    class Recording(PyBulletArm):
        def set_payload(self, kg: float) -> None:
            masses.append(kg)
            super().set_payload(kg)

    ckpt = load_checkpoint(shipped_checkpoint("planar2"))
    with Recording("planar2", physics_dt=0.001, substeps=2) as arm:
        agent = OnlineAgent(ckpt, spiking=False, learning=False, dt=0.002, seed=0, actor_only=True)
        plan = ReachPlan.random(arm, 4, seed=3, reach_seconds=0.02, payload_kg=2.0, payload_after=1,
                                payload_off_after=3)
        run_reaches(agent, arm, plan)
        assert masses == [2.0, 0.0] and arm.payload_kg == 0.0
