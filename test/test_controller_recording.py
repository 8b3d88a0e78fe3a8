"""The controller records its run into MCAP over real DDS: the file holds the commands it published and every joint
state its ticks used; a SIGKILLed controller's file reads up to its last chunk; the cost of a tick is on
/diagnostics. (Recording off by default: ``test_controller_node.py``.)

Counted in commands and states, not in milliseconds, except the crash bound: the recorder's flush period plus a
second for a writer thread on a loaded machine.
"""

from __future__ import annotations

import math
import re
import signal
import time
from pathlib import Path

import numpy as np
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, controlling, planar2_target

from snn_sac_ros.core.recording.reader import ReadResult, load_ticks, read_messages, stamp_seconds

COMMANDS = "/effort_controller/commands"


def _recording_controller(path: Path, **params: object) -> NodeProcess:
    return NodeProcess(CONTROLLER, controller_params(record_path=str(path), learning=False, resume=False,
                                                     save_path=str(path.with_suffix(".npz")), save_period_s=0.0,
                                                     **params))


def _run_for(probe: RobotProbe, commands: int) -> None:
    start = time.monotonic()
    probe.spin_until(lambda: len(probe.commands_after(start)) >= commands, 120, f"{commands} commands")


def test_the_recording_holds_the_published_commands_and_every_state_the_ticks_used(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    node = _recording_controller(path, record_flush_s=0.1)
    with controlling(node, RobotProbe()) as (_, probe):
        _run_for(probe, 600)
        probe.spin_until(lambda: probe.diagnostics.get("cost_ticks_sampled", "0") != "0", 30,
                         "a sampled tick's cost on /diagnostics")
        diagnostics = dict(probe.diagnostics)
        received = len(probe.received)
    assert diagnostics["recording"] == "recording" and diagnostics["record_path"] == str(path)
    assert int(diagnostics["recorder_dropped"]) == 0
    assert float(diagnostics["cost_spikes"]) > 0 and float(diagnostics["cost_synaptic_events"]) > 0
    assert float(diagnostics["cost_loihi_nj"]) > 0 and float(diagnostics["cost_cpu_nj"]) > 0
    closed = re.search(r"recording closed: (\d+) messages written to (.+), (\d+) dropped; (\d+) commands published",
                       node.stderr)
    assert closed, node.stderr[-3000:]
    written, dropped, published = int(closed[1]), int(closed[3]), int(closed[4])
    assert closed[2] == str(path) and dropped == 0

    result = ReadResult()
    messages = list(read_messages(path, result=result))
    assert result.complete and len(messages) == written
    assert result.metadata["snn_sac_ros"]["arm"] == "planar2"
    topics = [m.topic for m in messages]
    commands = topics.count(COMMANDS)
    assert commands >= 0.99 * published and published >= received > 600, (commands, published, received)
    assert {"/joint_states", "/target", "/diagnostics", "/snn_sac_controller/tick"} <= set(topics)
    # every tick's state is a recorded joint state, stamp (to the float's resolution) and positions alike
    states = [(stamp_seconds(m.message.header), list(m.message.position)) for m in messages
              if m.topic == "/joint_states"]
    stamps = np.array([t for t, _ in states])
    ticks = load_ticks(path)
    assert len(ticks) > 500
    for t, q in zip(ticks.t, ticks.q):
        i = int(np.argmin(np.abs(stamps - t)))
        assert abs(stamps[i] - t) < 2e-6 and states[i][1] == list(q), t
    assert np.all(np.isfinite(ticks.action)) and np.all(np.isfinite(ticks.ee))
    assert not ticks.learning.any() and np.all(ticks.episode == 0)
    # the tick's end effector is the planar2 arm's forward kinematics of the state it used
    from snn_sac_ros.core.arm import PyBulletArm

    with PyBulletArm("planar2") as arm:
        np.testing.assert_allclose(ticks.ee[-1], arm.forward_kinematics(ticks.q[-1]), atol=1e-9)


def test_a_paused_recording_takes_nothing_and_goes_on_when_resumed(tmp_path: Path) -> None:
    """``record_paused`` at run time: nothing is recorded while it is true (log times are the hooks' own, so a margin
    covers a hook that read the flag just before the change), the file stays open, and recording resumes."""
    path = tmp_path / "paused.mcap"
    node = _recording_controller(path, record_flush_s=0.1)
    with controlling(node, RobotProbe()) as (_, probe):
        _run_for(probe, 300)
        assert probe.set_parameter("snn_sac_controller", "record_paused", True).successful
        paused_at = time.time()
        probe.spin_until(lambda: probe.diagnostics.get("recording") == "paused", 30, "recording: paused")
        _run_for(probe, 300)
        resumed_at = time.time()
        assert probe.set_parameter("snn_sac_controller", "record_paused", False).successful
        probe.spin_until(lambda: probe.diagnostics.get("recording") == "recording", 30, "recording again")
        _run_for(probe, 300)
    log_times = np.array([m.log_time_ns * 1e-9 for m in read_messages(path)])
    during = (log_times > paused_at + 0.05) & (log_times < resumed_at)
    assert not during.any(), f"{during.sum()} messages recorded while paused"
    assert (log_times < paused_at).sum() > 300 and (log_times > resumed_at).sum() > 300
    assert "recording paused" in node.stderr and "recording resumed" in node.stderr


def test_a_sigkilled_controller_leaves_its_recording_readable_up_to_the_last_chunk(tmp_path: Path) -> None:
    """Only the chunk open at the kill (at most ``record_flush_s`` of the run) and what still waited in the queue
    may be lost: the newest joint state in the file is that recent, and everything before it is there."""
    path, flush = tmp_path / "killed.mcap", 0.2
    node = _recording_controller(path, record_flush_s=flush)
    probe = RobotProbe()
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("a first non-zero command", timeout=90)
        _run_for(probe, 1000)
        node.process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        node.process.wait(10)
    finally:
        probe.close()
        node.stop()
    assert node.process.returncode == -signal.SIGKILL
    result = ReadResult()
    messages = list(read_messages(path, result=result))
    assert not result.complete  # no footer: the controller never closed the file
    stamps = [stamp_seconds(m.message.header) for m in messages if m.topic == "/joint_states"]
    assert len(stamps) > 100 and stamps == sorted(stamps)
    lost = killed_at - stamps[-1]
    print(f"recorded {len(stamps)} states over {stamps[-1] - stamps[0]:.2f} s; lost the last {lost:.3f} s")
    assert lost < flush + 1.0, f"the last {lost:.2f} s before the kill are missing (record_flush_s {flush})"
    # nothing missing before the cut: a tick's state was queued before its record, so every tick record in the file
    # has its joint state in the file too
    ticks = load_ticks(path)
    assert len(ticks) > 100 and all(math.isfinite(t) for t in ticks.t)
    recorded = np.array(stamps)
    for t in ticks.t:
        assert np.min(np.abs(recorded - t)) < 2e-6, t
