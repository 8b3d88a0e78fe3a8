"""ROS 2 message definitions (``ros2msg``) for MCAP files that rosbag2, Foxglove and the mcap reader open.

An MCAP channel in the ``ros2`` profile names its type (``sensor_msgs/msg/JointState``), carries the type's
``.msg`` text with every nested type appended after a ``MSG: pkg/msg/Type`` separator line (as rosbag2 writes
it), and CDR-encoded messages. The texts here are the distro's interface files without their comments, so a
message serialized by rclpy decodes with them field for field; they live in the core so that a recording can
be written and read with no ROS install.

The controller's per-tick record is a type of its own, ``snn_sac_ros/msg/TickRecord``: named fields (Foxglove
plots ``/snn_sac_controller/tick.reward`` by name; a ``Float64MultiArray`` would only have indices) built from
standard field types, its definition embedded in the file. ``ros2 bag info`` lists it and Foxglove and the mcap
reader decode it from that definition; ``ros2 bag play`` republishes only types installed on the machine, so it
replays every standard topic and skips this one with a warning (the package builds no interface library).
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = "=" * 80

_DEFINITIONS: dict[str, str] = {
    "builtin_interfaces/msg/Time": "int32 sec\nuint32 nanosec\n",
    "std_msgs/msg/Header": "builtin_interfaces/Time stamp\nstring frame_id\n",
    "sensor_msgs/msg/JointState": ("std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\n"
                                   "float64[] effort\n"),
    "std_msgs/msg/MultiArrayDimension": "string label\nuint32 size\nuint32 stride\n",
    "std_msgs/msg/MultiArrayLayout": "MultiArrayDimension[] dim\nuint32 data_offset\n",
    "std_msgs/msg/Float64MultiArray": "MultiArrayLayout layout\nfloat64[] data\n",
    "geometry_msgs/msg/Point": "float64 x\nfloat64 y\nfloat64 z\n",
    "geometry_msgs/msg/Quaternion": "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    "geometry_msgs/msg/Pose": "Point position\nQuaternion orientation\n",
    "geometry_msgs/msg/PointStamped": "std_msgs/Header header\nPoint point\n",
    "geometry_msgs/msg/PoseStamped": "std_msgs/Header header\nPose pose\n",
    "diagnostic_msgs/msg/KeyValue": "string key\nstring value\n",
    "diagnostic_msgs/msg/DiagnosticStatus": ("byte OK=0\nbyte WARN=1\nbyte ERROR=2\nbyte STALE=3\nbyte level\n"
                                             "string name\nstring message\nstring hardware_id\nKeyValue[] values\n"),
    "diagnostic_msgs/msg/DiagnosticArray": "std_msgs/Header header\nDiagnosticStatus[] status\n",
    "snn_sac_ros/msg/TickRecord": (
        "# One control tick: the state it used, what the policy saw and did, the reward it was given.\n"
        "std_msgs/Header header  # stamp: the tick's time (sim time under use_sim_time)\n"
        "string[] joint_names\n"
        "float64[] position  # [rad] the joint state the tick used, in joint_names order\n"
        "float64[] velocity  # [rad/s]\n"
        "geometry_msgs/Point ee_position  # [m, base frame] forward kinematics of position\n"
        "geometry_msgs/Point target  # [m, base frame]\n"
        "float32[] observation  # the policy input (the checkpoint's observation contract)\n"
        "float64[] action  # the policy output in [-1, 1]; empty when the policy did not run\n"
        "float64[] torque  # [Nm] the command sent\n"
        "float64 reward  # the reward given to the agent this tick, for the previous action (NaN: none)\n"
        "bool learning  # online learning on\n"
        "bool commanded  # the policy's torque went out (false: zero torque, from the guard)\n"
        "uint32 episode  # reach counter: one more each time the target changes\n"),
}

# the nested types each definition uses, in the order rosbag2 appends them
_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "std_msgs/msg/Header": ("builtin_interfaces/msg/Time",),
    "sensor_msgs/msg/JointState": ("std_msgs/msg/Header", "builtin_interfaces/msg/Time"),
    "std_msgs/msg/MultiArrayLayout": ("std_msgs/msg/MultiArrayDimension",),
    "std_msgs/msg/Float64MultiArray": ("std_msgs/msg/MultiArrayLayout", "std_msgs/msg/MultiArrayDimension"),
    "geometry_msgs/msg/Pose": ("geometry_msgs/msg/Point", "geometry_msgs/msg/Quaternion"),
    "geometry_msgs/msg/PointStamped": ("std_msgs/msg/Header", "builtin_interfaces/msg/Time",
                                       "geometry_msgs/msg/Point"),
    "geometry_msgs/msg/PoseStamped": ("std_msgs/msg/Header", "builtin_interfaces/msg/Time",
                                      "geometry_msgs/msg/Pose", "geometry_msgs/msg/Point",
                                      "geometry_msgs/msg/Quaternion"),
    "diagnostic_msgs/msg/DiagnosticStatus": ("diagnostic_msgs/msg/KeyValue",),
    "diagnostic_msgs/msg/DiagnosticArray": ("std_msgs/msg/Header", "builtin_interfaces/msg/Time",
                                            "diagnostic_msgs/msg/DiagnosticStatus", "diagnostic_msgs/msg/KeyValue"),
    "snn_sac_ros/msg/TickRecord": ("std_msgs/msg/Header", "builtin_interfaces/msg/Time", "geometry_msgs/msg/Point"),
}


@dataclass(frozen=True)
class MessageSchema:
    """A ROS 2 message type as an MCAP schema: its name and its full ``ros2msg`` text."""

    name: str
    text: str

    @property
    def encoding(self) -> str:
        return "ros2msg"


def definition(type_name: str) -> str:
    """The type's own ``.msg`` text (no nested types)."""
    return _DEFINITIONS[type_name]


