"""arm_sim's ``randomize`` parameter: the core randomisation over real DDS (latency, quantised joint_states),
and a clear error for an unknown profile."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from ros_helpers import NodeProcess, Probe

MODULE = "snn_sac_ros.adapters.ros.sim_node"


def test_arm_sim_delays_commands_and_quantises_joint_states(tmp_path: Path) -> None:
    profile = tmp_path / "bench_arm.yaml"
    profile.write_text("description: latency and a coarse encoder\ncommand_delay_ms: 10.0\nposition_quantum: 0.001\n")
    # lockstep at 1 kHz: every command runs one 1 ms control step and publishes one joint state
    node = NodeProcess(MODULE, {"arm": "planar2", "lockstep": True, "publish_rate": 1000.0,
                                "randomize": str(profile), "seed": 3})
    probe = Probe("randomize_probe")
    try:
        probe.wait_for_node(node, need_state=False)
        # the start-up line is logged after the subscriptions exist: wait for it
        probe.spin_until(lambda: any("randomisation bench_arm" in line for line in node.lines), 30,
                         "arm_sim's start-up line naming the profile")
        velocities, positions = [], []
        for _ in range(12):
            count = len(probe.states)
            probe.send([1.0, 0.5])
            probe.spin_until(lambda count=count: len(probe.states) > count, 30, "the joint state of a lockstep step")
            velocities.append(np.array(probe.states[-1].velocity))
            positions.append(np.array(probe.states[-1].position))
        # the first 10 ms of commands are still in flight: the arm does not move until the 11th step
        assert all(not np.any(v) for v in velocities[:10]) and np.all(velocities[10] > 0)
        counts = np.array(positions) / 0.001
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
    finally:
        probe.close()
        node.stop_cleanly()


def test_an_unknown_profile_stops_arm_sim_with_a_clear_error() -> None:
    node = NodeProcess(MODULE, {"arm": "planar2", "randomize": "no_such_profile"})
    try:
        code = node.process.wait(60)
    except subprocess.TimeoutExpired:
        node.stop()
        raise AssertionError(f"arm_sim kept running with an unknown profile:\n{node.stderr}") from None
    node._reader.join(5)
    assert code == 2
    assert "cannot start" in node.stderr and "unknown randomisation profile 'no_such_profile'" in node.stderr
    assert "Traceback" not in node.stderr
