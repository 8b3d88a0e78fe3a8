"""The controller's stop and limit behaviour over real DDS: what an operator sets to stop an arm safely.

One controller (planar2, fake robot at 500 Hz) serves the tests in order: state_timeout refused under 2.5
measured joint-state periods (at run time and at activation), the ramp stop and the torque rate limit,
stopped ticks reported as warnings with their share, max_torque <= 0 refused, and ~/set_learning saying
when it refused. Timing is counted in ticks and DDS source stamps, never asserted in milliseconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, planar2_target
from std_srvs.srv import SetBool

from snn_sac_ros.core.resources import shipped_checkpoint

NODE = "snn_sac_controller"
LIMITS = np.array([3.0, 1.5])  # planar2's torque scale (= its URDF limits)

Running = tuple[NodeProcess, RobotProbe]


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # anchor_tau 0 off sim time: learning may not be switched on (the set_learning test)
    node = NodeProcess(CONTROLLER, controller_params(checkpoint=str(shipped_checkpoint("planar2")), resume=False,
                                                     learning=False, anchor_tau=0.0, state_timeout=0.006,
                                                     save_path=str(tmp_path_factory.mktemp("safety") / "w.npz")))
    probe = RobotProbe("safety_probe")
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("a first non-zero command", timeout=90)
        yield node, probe
    finally:
        probe.close()
        node.stop_cleanly()


def _published_after(probe: RobotProbe, ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Commands the controller published after ``ns`` (DDS source stamps), and those stamps [s]."""
    pairs = [(c, t) for (_, c), t in zip(probe.received, probe.published_ns) if t > ns]
    return np.array([c for c, _ in pairs]), np.array([t for _, t in pairs]) * 1e-9


def test_a_state_timeout_under_two_and_a_half_state_periods_is_refused(controller: Running) -> None:
    node, probe = controller
    result = probe.set_parameter(NODE, "state_timeout", 0.004)  # 2 periods of the 2 ms states
    assert not result.successful and "2.5 joint-state periods" in result.reason, result.reason
    assert probe.get_parameter(NODE, "state_timeout") == pytest.approx(0.006)
    # states at 100 Hz while inactive: activation is refused, with the reason, and nothing is commanded
    assert probe.transition(NODE, "deactivate")
    probe.period = 0.01
    probe.spin_for(0.8)  # the last 50 states are the slow ones
    mark = len(node.lines)
    assert not probe.transition(NODE, "activate")
    assert probe.lifecycle_state(NODE) == "inactive"
    assert any("activation refused: state_timeout 6.0 ms is under 2.5 joint-state periods" in line
               for line in node.lines[mark:]), node.stderr
    probe.period = 0.002
    probe.spin_for(0.4)
    assert probe.transition(NODE, "activate")
    probe.wait_torque("torque after activating with 500 Hz states")


def test_the_ramp_stop_takes_torque_away_gradually_and_the_rate_limit_bounds_its_return(
        controller: Running) -> None:
    _, probe = controller
    assert probe.set_parameter(NODE, "stop_behavior", "ramp").successful
    assert probe.set_parameter(NODE, "stop_ramp_s", 0.05).successful
    refused = probe.set_parameter(NODE, "stop_behavior", "brake")
    assert not refused.successful and "one of" in refused.reason
    try:
        probe.run_mode("valid", ticks=100)
        probe.mode = "silent"
        stopped_ns = probe.last_state_ns
        probe.spin_until(lambda: len(_published_after(probe, stopped_ns)[0]) >= 80, 30, "commands after the stop")
        commands, _ = _published_after(probe, stopped_ns)
        size = np.abs(commands).max(axis=1)
        start = len(size) - 1  # the ramp: the longest run at the end that never rises
        while start > 0 and size[start - 1] >= size[start] - 1e-9:
            start -= 1
        ramp = size[start:]
        between = np.sum((ramp > 1e-9) & (ramp < ramp[0] - 1e-9))
        assert ramp[-1] == 0.0 and ramp[0] > 0.5, np.round(size, 3)
        assert between >= 5, f"torque dropped in {between} ticks, not along a 50 ms ramp: {np.round(size, 3)}"

        assert probe.set_parameter(NODE, "max_torque_rate", 5.0).successful  # the whole range in 0.2 s
        resumed_ns = time.time_ns()
        probe.mode = "valid"
        probe.spin_until(lambda: len(_published_after(probe, resumed_ns)[0]) >= 150, 30, "commands after resuming")
        commands, stamps = _published_after(probe, resumed_ns)
        steps = np.abs(np.diff(commands, axis=0))
        allowed = 5.0 * LIMITS * (np.diff(stamps)[:, None] + 0.004)  # a tick's dt, plus publish jitter
        rising = np.abs(commands[1:]) > np.abs(commands[:-1])  # a stop on a late state may drop at once
        assert rising.sum() > 20 and np.all(steps[rising] <= allowed[rising]), (
            f"a rise of {steps[rising].max():.3f} Nm in one tick, above the rate limit")
        assert np.any(np.abs(commands[-1]) > 0.1), "the command never came back"
    finally:
        for name, value in (("stop_behavior", "zero"), ("max_torque_rate", 0.0)):
            assert probe.set_parameter(NODE, name, value).successful


def test_stopped_ticks_are_warnings_with_their_share_not_errors(controller: Running) -> None:
    node, probe = controller
    mark = len(node.lines)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:  # states with 30 ms gaps: stale ticks in every gap
        probe.run_mode("silent", ticks=15)
        probe.run_mode("valid", ticks=15)
    lines = node.lines[mark:]
    warned = [line for line in lines if "[zero_torque]" in line]
    assert warned and all(line.startswith("[WARN]") for line in warned), "\n".join(lines[-20:])
    share = re.search(r"(\d+) of (\d+) ticks \((\d+\.\d)%\) stopped", warned[-1])
    assert share and 0 < int(share.group(1)) <= int(share.group(2)), warned[-1]
    assert not [line for line in lines if line.startswith("[ERROR]")], "\n".join(lines)
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