def schema(type_name: str) -> MessageSchema:
    """The MCAP schema of ``type_name`` (``pkg/msg/Type``): its text and every nested type's, as rosbag2 writes."""
    if type_name not in _DEFINITIONS:
        raise KeyError(f"no message definition for {type_name!r}; known: {sorted(_DEFINITIONS)}")
    parts = [_DEFINITIONS[type_name]]
    parts += [f"{SEPARATOR}\nMSG: {dep}\n{_DEFINITIONS[dep]}" for dep in _DEPENDENCIES.get(type_name, ())]
    return MessageSchema(type_name, "\n".join(parts))


JOINT_STATE = schema("sensor_msgs/msg/JointState")
FLOAT64_ARRAY = schema("std_msgs/msg/Float64MultiArray")
POINT_STAMPED = schema("geometry_msgs/msg/PointStamped")
POSE_STAMPED = schema("geometry_msgs/msg/PoseStamped")
DIAGNOSTIC_ARRAY = schema("diagnostic_msgs/msg/DiagnosticArray")
TICK_RECORD = schema("snn_sac_ros/msg/TickRecord")


def qos_yaml(reliable: bool = True, depth: int = 10, transient_local: bool = False) -> str:
    """A channel's ``offered_qos_profiles`` as rosbag2 (metadata version 9 and later) writes it.

    ``ros2 bag play`` offers each topic with the recorded profile; the MCAP ``ros2`` profile requires the key.
    """
    infinite = "\n    sec: 9223372036\n    nsec: 854775807"
    return (f"- history: keep_last\n  depth: {depth}\n  reliability: {'reliable' if reliable else 'best_effort'}\n"
            f"  durability: {'transient_local' if transient_local else 'volatile'}\n  deadline:{infinite}\n"
            f"  lifespan:{infinite}\n  liveliness: automatic\n  liveliness_lease_duration:{infinite}\n"
            "  avoid_ros_namespace_conventions: false\n")
