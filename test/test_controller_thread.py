"""The control thread over real DDS: it ticks at the rate asked (no double ticks beside a timer, no bursts),
stops with deactivation (nothing after the final zero) and restarts as one thread, and real-time settings
the OS refuses are logged with the reason while the node goes on controlling.

Rates are checked only to within a loose factor (this machine may be loaded): what is tested is that the
thread commands at the rate it was given, not how precisely.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import (
    CONTROLLER,
    NodeProcess,
    RobotProbe,
    controller_params,
    planar2_target,
    ros_parameter_args,
    set_thread_priority_allowed,
)

from snn_sac_ros.core.control.realtime import rt_throttling
from snn_sac_ros.core.resources import shipped_checkpoint


def _params(tmp_path: Path, name: str, **params: object) -> dict[str, object]:
    return controller_params(**{"checkpoint": str(shipped_checkpoint("planar2")), "resume": False,
                                "learning": False, "save_path": str(tmp_path / f"{name}.npz"),
                                "diagnostics_period_s": 0.2, **params})


def _thread_status(probe: RobotProbe) -> str:
    probe.diagnostics = {}
    probe.spin_until(lambda: "control_thread" in probe.diagnostics, 10, "diagnostics with control_thread")
    return probe.diagnostics["control_thread"]


@pytest.mark.parametrize("rate", [100.0, 250.0])
def test_the_control_thread_commands_at_the_rate_asked(tmp_path: Path, rate: float) -> None:
    name = f"thread_rate_{rate:g}"
    node = NodeProcess(CONTROLLER, _params(tmp_path, name, control_rate_hz=rate), ["-r", f"__node:={name}"])
    probe = RobotProbe(f"{name}_probe", controller=name)
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("a first non-zero command", timeout=90)
        assert "alive=1;" in _thread_status(probe)
        start = time.monotonic()
        probe.spin_for(3.0)
        commands = len(probe.commands_after(start))
        seconds = time.monotonic() - start
        assert 0.4 * rate * seconds <= commands <= 1.1 * rate * seconds + 5, (commands, seconds, rate)
    finally:
        probe.close()
        node.stop_cleanly()


def test_deactivate_stops_the_thread_after_the_final_zero_and_activate_restarts_one(tmp_path: Path) -> None:
    name = "thread_cycle"
    node = NodeProcess(CONTROLLER, _params(tmp_path, name), ["-r", f"__node:={name}"])
    probe = RobotProbe(f"{name}_probe", controller=name)
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("a first non-zero command", timeout=90)
        for cycle in range(2):
            assert probe.transition(name, "deactivate")
            answered = time.monotonic()
            probe.spin_for(0.5)
            # commands published before the final zero may arrive after the transition's answer; after the final
            # zero nothing comes, and nothing at all once those are in
            late = probe.commands_after(answered)
            assert np.all(probe.received[-1][1] == 0), (cycle, late)
            zeros = [i for i, c in enumerate(late) if np.all(c == 0)]
            assert not zeros or all(np.all(c == 0) for c in late[zeros[0]:]), (cycle, late)
            quiet = time.monotonic()
            probe.spin_for(0.5)
            assert not probe.commands_after(quiet), (cycle, probe.commands_after(quiet))
            assert "alive=0;" in _thread_status(probe)
            assert probe.transition(name, "activate")
            probe.wait_torque(f"torque after activation {cycle + 1}")
            assert "alive=1;" in _thread_status(probe), "one control thread after a restart"
    finally:
        probe.close()
        node.stop_cleanly()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop capabilities")
def test_refused_realtime_settings_are_logged_with_the_reason_and_the_node_still_controls(tmp_path: Path) -> None:
    """Without CAP_SYS_NICE and CAP_IPC_LOCK (as in a default container), SCHED_FIFO and mlockall are refused by
    the OS; a CPU the machine does not have is refused too. None of it is fatal."""
    name = "thread_refused"
    params = _params(tmp_path, name, thread_priority=50, lock_memory=True, cpu_affinity=[4096])
    command = ["setpriv", "--bounding-set=-sys_nice,-ipc_lock", sys.executable, "-m", CONTROLLER, "--ros-args",
               *ros_parameter_args(params), "-r", f"__node:={name}"]
    node = NodeProcess(CONTROLLER, {}, command=command)
    probe = RobotProbe(f"{name}_probe", controller=name)
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("torque with the real-time settings refused", timeout=90)
        status = _thread_status(probe)
        for what in ("thread_priority 50 refused", "lock_memory refused", "cpu_affinity [4096] refused"):
            assert what in status, status
        log = node.stderr
        assert "SCHED_FIFO priority 50 refused: Operation not permitted" in log, log
        assert "memory lock refused" in log and "CPU affinity [4096] refused: this machine has CPUs 0-" in log, log
    finally:
        probe.close()
        node.stop_cleanly()


def test_an_applied_priority_is_logged_with_the_kernels_throttling_when_it_is_on(tmp_path: Path) -> None:
    """SCHED_FIFO granted (this machine may: root or CAP_SYS_NICE); the kernel may still stop the thread for 50 ms a
    second, so the log says so, and how to turn it off, whenever /proc says the throttling is on."""
    if set_thread_priority_allowed() is not None:
        pytest.fail(f"SCHED_FIFO not permitted here: {set_thread_priority_allowed()}")
    name = "thread_fifo"
    node = NodeProcess(CONTROLLER, _params(tmp_path, name, thread_priority=10), ["-r", f"__node:={name}"])
    probe = RobotProbe(f"{name}_probe", controller=name)
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("torque under SCHED_FIFO", timeout=90)
        assert "thread_priority 10 applied" in _thread_status(probe)
        throttling = rt_throttling()
        assert (throttling != "" and throttling in node.stderr) or (throttling == "" and "throttling" not in
                                                                    node.stderr), node.stderr
    finally:
        probe.close()
        node.stop_cleanly()


@pytest.mark.parametrize("tick_on_state", [False, True])
def test_the_control_thread_takes_the_joint_states_itself(tmp_path: Path, tick_on_state: bool) -> None:
    """No executor serves the joint states: the control thread takes and handles each one (a state never waits
    for the GIL behind a tick), the node is still subscribed in the graph, and it commands torque from them. The
    controller runs in this process here, so that the thread that handles each state can be seen."""
    import threading

    import rclpy
    from rclpy.experimental import EventsExecutor

    from snn_sac_ros.adapters.ros.controller_node import SnnSacController
    from snn_sac_ros.adapters.ros.controller_threads import CONTROL_THREAD_NAME

    name = f"thread_takes_states_{int(tick_on_state)}"
    params = _params(tmp_path, name, tick_on_state=tick_on_state, control_rate_hz=250.0)
    rclpy.init(args=["--ros-args", *ros_parameter_args(params), "-r", f"__node:={name}"])
    handled: list[str] = []
    stop = threading.Event()
    try:
        node = SnnSacController()
        handle = node._handle_joint_state

        def spy(msg: object) -> bool:
            handled.append(threading.current_thread().name)
            return handle(msg)

        node._handle_joint_state = spy
        executor = EventsExecutor()
        executor.add_node(node)
        spinner = threading.Thread(target=lambda: [executor.spin_once(0.05) for _ in iter(stop.is_set, True)])
        spinner.start()
        probe = RobotProbe(f"{name}_probe", controller=name)
        try:
            probe.send_target(planar2_target())
            probe.wait_torque("a first non-zero command", timeout=90)
            probe.spin_for(0.5)
            topics = [s.topic_name for s in node.subscriptions]
            subscribed = [i.node_name for i in node.get_subscriptions_info_by_topic("/joint_states")]
        finally:
            probe.close()
            stop.set()
            spinner.join(5)
            node.close()
    finally:
        rclpy.try_shutdown()
    assert len(handled) > 20 and set(handled) == {CONTROL_THREAD_NAME}, set(handled)
    assert "/joint_states" not in topics and name in subscribed
