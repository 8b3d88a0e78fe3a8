"""A reliable subscriber of every topic the demo's nodes publish, run as a process of its own so that a test
can SIGSTOP it (``python test/slow_subscriber.py COUNT_FILE``). Ten times a second it writes to COUNT_FILE
how many messages it has received and, on a second line, the last effort command as JSON (its values and
when it was received, wall-clock ns); it exits on SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import time
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
    last_command: dict[str, object] = {}

    def count(_msg: object) -> None:
        received[0] += 1

    def command(msg: Float64MultiArray) -> None:
        count(msg)
        last_command.update(values=list(msg.data), received_ns=time.time_ns())

    for topic, msg_type in TOPICS.items():
        node.create_subscription(msg_type, topic, command if msg_type is Float64MultiArray else count, QOS)
    def write() -> None:  # atomically: a reader never sees a half-written file
        partial = count_file.with_suffix(".partial")
        partial.write_text(f"{received[0]}\n{json.dumps(last_command)}")
        partial.replace(count_file)

    node.create_timer(0.1, write)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main(Path(sys.argv[1]))
