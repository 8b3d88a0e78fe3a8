"""The torque added beside the policy on a changed arm: the model-matching bound and the PES pathway."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.adaptation import PESAdaptation, PESConfig, matched_torque, sphere_inputs, torque_bounds
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm


@pytest.mark.parametrize("arm_name", ["planar2", "kuka_iiwa"])
def test_the_matched_torque_gives_the_loaded_arm_the_nominal_arms_motion(arm_name: str) -> None:
    """One control step from the same state: the nominal arm with the policy's torque, and the arm carrying 2 kg with
    it plus the matched torque, end with the same velocities; without it they do not."""
    with (PyBulletArm(arm_name, physics_dt=0.001) as nominal, PyBulletArm(arm_name, physics_dt=0.001) as loaded,
          PyBulletArm(arm_name, payload_kg=2.0) as model):
        q = 0.5 * (nominal.lower + nominal.upper) + 0.2
        dq = np.full(nominal.n_joints, 0.3)
        policy = 0.05 * nominal.effort_limits * np.sign(np.arange(nominal.n_joints) % 2 - 0.5)
        start = nominal.reset(q, dq)
        assert np.allclose(matched_torque(nominal, nominal, start, policy), 0.0)
        loaded.set_payload(2.0)
        loaded.reset(q, dq)
        extra = matched_torque(nominal, model, start, policy)
        assert np.all(np.abs(policy + extra) < nominal.effort_limits)  # the arm does not clamp it
        reached = nominal.apply_torque(policy).dq
        moved = loaded.apply_torque(policy + extra).dq
        loaded.reset(q, dq)
        unmatched = loaded.apply_torque(policy).dq
        # a tenth of the difference or less: the physics step integrates what the model differentiates
        assert np.abs(moved - reached).max() < 0.1 * np.abs(unmatched - reached).max(), (moved, reached, unmatched)


def test_sphere_inputs_lie_on_the_upper_unit_hemisphere() -> None:
    for scaled in ([-1.0, -1.0], [1.0, 1.0, -1.0, 1.0], [0.0, 0.0, 0.3]):
        x = sphere_inputs(np.array(scaled))
        assert x.shape == (len(scaled) + 1,) and np.isclose(np.linalg.norm(x), 1.0) and x[-1] > 0


def test_torque_bounds_take_one_value_or_one_per_joint_and_refuse_the_rest() -> None:
    assert torque_bounds([20.0], 3).tolist() == [20.0, 20.0, 20.0]
    assert torque_bounds([1.0, 2.0, 0.0], 3).tolist() == [1.0, 2.0, 0.0]
    for bad, why in (([1.0, 2.0], "1 or 3 values"), ([-1.0], ">= 0"), ([float("nan")], ">= 0")):
        with pytest.raises(ValueError, match=why):
            torque_bounds(bad, 3)


def test_the_pes_pathway_starts_at_zero_learns_toward_the_pd_torque_and_stays_bounded() -> None:
    """Outside the gate it adds exactly nothing; held near a target it learns a torque pushing toward it (the PD
    teacher's direction), never beyond its limit."""
    with PyBulletArm("planar2", physics_dt=0.002) as arm:
        q = np.array([0.6, 0.9])
        state = arm.reset(q, np.zeros(2))
        far = state.ee_position + np.array([0.3, 0.0, 0.0])
        near = state.ee_position + np.array([0.02, 0.01, 0.0])
        pes = PESAdaptation(arm, 0.002, PESConfig(neurons=200, learning_rate=1e-3, limit=0.25), seed=1)
        def added(target: np.ndarray) -> np.ndarray:
            return pes.torque(state.q, state.dq, state.ee_position, target, np.zeros(2))

        assert all(np.array_equal(added(far), np.zeros(2)) for _ in range(50))
        torques = np.array([added(near) for _ in range(1000)])
        pes.close()
        teacher = 20.0 * arm.jacobian(q).T @ (near - state.ee_position)
        learned = torques[-1]
        assert np.dot(learned, teacher) > 0.9 * np.linalg.norm(learned) * np.linalg.norm(teacher)
        assert np.abs(torques).max() <= 0.25 and np.abs(learned).max() == pytest.approx(0.25)  # it hit the bound


@pytest.mark.parametrize("sees_velocity", [True, False])
def test_the_residual_teacher_learns_on_a_loaded_arm_and_not_on_the_nominal_one(sees_velocity: bool) -> None:
    """Taught by what the nominal model does not explain, the pathway stays near zero while the arm is the model
    and learns a torque once it carries a payload; over the joint state, or over the joint angles alone."""
    learned = {}
    for payload in (0.0, 2.0):
        with PyBulletArm("planar2", physics_dt=0.002) as arm, PyBulletArm("planar2") as model:
            arm.set_payload(payload)
            state = arm.reset(np.array([0.3, 0.8]))
            pes = PESAdaptation(model, 0.002, PESConfig(neurons=200, learning_rate=1e-4, teacher="residual",
                                                        limit=1.0, sees_velocity=sees_velocity), seed=2)
            assert pes.ensemble.dimensions == (2 if sees_velocity else 1) * model.n_joints + 1
            for k in range(1500):
                policy = 0.2 * np.array([np.sin(k * 0.01), np.cos(k * 0.013)])
                state = arm.apply_torque(policy + pes.torque(state.q, state.dq, state.ee_position, np.zeros(3), policy))
            learned[payload] = np.abs(pes.torque(state.q, state.dq, state.ee_position, np.zeros(3), policy)).max()
            pes.close()
    assert learned[2.0] > 0.02 and learned[0.0] < 0.5 * learned[2.0], learned


def test_bench_online_runs_the_adaptive_pathways(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "online", "--reaches", "3", "--reach-seconds", "0.4", "--seeds", "1", "--variants",
                 "frozen", "frozen+pes", "frozen+matched", "--pes-neurons", "100", "--pes-rate", "1e-3",
                 "--pes-gate", "1.0", "--payload-after", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "frozen+pes 100 neurons" in out and "added torque within +-1 Nm" in out
    runs = {r["variant"]: np.array(r["final_distance_m"]) for r in json.loads(out.strip().splitlines()[-1])["runs"]}
    assert np.allclose(runs["frozen"][:1], runs["frozen+matched"][:1])  # nothing to match before the payload
    assert not np.allclose(runs["frozen"][1:], runs["frozen+matched"][1:])
    assert not np.allclose(runs["frozen"], runs["frozen+pes"])  # taught everywhere (gate 1 m): it added torque


def test_saved_decoders_continue_only_on_the_ensemble_they_were_learned_on() -> None:
    """Decoders of another ensemble (other inputs, hence other encoders) have the same shape and mean nothing here:
    refused by their recorded layout; decoders saved without one are checked by shape alone."""
    with PyBulletArm("planar2") as model:
        def pathway(sees_velocity: bool) -> PESAdaptation:
            return PESAdaptation(model, 0.002, PESConfig(neurons=50, sees_velocity=sees_velocity), seed=1)

        saved, other = pathway(True), pathway(False)
        decoders = np.full_like(saved.decoders(), 0.5)
        with pytest.raises(ValueError, match="5 dimensions, 1 seed; this one has 50 neurons, 3 dimensions"):
            other.load_decoders(decoders, saved.layout())
        other.load_decoders(decoders)
        saved.load_decoders(decoders, saved.layout())
        assert np.array_equal(saved.decoders(), decoders) and np.array_equal(other.decoders(), decoders)
        saved.close()
        other.close()


def test_the_residual_teacher_learns_nothing_for_a_joint_held_by_its_stop() -> None:
    """A joint at its position limit is held by the stop, whose torque no joint reports: the residual there is no
    payload, and learning it pushed kuka_iiwa's wrist into its stop harder on every reach."""
    with PyBulletArm("kuka_iiwa") as model:
        q = model.home.copy()
        q[5] = model.upper[5]  # joint 6 against its stop
        still = np.zeros(7)
        effort = model.inverse_dynamics(q, still, still) + 0.5  # 0.5 Nm on every joint the model does not explain
        pes = PESAdaptation(model, 0.002, PESConfig(neurons=200, learning_rate=1e-3, teacher="residual", limit=5.0,
                                                    sees_torque=False, sees_velocity=False), seed=1)
        for _ in range(600):
            added = pes.torque(q, still, np.zeros(3), np.zeros(3), still, elapsed=0.002, effort=effort)
        pes.close()
    others = np.delete(added, 5)
    assert np.all(others > 0.2), added  # learned toward the 0.5 Nm
    assert abs(added[5]) < 0.02, added
