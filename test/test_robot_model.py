"""Where the controller's robot model and joint names come from on a real robot, over real DDS.

A ros2_control robot: the URDF on /robot_description (transient_local, published before the controller
starts, as robot_state_publisher does), with package:// meshes that are not installed here and a
continuous joint; joint names with the driver's prefix; a forward command controller whose ``joints``
parameter must match the command order. Stands in for ros2_control: a real rclpy node named
``effort_controller`` holding that parameter.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import yaml
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, planar2_target
from std_msgs.msg import String

from snn_sac_ros.core.resources import data_path, shipped_checkpoint

NODE = "snn_sac_controller"
PREFIX = "left_"
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def robot_urdf() -> str:
    """planar2 as a driver would describe it: prefixed joints, a continuous shoulder, meshes by package://."""
    text = data_path("urdf", "planar2.urdf").read_text()
    text = text.replace('name="shoulder" type="revolute"', f'name="{PREFIX}shoulder" type="continuous"')
    text = text.replace('name="elbow"', f'name="{PREFIX}elbow"')
    text = text.replace('<geometry><cylinder radius="0.02" length="0.30"/></geometry>',
                        '<geometry><mesh filename="package://no_such_robot_description/meshes/upper_arm.stl"/>'
                        '</geometry>')
    assert "package://" in text and f"{PREFIX}shoulder" in text
    return text


def _controller(tmp_path: Path, description: str | None = None, **params: object) -> NodeProcess:
    """The controller, its temporary files in ``tmp_path``; ``description``: a URDF for the robot_description
    parameter (in a parameter file: a command line cannot carry it)."""
    extra: list[str] = []
    if description is not None:
        path = tmp_path / "description.yaml"
        path.write_text(yaml.safe_dump({NODE: {"ros__parameters": {"robot_description": description}}}))
        extra = ["--params-file", str(path)]
    return NodeProcess(CONTROLLER, controller_params(**{
        "autostart": False, "checkpoint": str(shipped_checkpoint("planar2")), "save_path": str(tmp_path / "w.npz"),
        **params}), extra, env={"TMPDIR": str(tmp_path)})


def test_the_robot_model_comes_from_robot_description_with_meshes_it_cannot_find(tmp_path: Path) -> None:
    probe = RobotProbe("description_probe", joints=(f"{PREFIX}shoulder", f"{PREFIX}elbow"))
    description = probe.node.create_publisher(String, "robot_description", LATCHED)
    description.publish(String(data=robot_urdf()))  # before the controller exists, as robot_state_publisher
    node = _controller(tmp_path, arm="", joint_prefix=PREFIX)
    try:
        probe.wait_lifecycle(NODE)
        assert probe.transition(NODE, "configure"), node.stderr
        probe.spin_until(lambda: any("configured:" in line for line in node.lines), 10, "the configure log line")
        configured = next(line for line in node.lines if "configured:" in line)
        assert "from topic /robot_description" in configured and f"['{PREFIX}shoulder', '{PREFIX}elbow']" in configured
        assert any("not found (package://no_such_robot_description" in line for line in node.lines), node.stderr
        assert [f.name for f in tmp_path.iterdir() if f.name.startswith("snn_sac_ros_urdf")] == [], (
            "the temporary URDF was left behind")
        assert probe.transition(NODE, "activate")
        probe.send_target(planar2_target())
        probe.wait_torque("torque on the model from robot_description")
    finally:
        probe.close()
        node.stop_cleanly()


def test_driver_joint_names_are_mapped_and_a_command_order_mismatch_refuses_activation(tmp_path: Path) -> None:
    """The driver names the joints left_*; its forward command controller first lists them in the wrong order."""
    probe = RobotProbe("joint_names_probe", joints=(f"{PREFIX}elbow", f"{PREFIX}shoulder"), q=(1.2, 0.0))
    forward = Node("effort_controller", context=probe.context)
    forward.declare_parameter("joints", [f"{PREFIX}elbow", f"{PREFIX}shoulder"])
    probe.executor.add_node(forward)
    node = _controller(tmp_path, arm="planar2", joint_name_map=[f"shoulder:{PREFIX}shoulder"], joint_prefix=PREFIX,
                       command_controller="effort_controller")
    try:
        probe.wait_lifecycle(NODE)
        assert probe.transition(NODE, "configure"), node.stderr
        mark = len(node.lines)
        assert not probe.transition(NODE, "activate"), "activated with the command controller's joints reversed"
        probe.spin_until(lambda: any("activation refused" in line for line in node.lines[mark:]), 10, "the refusal")
        refusal = "\n".join(node.lines[mark:])
        assert re.search(r"commands joints \['left_elbow', 'left_shoulder'\].*sends \['left_shoulder', 'left_elbow'\]",
                         refusal), refusal
        forward.set_parameters([Parameter("joints", value=[f"{PREFIX}shoulder", f"{PREFIX}elbow"])])
        assert probe.transition(NODE, "activate"), node.stderr
        probe.send_target(planar2_target())
        probe.wait_torque("torque from joint states named by the driver, in its own order")
    finally:
        probe.close()
        node.stop_cleanly()


def test_a_continuous_joint_is_wrapped_not_refused(tmp_path: Path) -> None:
    """The URDF given as the robot_description parameter (the fallback: the topic is not read)."""
    probe = RobotProbe("wrap_probe", joints=(f"{PREFIX}shoulder", f"{PREFIX}elbow"),
                       q=(0.9 + 2 * math.pi, 0.5))  # the encoder counted a whole turn of the continuous joint
    node = _controller(tmp_path, robot_urdf(), arm="", autostart=True, robot_description_timeout=0.0,
                       joint_prefix=PREFIX, joints=[f"{PREFIX}shoulder", f"{PREFIX}elbow"])
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("torque from the wrapped continuous joint", timeout=90)
        assert not [line for line in node.lines if "[out_of_range]" in line], "the continuous joint was refused"
        assert all(np.all(np.isfinite(c)) for c in probe.run_mode("valid", ticks=40))
    finally:
        probe.close()
        node.stop_cleanly()


def test_no_robot_model_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    node = NodeProcess(CONTROLLER, controller_params(arm="", checkpoint=str(shipped_checkpoint("planar2")),
                                                     robot_description_topic="/no_robot_here",
                                                     robot_description_timeout=1.0, save_path=str(tmp_path / "w.npz")))
    assert node.process.wait(60) == 2
    node._reader.join(5)
    assert "nothing on /no_robot_here within 1 s (is robot_state_publisher running?)" in node.stderr, node.stderr
    assert "Traceback" not in node.stderr
