"""A publish that fails never kills a node: every node counts it, logs it throttled, and goes on.

The failure is a real one from the middleware. Fast DDS refuses every publish on a topic whose writer
profile (an XML file, ``FASTDDS_DEFAULT_PROFILES_FILE`` with ``RMW_FASTRTPS_USE_QOS_FROM_XML=1``, as
real-time set-ups use them) asks for ``PREALLOCATED`` history memory: our messages have unbounded
arrays, there is no room for their payload, and rclpy's ``publish`` raises (``RuntimeError``, from the
C++ exception). Each node runs with such a profile on some of its topics while its other topics work,
so its own diagnostics (or its results) show that it goes on.

The other way a publish is refused, a reliable subscriber that stops taking data, is the second test:
a subscriber of every topic SIGSTOPped while the three nodes run, then resumed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from ros_helpers import (
    CONTROLLER,
    NodeProcess,
    Probe,
    RobotProbe,
    StoppableSubscriber,
    controller_params,
    planar2_target,
)

from snn_sac_ros.adapters.ros.common import STATE_QOS
from snn_sac_ros.core.resources import shipped_checkpoint

SIM = "snn_sac_ros.adapters.ros.sim_node"
TARGETS = "snn_sac_ros.adapters.ros.reach_targets_node"


def refusing_profile(folder: Path, topics: list[str]) -> dict[str, str]:
    """The environment that makes Fast DDS refuse every publish on ``topics`` (full names)."""
    writers = "".join(f'<data_writer profile_name="{t}"><historyMemoryPolicy>PREALLOCATED</historyMemoryPolicy>'
                      "</data_writer>" for t in topics)
    path = folder / "refusing_profile.xml"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><dds xmlns="http://www.eprosima.com"><profiles>{writers}'
                    "</profiles></dds>")
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(path), "RMW_FASTRTPS_USE_QOS_FROM_XML": "1"}


def failure_lines(node: NodeProcess) -> list[str]:
    return [line for line in node.lines if "[publish_failed]" in line]


def assert_throttled(node: NodeProcess, topics: list[str], seconds: float) -> None:
    """Each failing topic is named, and logged at most once a second (plus the first line)."""
    lines = failure_lines(node)
    for topic in topics:
        mine = [line for line in lines if f"on {topic} failed" in line]
        assert mine, f"no [publish_failed] line names {topic}:\n{node.stderr[-3000:]}"
        assert len(mine) <= seconds + 2, f"{len(mine)} lines for {topic} in {seconds:.0f} s: not throttled"
    assert "Traceback" not in node.stderr, node.stderr[-3000:]


class DiagnosticsProbe(Probe):
    """Keeps the newest /diagnostics values of each node by status-name prefix."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.status: dict[str, dict[str, str]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)

    def _diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.status[status.name.split(":")[0]] = {kv.key: kv.value for kv in status.values}

    def value(self, node: str, key: str) -> float:
        return float(self.status.get(node, {}).get(key, "nan"))


@pytest.fixture
def diagnostics() -> Iterator[DiagnosticsProbe]:
    probe = DiagnosticsProbe("publish_failure_probe")
    yield probe
    probe.close()


def test_arm_sim_survives_refused_publishes_counts_and_logs_them(diagnostics: DiagnosticsProbe,
                                                                 tmp_path: Path) -> None:
    refused = ["/joint_states", "/ee_pose"]  # /clock has no unbounded field: it still goes out
    sim = NodeProcess(SIM, {"arm": "planar2"}, env=refusing_profile(tmp_path, refused))
    try:
        diagnostics.spin_until(lambda: diagnostics.value("arm_sim", "publish_failures") > 0
                               or sim.process.poll() is not None, 60, "publish failures on arm_sim's /diagnostics")
        assert sim.process.poll() is None, f"arm_sim died of a refused publish:\n{sim.stderr[-3000:]}"
        start, first = time.monotonic(), diagnostics.value("arm_sim", "publish_failures")
        diagnostics.spin_until(lambda: diagnostics.value("arm_sim", "publish_failures") > first + 500, 30,
                               "more failures counted while the node goes on")
        count = len(diagnostics.clock)
        diagnostics.spin_until(lambda: len(diagnostics.clock) > count + 20, 10, "/clock, which still publishes")
        assert not diagnostics.states, "joint states arrived although every publish was refused"
        assert sim.process.poll() is None
        assert_throttled(sim, refused, time.monotonic() - start + 5)
    finally:
        sim.stop_cleanly()


