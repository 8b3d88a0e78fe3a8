"""A reliable subscriber of every topic the demo's nodes publish, run as a process of its own so that a test
can SIGSTOP it (``python test/slow_subscriber.py COUNT_FILE``). It writes how many messages it has received
to COUNT_FILE ten times a second, and exits on SIGTERM."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from visualization_msgs.msg import Marker

TOPICS = {"/joint_states": JointState, "/clock": Clock, "/ee_pose": PoseStamped, "/diagnostics": DiagnosticArray,
          "/target_marker": Marker, "/effort_controller/commands": Float64MultiArray, "/target": PointStamped}
#: reliable and deep: a stopped reader leaves every writer with samples it never acknowledges
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)


def main(count_file: Path) -> None:
    rclpy.init()
    node = Node("slow_subscriber")
    received = [0]

    def count(_msg: object) -> None:
        received[0] += 1

    for topic, msg_type in TOPICS.items():
        node.create_subscription(msg_type, topic, count, QOS)
    node.create_timer(0.1, lambda: count_file.write_text(str(received[0])))
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main(Path(sys.argv[1]))
