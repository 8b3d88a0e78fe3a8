"""``reach_targets``: publishes reach targets, scores each reach, and changes the payload half-way.

The task half of the simulated demo, as a node so that ``ros2 launch`` runs it too: every
``reach_seconds`` (node clock: sim time under ``use_sim_time``) it publishes a new reachable target
(``geometry_msgs/PointStamped`` on ``target``, repeated at 10 Hz for late subscribers), reads the end
effector from ``ee_pose``, and at the end of each reach logs and records the final distance. After
``payload_after`` reaches it sets the simulator's ``payload_kg`` parameter: the arm's dynamics change and
the online learner must adapt. After ``reaches`` reaches it writes ``reaches.csv`` and ``summary.json``
to ``output_dir`` (if set) and exits. With ``controller_node`` set, the first target waits until that
lifecycle node is active, so that no reach is scored while the controller is still loading its model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PointStamped, PoseStamped
from lifecycle_msgs.srv import GetState
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from snn_sac_ros.adapters.ros.common import STATE_QOS, SafePublisher, ThrottledErrors, declare, spin_node
from snn_sac_ros.core.arm import PyBulletArm
from snn_sac_ros.core.task import SUCCESS_THRESHOLDS_M, ReachTask


class ReachTargets(Node):
    """Target publisher and reach scorer; see the module docstring."""

    def __init__(self) -> None:
        super().__init__("reach_targets")
        self.arm_name = declare(self, "arm", "planar2", "arm preset or URDF path (targets are reachable for it)",
                                read_only=True)
        self.reaches = declare(self, "reaches", 20, "number of reaches before the node stops", low=1,
                               high=100000, read_only=True)
        self.reach_seconds = declare(self, "reach_seconds", 3.0, "seconds per target (node clock)", low=0.1,
                                     high=3600.0, read_only=True)
        self.payload_kg = declare(self, "payload_kg", 2.0, "payload set on the simulator (0: none)", low=0.0,
                                  high=100.0, read_only=True)
        self.payload_after = declare(self, "payload_after", -1, "reaches before the payload (-1: half-way)",
                                     low=-1, high=100000, read_only=True)
        self.sim_node = declare(self, "sim_node", "arm_sim", "simulator node whose payload_kg is set",
                                read_only=True)
        self.frame_id = declare(self, "frame_id", "base_link", "frame of the targets", read_only=True)
        self.output_dir = declare(self, "output_dir", "", "folder for reaches.csv and summary.json (empty: none)",
                                  read_only=True)
        seed = declare(self, "seed", 1, "seed of the target sequence", low=0, high=2**31 - 1, read_only=True)
        controller = declare(self, "controller_node", "", "lifecycle node the first target waits for to be active "
                             "('': none)", read_only=True)
        self._controller_state = self.create_client(GetState, f"{controller}/get_state") if controller else None
        self._asked: object = None  # the pending GetState request
        if self.payload_after < 0:
            self.payload_after = self.reaches // 2
        self.task = ReachTask()
        rng = np.random.default_rng(seed)
        with PyBulletArm(self.arm_name) as arm:
            self.targets = [self.task.sample_target(arm, rng) for _ in range(self.reaches)]
        self.target_pub = SafePublisher(self, PointStamped, "target", 10, ThrottledErrors(self.get_logger()))
        self.create_subscription(PoseStamped, "ee_pose", self._pose_callback, STATE_QOS)
        self.param_client = AsyncParameterClient(self, self.sim_node)
        self.results: list[dict] = []
        self.index = -1
        self.ee: np.ndarray | None = None
        self.reach_start = 0.0
        self.done = False
        self.create_timer(0.1, self._timer_callback)

    def _pose_callback(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self.ee = np.array([p.x, p.y, p.z])

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _controller_active(self) -> bool:
        """Whether the first target may go out: no controller to wait for, or it is active (asked every 0.1 s)."""
        if self._controller_state is None:
            return True
        if self._asked is not None and self._asked.done():
            result, self._asked = self._asked.result(), None
            if result is not None and result.current_state.label == "active":
                self.get_logger().info(f"{self._controller_state.srv_name.rsplit('/', 1)[0]} is active: first target")
                self.destroy_client(self._controller_state)
                self._controller_state = None
                return True
        if self._asked is None and self._controller_state.service_is_ready():
            self._asked = self._controller_state.call_async(GetState.Request())
        return False

    def _timer_callback(self) -> None:
        if self.done or self.ee is None or not self._controller_active():  # the arm and controller first
            return
        now = self._now()
        if self.index < 0 or now - self.reach_start >= self.reach_seconds:
            if self.index >= 0:
                self._score_reach(now)
            self.index += 1
            if self.index >= self.reaches:
                self._finish()
                return
            if self.index == self.payload_after and self.payload_kg > 0:
                self._set_payload(self.payload_kg)
            self.reach_start = now
        target = self.targets[self.index]
        msg = PointStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in target)
        self.target_pub.publish(msg)

    def _score_reach(self, now: float) -> None:
        distance = self.task.distance(self.ee, self.targets[self.index])
        two, five = SUCCESS_THRESHOLDS_M
        payload = self.payload_kg if self.payload_kg > 0 and self.index >= self.payload_after else 0.0
        self.results.append({"reach": self.index, "end_time_s": round(now, 3), "final_distance_m": distance,
                             "success_2cm": distance <= two, "success_5cm": distance <= five,
                             "payload_kg": payload})
        self.get_logger().info(f"reach {self.index + 1}/{self.reaches}: final distance {distance * 100:.1f} cm "
                               f"({'success' if distance <= two else 'miss'} at 2 cm)"
                               + (f", payload {payload:g} kg" if payload else ""))

    def _set_payload(self, kg: float) -> None:
        if not self.param_client.services_are_ready():
            self.get_logger().error(f"cannot set payload: node {self.sim_node!r} has no parameter services")
            return
        self.param_client.set_parameters([Parameter("payload_kg", Parameter.Type.DOUBLE, float(kg))])
        self.get_logger().info(f"payload of {kg:g} kg added at the end effector: the dynamics change now")

    def summary(self) -> dict:
        distances = np.array([r["final_distance_m"] for r in self.results]) if self.results else np.zeros(0)
        two, five = SUCCESS_THRESHOLDS_M
        return {"reaches": len(self.results),
                "success_2cm": float(np.mean(distances <= two)) if distances.size else 0.0,
                "success_5cm": float(np.mean(distances <= five)) if distances.size else 0.0,
                "mean_final_distance_m": float(distances.mean()) if distances.size else float("nan")}

    def _finish(self) -> None:
        self.done = True
        summary = self.summary()
        self.get_logger().info(f"done: {summary['reaches']} reaches, success {summary['success_2cm']:.0%} at 2 cm, "
                               f"{summary['success_5cm']:.0%} at 5 cm")
        self.write_results()
        self.context.try_shutdown()  # ends spin_node's executor: the node's job is done

    def write_results(self) -> None:
        if not self.output_dir or not self.results:
            return
        folder = Path(self.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "reaches.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.results[0]))
            writer.writeheader()
            writer.writerows(self.results)
        (folder / "summary.json").write_text(json.dumps(self.summary(), indent=2))


def main(args: list[str] | None = None) -> int:
    return spin_node(ReachTargets, args, name="reach_targets")


if __name__ == "__main__":
    raise SystemExit(main())
