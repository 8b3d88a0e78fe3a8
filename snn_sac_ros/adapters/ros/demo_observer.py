"""The demo's observer: an rclpy node that records what the demo plots, while the nodes run elsewhere.

It only listens (``ee_pose``, ``target``, ``joint_states``, ``/diagnostics``) and asks the simulator for
a few snapshots; it never commands the arm.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from tqdm import tqdm

from snn_sac_ros.adapters.ros.common import STATE_QOS, time_to_seconds
from snn_sac_ros.supervision import Supervisor


class DemoObserver(Node):
    """Records end-effector distance, torques, controller diagnostics and the learned damping gains
    (decimated to ``record_hz``)."""

    def __init__(self, frames_at: list[int], record_hz: float = 100.0) -> None:
        super().__init__("demo_observer")
        self.frames_at = set(frames_at)
        self.min_gap = 1.0 / record_hz
        self.target: np.ndarray | None = None
        self.targets_seen = 0
        self.series: dict[str, list] = {"t": [], "distance": [], "ee": [], "target": [], "torque_t": [],
                                        "torque": [], "q": [], "damping_t": [], "damping": []}
        self.controller: dict[str, str] = {}
        self.sim_status: dict[str, str] = {}
        self._last_pose_t = self._last_state_t = -np.inf
        self.create_subscription(PoseStamped, "ee_pose", self._pose, STATE_QOS)
        self.create_subscription(PointStamped, "target", self._target, 10)
        self.create_subscription(JointState, "joint_states", self._joint_state, STATE_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)
        self.snapshot = self.create_client(Trigger, "arm_sim/snapshot")

    def _target(self, msg: PointStamped) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        if self.target is None or not np.array_equal(point, self.target):
            self.target = point
            self.targets_seen += 1
            if self.targets_seen - 1 in self.frames_at and self.snapshot.service_is_ready():
                self.snapshot.call_async(Trigger.Request())

    def _pose(self, msg: PoseStamped) -> None:
        t = time_to_seconds(msg.header.stamp)
        if self.target is None or t - self._last_pose_t < self.min_gap:
            return
        self._last_pose_t = t
        p = msg.pose.position
        ee = np.array([p.x, p.y, p.z])
        self.series["t"].append(t)
        self.series["ee"].append(ee)
        self.series["target"].append(self.target)
        self.series["distance"].append(float(np.linalg.norm(ee - self.target)))

    def _joint_state(self, msg: JointState) -> None:
        t = time_to_seconds(msg.header.stamp)
        if t - self._last_state_t < self.min_gap:
            return
        self._last_state_t = t
        self.series["torque_t"].append(t)
        self.series["torque"].append(list(msg.effort))
        self.series["q"].append(list(msg.position))

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith("snn_sac_controller"):
                self.controller = values
                gains = [float(g) for g in values.get("damping_gains", "").split(",") if g]
                if gains and self.series["t"]:  # stamped with the newest pose's sim time
                    self.series["damping_t"].append(self.series["t"][-1])
                    self.series["damping"].append(gains)
            elif status.name.startswith("arm_sim"):
                self.sim_status = values


def observe(nodes: Supervisor, reaches: int, timeout: float, frames_at: list[int]) -> dict:
    """Record until the reach_targets node finishes; a node that dies raises ``NodeFailedError`` (all stopped)."""
    rclpy.init()
    node = DemoObserver(frames_at)
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
            distance = node.series["distance"][-1] if node.series["distance"] else float("nan")
            bar.set_postfix(distance_cm=f"{distance * 100:.1f}", rate_hz=node.controller.get("control_rate_hz", "-"),
                            refresh=False)
        nodes.check()  # reach_targets itself failed?
        bar.update(max(0, reaches - bar.n) if not nodes.running("reach_targets") else 0)
    finally:
        bar.close()
        executor.remove_node(node)
        record = {"series": {k: np.asarray(v, dtype=float) for k, v in node.series.items()},
                  "controller": dict(node.controller), "sim": dict(node.sim_status)}
        node.destroy_node()
        rclpy.try_shutdown()
    return record