def test_controller_survives_refused_command_publishes_counts_and_logs_them(tmp_path: Path) -> None:
    refused = ["/effort_controller/commands"]
    node = NodeProcess(CONTROLLER, controller_params(checkpoint=str(shipped_checkpoint("planar2")), resume=False,
                                                     save_path=str(tmp_path / "w.npz"), learning=False),
                       env=refusing_profile(tmp_path, refused))
    probe = RobotProbe("refused_command_probe")
    try:
        probe.send_target(planar2_target())

        def failures() -> float:
            assert node.process.poll() is None, f"the controller died of a refused publish:\n{node.stderr[-3000:]}"
            return float(probe.diagnostics.get("publish_failures", "nan"))

        probe.spin_until(lambda: failures() > 0, 90, "publish failures on the controller's /diagnostics")
        start, first, ticks = time.monotonic(), failures(), int(probe.diagnostics["ticks"])
        probe.spin_until(lambda: failures() > first + 500, 30, "more failures counted while it goes on")
        assert int(probe.diagnostics["ticks"]) > ticks + 500, "the control loop stopped"
        assert not probe.received, "a command arrived although every publish was refused"
        assert_throttled(node, refused, time.monotonic() - start + 5)
    finally:
        probe.close()
        node.stop_cleanly()  # the final zero is refused too: said, and the exit is clean


def test_reach_targets_survives_refused_target_publishes_and_finishes(tmp_path: Path) -> None:
    refused = ["/target"]
    out = tmp_path / "reaches"
    node = NodeProcess(TARGETS, {"reaches": 3, "reach_seconds": 0.5, "payload_kg": 0.0, "output_dir": str(out)},
                       env=refusing_profile(tmp_path, refused))
    probe = Probe("refused_target_probe")
    targets: list[PointStamped] = []
    probe.node.create_subscription(PointStamped, "target", targets.append, 10)
    pose_pub = probe.node.create_publisher(PoseStamped, "ee_pose", STATE_QOS)
    probe.every(0.02, lambda: pose_pub.publish(PoseStamped()))
    try:
        probe.spin_until(lambda: node.process.poll() is not None, 90, "reach_targets to finish its reaches")
        node.process.wait()
        node._reader.join(5)
        assert node.process.returncode == 0, node.stderr[-3000:]
        assert "done: 3 reaches" in node.stderr and (out / "summary.json").exists(), node.stderr[-3000:]
        assert not targets, "a target arrived although every publish was refused"
        assert re.search(r"failed \(\d+ so far\)", node.stderr), node.stderr[-3000:]
        assert_throttled(node, refused, 5.0)
    finally:
        probe.close()
        if node.process.poll() is None:
            node.stop()


def test_a_subscriber_of_every_topic_stopped_then_resumed_stops_no_node(tmp_path: Path) -> None:
    """A reliable subscriber of every topic of the demo's three nodes is SIGSTOPped for a while (its DDS
    queues fill, the writers wait for acknowledgements that do not come), then resumed: every node keeps
    running and commanding throughout, and the resumed subscriber receives again."""
    stalled = StoppableSubscriber(tmp_path)
    sim = NodeProcess(SIM, {"arm": "planar2"})
    controller = NodeProcess(CONTROLLER, controller_params(
        checkpoint=str(shipped_checkpoint("planar2")), resume=False, save_path=str(tmp_path / "w.npz"),
        learning=True, use_sim_time=True))
    targets = NodeProcess(TARGETS, {"reaches": 1000, "reach_seconds": 2.0, "payload_kg": 0.0, "use_sim_time": True})
    nodes = {"arm_sim": sim, "controller": controller, "reach_targets": targets}
    probe = Probe("stalled_subscriber_probe")
    probe.record_commands()

    def alive() -> None:
        for name, node in nodes.items():
            assert node.process.poll() is None, f"{name} died:\n{node.stderr[-3000:]}"
        stalled.alive()

    def commands_flow(what: str) -> None:
        start = time.monotonic()
        probe.spin_until(lambda: alive() or len(probe.commands_after(start)) >= 300, 90, what)

    try:
        commands_flow("commands from the controller driving arm_sim")
        probe.spin_until(lambda: alive() or stalled.count() > 200, 60, "the subscriber receiving")
        stalled.pause()
        stopped_at = stalled.count()
        for _ in range(3):  # several seconds: longer than any writer's blocking time, shorter than a lease
            commands_flow("commands while the subscriber is stopped")
        alive()
        stalled.resume()
        probe.spin_until(lambda: alive() or stalled.count() > stopped_at + 500, 60,
                         "the resumed subscriber receiving again")
        commands_flow("commands after the subscriber resumed")
        for node in nodes.values():
            assert "Traceback" not in node.stderr, node.stderr[-3000:]
    finally:
        probe.close()
        stalled.close()
        targets.stop()
        controller.stop()
        sim.stop()

