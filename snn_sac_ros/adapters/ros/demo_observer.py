"""The demo's observer: an rclpy node that follows the run for the progress bar and the summary, while the nodes run
elsewhere (the controller records the run itself, and the plots are drawn from that recording).

It only listens (``ee_pose``, ``target``, ``/diagnostics``); it never commands the arm. The rendered frames are the
simulator's own (``snapshot_targets``): a short run on a loaded machine can end before this node has matched the
``target`` topic.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from tqdm import tqdm

from snn_sac_ros.adapters.ros.common import STATE_QOS
from snn_sac_ros.supervision import Supervisor


class DemoObserver(Node):
    """Keeps the end effector's distance to the target, the targets seen and the last diagnostics of the
    controller and the arm."""

    def __init__(self) -> None:
        super().__init__("demo_observer")
        self.target: np.ndarray | None = None
        self.targets_seen = 0
        self.distance = float("nan")
        self.controller: dict[str, str] = {}
        self.controller_reports = 0
        self.sim_status: dict[str, str] = {}
        self.create_subscription(PoseStamped, "ee_pose", self._pose, STATE_QOS)
        self.create_subscription(PointStamped, "target", self._target, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)

    def _target(self, msg: PointStamped) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        if self.target is None or not np.array_equal(point, self.target):
            self.target = point
            self.targets_seen += 1

    def _pose(self, msg: PoseStamped) -> None:
        if self.target is not None:
            p = msg.pose.position
            self.distance = float(np.linalg.norm(np.array([p.x, p.y, p.z]) - self.target))

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith("snn_sac_controller"):
                self.controller = values
                self.controller_reports += 1
            elif status.name.startswith("arm_sim"):
                self.sim_status = values


#: how long the observer waits, once the reaches are done, for the controller's report of the finished run
FINAL_REPORT_WAIT_S = 10.0


def _await_report(executor: SingleThreadedExecutor, node: DemoObserver, nodes: Supervisor) -> None:
    """Spin until a controller diagnostic published after the reaches ended arrives: the summary describes the whole
    run, also a run shorter than the diagnostics period (bounded: a silent controller leaves it empty)."""
    seen = node.controller_reports
    deadline = time.monotonic() + FINAL_REPORT_WAIT_S
    while (node.controller_reports == seen and nodes.running("snn_sac_controller")
           and time.monotonic() < deadline):
        executor.spin_once(timeout_sec=0.05)


def observe(nodes: Supervisor, reaches: int, timeout: float) -> dict:
    """Record until the reach_targets node finishes; a node that dies raises ``NodeFailedError`` (all stopped)."""
    rclpy.init()
    node = DemoObserver()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    start = time.monotonic()
    bar = tqdm(total=reaches, desc="reaches", unit="reach")
    try:
        while nodes.running("reach_targets"):
            executor.spin_once(timeout_sec=0.05)
            nodes.check()
            if time.monotonic() - start > timeout:
                tqdm.write(f"demo: timed out after {timeout:.0f} s wall time; stopping")
                break
            done = max(0, node.targets_seen - 1)
            if done > bar.n:
                bar.update(done - bar.n)
            bar.set_postfix(distance_cm=f"{node.distance * 100:.1f}",
                            rate_hz=node.controller.get("control_rate_hz", "-"), refresh=False)
        nodes.check()  # reach_targets itself failed?
        bar.update(max(0, reaches - bar.n) if not nodes.running("reach_targets") else 0)
        _await_report(executor, node, nodes)
    finally:
        bar.close()
        executor.remove_node(node)
        record = {"controller": dict(node.controller), "sim": dict(node.sim_status)}
        node.destroy_node()
        rclpy.try_shutdown()
    return record
