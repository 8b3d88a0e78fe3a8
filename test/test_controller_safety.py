"""The controller's stop and limit behaviour over real DDS: what an operator sets to stop an arm safely.

One controller (planar2, fake robot at 500 Hz) serves the tests in order: state_timeout refused under 2.5
measured joint-state periods (at run time and at activation), the ramp stop and the torque rate limit,
stopped ticks reported as warnings with their share, max_torque <= 0 refused, and ~/set_learning saying
when it refused. A kuka_iiwa controller of its own shows the default clamp, the checkpoint's torque scale.
Timing is counted in ticks and DDS source stamps, never asserted in milliseconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, controlling
from std_srvs.srv import SetBool

from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.arm import PyBulletArm
from snn_sac_ros.core.resources import shipped_checkpoint

NODE = "snn_sac_controller"
LIMITS = np.array([3.0, 1.5])  # planar2's torque scale (= its URDF limits)

Running = tuple[NodeProcess, RobotProbe]


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # anchor_tau 0 off sim time: learning may not be switched on (the set_learning test)
    node = NodeProcess(CONTROLLER, controller_params(checkpoint=str(shipped_checkpoint("planar2")), resume=False,
                                                     learning=False, anchor_tau=0.0,
                                                     save_path=str(tmp_path_factory.mktemp("safety") / "w.npz")))
    with controlling(node, RobotProbe("safety_probe")) as running:
        yield running


def _published_after(probe: RobotProbe, ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Commands the controller published after ``ns`` (DDS source stamps), and those stamps [s]."""
    pairs = [(c, t) for (_, c), t in zip(probe.received, probe.published_ns) if t > ns]
    return np.array([c for c, _ in pairs]), np.array([t for _, t in pairs]) * 1e-9


def test_a_state_timeout_under_two_and_a_half_state_periods_is_refused(controller: Running) -> None:
    node, probe = controller
    result = probe.set_parameter(NODE, "state_timeout", 0.004)  # 2 periods of the 2 ms states
    assert not result.successful and "2.5 joint-state periods" in result.reason, result.reason
    assert probe.get_parameter(NODE, "state_timeout") == pytest.approx(0.05)
    # states at 20 Hz: activation measures their period and refuses to command with the 50 ms timeout
    assert probe.transition(NODE, "deactivate")
    probe.period = 0.05
    mark = len(node.lines)
    assert probe.transition(NODE, "activate")
    probe.spin_until(lambda: any("state_timeout 50.0 ms is under 2.5 joint-state periods" in line
                                 for line in node.lines[mark:]), 20, "the refusal in the log")
    assert all(np.all(c == 0) for c in probe.run_mode("valid", ticks=100)), "torque with a refused state_timeout"
    probe.spin_until(lambda: probe.diagnostics.get("_level") == "2", 10, "an ERROR status on /diagnostics")
    still = probe.set_parameter(NODE, "state_timeout", 0.1)
    assert not still.successful and "2.5 joint-state periods" in still.reason, still.reason  # needs 125 ms
    assert probe.set_parameter(NODE, "state_timeout", 0.3).successful
    probe.wait_torque("torque once state_timeout covers 2.5 periods")
    assert probe.transition(NODE, "deactivate")
    probe.period = 0.002
    assert probe.set_parameter(NODE, "state_timeout", 0.05).successful
    assert probe.transition(NODE, "activate")
    probe.wait_torque("torque after activating with 500 Hz states")


def test_the_ramp_stop_takes_torque_away_gradually_and_the_rate_limit_bounds_its_return(
        controller: Running) -> None:
    _, probe = controller
    assert probe.set_parameter(NODE, "stop_behavior", "ramp").successful
    assert probe.set_parameter(NODE, "stop_ramp_s", 0.2).successful
    refused = probe.set_parameter(NODE, "stop_behavior", "brake")
    assert not refused.successful and "one of" in refused.reason
    try:
        probe.run_mode("valid", ticks=100)
        probe.mode = "silent"
        stopped_ns = probe.last_state_ns
        probe.spin_until(lambda: len(_published_after(probe, stopped_ns)[0]) >= 200, 30, "commands after the stop")
        commands, _ = _published_after(probe, stopped_ns)
        size = np.abs(commands).max(axis=1)
        start = len(size) - 1  # the ramp: the longest run at the end that never rises
        while start > 0 and size[start - 1] >= size[start] - 1e-9:
            start -= 1
        ramp = size[start:]
        between = np.sum((ramp > 1e-9) & (ramp < ramp[0] - 1e-9))
        assert ramp[-1] == 0.0 and ramp[0] > 0.5, np.round(size, 3)
        assert between >= 5, f"torque dropped in {between} ticks, not along a 0.2 s ramp: {np.round(size, 3)}"

        assert probe.set_parameter(NODE, "max_torque_rate", 5.0).successful  # the whole range in 0.2 s
        resumed_ns = time.time_ns()
        probe.mode = "valid"
        probe.spin_until(lambda: len(_published_after(probe, resumed_ns)[0]) >= 150, 30, "commands after resuming")
        commands, stamps = _published_after(probe, resumed_ns)
        # The guard limits the change per tick by the time between tick starts; publish stamps are later by
        # each tick's compute time, which a loaded machine stretches: 20 ms of slack per step. Drops are not
        # limited (a stop is at once), nor is a step from an exact zero (the stall watchdog's zero, published
        # from its thread while a tick ran); the whole rise from zero is checked against the rate below.
        steps = np.abs(np.diff(commands, axis=0))
        allowed = 5.0 * LIMITS * (np.diff(stamps)[:, None] + 0.02)
        rising = (np.abs(commands[1:]) > np.abs(commands[:-1])) & np.any(commands[:-1] != 0, axis=1)[:, None]
        bad = np.argwhere(rising & (steps > allowed))
        assert not bad.size, "steps above the rate limit: " + "; ".join(
            f"{commands[i].round(3)} -> {commands[i + 1].round(3)} in {np.diff(stamps)[i] * 1e3:.1f} ms"
            for i, _ in bad[:5])
        zero = np.all(commands == 0, axis=1)
        start = max(0, int(np.argmax(~zero)) - 1)  # the last zero before torque came back (if one came here)
        assert np.all(np.abs(commands[start]) <= 5.0 * LIMITS * 0.03), f"no rise from zero: {commands[:5]}"
        size = np.abs(commands[start:, 0])
        peak = start + int(np.argmax(size > 0.9 * size.max()))
        rise, need = stamps[peak] - stamps[start], 0.9 * size.max() / (5.0 * LIMITS[0])
        assert rise >= need - 0.01, f"the torque rose to {commands[peak, 0]:.2f} Nm in {rise * 1e3:.0f} ms"
        assert np.any(np.abs(commands[-50:]) > 0.1), "the command never came back"
    finally:
        for name, value in (("stop_behavior", "zero"), ("max_torque_rate", 0.0)):
            assert probe.set_parameter(NODE, name, value).successful


def test_stopped_ticks_are_warnings_with_their_share_not_errors(controller: Running) -> None:
    node, probe = controller
    mark = len(node.lines)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:  # states with 100 ms gaps: stale ticks in every gap
        probe.run_mode("silent", ticks=50)
        probe.run_mode("valid", ticks=15)
    lines = node.lines[mark:]
    warned = [line for line in lines if "[zero_torque]" in line]
    assert warned and all(line.startswith("[WARN]") for line in warned), "\n".join(lines[-20:])
    share = re.search(r"(\d+) of (\d+) ticks \((\d+\.\d)%\) stopped", warned[-1])
    assert share and 0 < int(share.group(1)) <= int(share.group(2)), warned[-1]
    errors = [line for line in lines if line.startswith("[ERROR]")]
    assert not errors, "\n".join(errors)
    assert len(warned) <= 4, "stopped ticks were logged more than once a second"
    probe.spin_until(lambda: float(probe.diagnostics.get("stopped_share", 0)) > 0, 10, "stopped_share on /diagnostics")


def test_max_torque_of_zero_is_refused_not_read_as_no_limit(controller: Running) -> None:
    _, probe = controller
    for bad in ([0.0, 1.0], [-1.0, 1.0]):
        result = probe.set_parameter(NODE, "max_torque", bad)
        assert not result.successful and "> 0" in result.reason, result.reason
    assert probe.set_parameter(NODE, "max_torque", [1.0, 0.5]).successful
    try:
        probe.spin_until(lambda: probe.diagnostics.get("torque_limits") == "1,0.5", 10, "the new limits in force")
        commands = probe.run_mode("valid", ticks=100)
        assert all(np.all(np.abs(c) <= [1.0, 0.5]) for c in commands)
    finally:
        assert probe.set_parameter(NODE, "max_torque", [float("nan")]).successful  # unset: the torque scale
    probe.spin_until(lambda: probe.diagnostics.get("torque_limits") == "3,1.5", 10, "the torque scale again")
    bad_start = NodeProcess(CONTROLLER, controller_params(checkpoint=str(shipped_checkpoint("planar2")),
                                                          max_torque=[0.0, 1.0], save_path="/dev/null/none.npz"),
                            ["-r", "__node:=bad_max_torque"])
    assert bad_start.process.wait(60) == 2
    bad_start._reader.join(5)
    assert "max_torque must be finite values > 0" in bad_start.stderr and "Traceback" not in bad_start.stderr


def test_set_learning_reports_when_it_refused(controller: Running) -> None:
    _, probe = controller
    response = probe.call(SetBool, f"/{NODE}/set_learning", SetBool.Request(data=True))
    assert not response.success and "anchor_tau" in response.message, response.message
    assert probe.get_parameter(NODE, "learning") is False
    assert probe.call(SetBool, f"/{NODE}/set_learning", SetBool.Request(data=False)).success


@pytest.mark.parametrize("adaptation", [False, True], ids=["policy", "with-adaptation"])
def test_the_default_clamp_is_the_checkpoints_torque_scale_not_the_urdf_limit(tmp_path: object,
                                                                              adaptation: bool) -> None:
    """kuka_iiwa's URDF allows 300 Nm per joint; its checkpoint was trained with at most 30 Nm on the first four.
    With ``max_torque`` unset, a command that would exceed the torque scale (the policy's torque minus the
    checkpoint's joint damping at a fast joint 2: 12.9 Nm s/rad x 5 rad/s = 65 Nm) is clamped to it; with the
    adaptation pathway on, to the scale plus ``adaptation_max_torque`` (here 2 Nm), the room a payload needs."""
    checkpoint = shipped_checkpoint("kuka_iiwa")
    trained = load_checkpoint(checkpoint)
    scale = np.array(trained.action_contract.torque_scale)
    limits = scale + (2.0 if adaptation else 0.0)
    assert scale[1] == 30.0 and trained.action_contract.joint_damping[1] * 5.0 > 2 * scale[1]
    node = NodeProcess(CONTROLLER, controller_params(
        arm="kuka_iiwa", checkpoint=str(checkpoint), resume=False, save_path=str(tmp_path / "kuka.npz"),
        learning=False, spiking=False, apply_joint_damping=True, adaptation=adaptation, adaptation_max_torque=[2.0],
        adaptation_neurons=100), ["-r", "__node:=kuka_clamp", "-r", "__ns:=/kuka"])
    joints = list(trained.observation_contract.joint_names)
    q = [0.1, 0.4, 0.0, -1.2, 0.0, 0.8, 0.0]
    probe = RobotProbe("kuka_clamp_probe", joints=joints, q=q, namespace="kuka", controller="kuka_clamp")
    probe.dq = [0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # within twice the 10 rad/s velocity limit: a valid state
    try:
        with PyBulletArm("kuka_iiwa") as arm:
            assert np.all(arm.effort_limits == 300.0)
            probe.send_target(arm.forward_kinematics(np.array(q) + 0.3))
        probe.wait_torque("torque from the kuka_iiwa controller", timeout=120)
        commands = np.array(probe.run_mode("valid", ticks=100))
        assert np.all(np.abs(commands) <= limits + 1e-9), np.abs(commands).max(axis=0)
        assert np.all(commands[:, 1] == -limits[1]), f"joint 2 not held at the clamp: {commands[:5, 1]}"
        probe.spin_until(lambda: "torque_limits" in probe.diagnostics, 20, "the controller's torque limits")
        assert np.allclose([float(v) for v in probe.diagnostics["torque_limits"].split(",")], limits, rtol=1e-3)
    finally:
        probe.close()
        node.stop_cleanly()
