"""What each launch file starts, described once.

``launch/sim_reach.launch.py`` and ``launch/controller.launch.py`` turn these descriptions into
``launch_ros`` ``Node`` actions (:func:`launch_description`), and ``snn-sac-ros demo`` turns the same
descriptions into processes (:func:`command_line`), with the same parameter files, so what the demo runs
is what ``ros2 launch`` runs. This module imports no ROS package itself: ``launch`` and ``launch_ros`` are
imported only inside :func:`launch_description`, which only a ROS install calls.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn_sac_ros.core.resources import data_path

PACKAGE = "snn_sac_ros"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a launch: which executable, under which name, with which parameters and remappings."""

    executable: str
    module: str  # the Python module whose main() the executable runs
    name: str
    parameter_files: tuple[str, ...] = ()  # names under the package's config/ folder, or paths
    parameters: dict[str, Any] = field(default_factory=dict)  # overrides, applied after the files
    remappings: tuple[tuple[str, str], ...] = ()

    def parameter_paths(self) -> list[Path]:
        """The parameter files in the order they apply: a bare name is one of the package's configs."""
        return [data_path("config", name) if Path(name).name == name else Path(name).expanduser()
                for name in self.parameter_files]


@dataclass(frozen=True)
class Argument:
    """A launch argument: default (as launch passes it, a string), meaning, and how to parse it."""

    default: str
    description: str
    kind: type = str

    def parse(self, text: str) -> Any:
        if self.kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {text!r}")
            return lowered in ("true", "1")
        return self.kind(text)


SIM_REACH_ARGUMENTS: dict[str, Argument] = {
    "arm": Argument("planar2", "arm preset (planar2, kuka_iiwa, panda) or URDF path"),
    "checkpoint": Argument("", "controller checkpoint (.npz); empty: the one the package ships for the arm"),
    "use_sim_time": Argument("true", "run every node on the simulator's /clock", bool),
    "learning": Argument("true", "online learning on at start", bool),
    "real_time_factor": Argument("1.0", "simulated seconds per wall-clock second", float),
    "control_rate_hz": Argument("500.0", "controller tick rate [Hz]", float),
    "reaches": Argument("20", "number of reach targets before the target node stops", int),
    "reach_seconds": Argument("3.0", "sim seconds per reach target", float),
    "payload_kg": Argument("2.0", "payload added at the end effector half-way through (0: none)", float),
    "output_dir": Argument("", "folder for the reach log and snapshots (empty: none)"),
    "seed": Argument("1", "seed of the reach target sequence", int),
    "gui": Argument("false", "open PyBullet's GUI (needs a display)", bool),
}

CONTROLLER_ARGUMENTS: dict[str, Argument] = {
    "params_file": Argument("", "your robot's YAML parameter file, applied after the package's defaults"),
    "checkpoint": Argument("", "controller checkpoint (.npz); empty: the one the package ships for the arm"),
    "control_rate_hz": Argument("500.0", "controller tick rate [Hz]", float),
    "learning": Argument("false", "online learning at start (off on hardware until it is proven: see README)", bool),
    "max_torque": Argument("", "comma-separated per-joint torque limits tighter than the URDF [Nm]"),
    "joint_states_topic": Argument("/joint_states", "joint state topic to read"),
    "command_topic": Argument("/effort_controller/commands", "forward command controller topic to write"),
    "target_topic": Argument("/target", "geometry_msgs/PointStamped reach targets"),
    "use_sim_time": Argument("false", "follow /clock (only with a simulator)", bool),
}


def parse_arguments(arguments: dict[str, Argument], values: dict[str, str]) -> dict[str, Any]:
    """Launch-argument strings to typed values; unknown names are refused."""
    unknown = set(values) - set(arguments)
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}; known: {sorted(arguments)}")
    typed = {}
    for name, argument in arguments.items():
        text = values.get(name, argument.default)
        try:
            typed[name] = argument.parse(text)
        except ValueError as error:
            raise ValueError(f"launch argument {name}: {error}") from None
    return typed


def sim_reach_nodes(**values: str) -> list[NodeSpec]:
    """The simulated arm demo: PyBullet arm, spiking SAC controller, reach target publisher/scorer."""
    a = parse_arguments(SIM_REACH_ARGUMENTS, values)
    sim_time = {"use_sim_time": a["use_sim_time"]}
    return [
        NodeSpec("arm_sim", "snn_sac_ros.adapters.ros.sim_node", "arm_sim", ("arm_sim.yaml",),
                 {"arm": a["arm"], "real_time_factor": a["real_time_factor"], "gui": a["gui"],
                  **({"snapshot_path": str(Path(a["output_dir"]) / "frame_{n}.png")} if a["output_dir"] else {})}),
        NodeSpec("snn_sac_controller", "snn_sac_ros.adapters.ros.controller_node", "snn_sac_controller",
                 ("snn_sac_controller.yaml",),
                 {**sim_time, "arm": a["arm"], "checkpoint": a["checkpoint"], "learning": a["learning"],
                  "control_rate_hz": a["control_rate_hz"],
                  **({"save_path": str(Path(a["output_dir"]) / "online_weights.npz"),
                      "spike_log": str(Path(a["output_dir"]) / "spikes.npz")} if a["output_dir"] else {})}),
        NodeSpec("reach_targets", "snn_sac_ros.adapters.ros.reach_targets_node", "reach_targets",
                 ("reach_targets.yaml",),
                 {**sim_time, "arm": a["arm"], "reaches": a["reaches"], "reach_seconds": a["reach_seconds"],
                  "payload_kg": a["payload_kg"], "output_dir": a["output_dir"], "seed": a["seed"]}),
    ]


def controller_nodes(**values: str) -> list[NodeSpec]:
    """The controller alone, for a physical arm under ros2_control."""
    a = parse_arguments(CONTROLLER_ARGUMENTS, values)
    # The user's file comes after the package's defaults, before the launch-argument overrides.
    files = ("snn_sac_controller.yaml", *([a["params_file"]] if a["params_file"] else []))
    parameters: dict[str, Any] = {"use_sim_time": a["use_sim_time"], "checkpoint": a["checkpoint"],
                                  "control_rate_hz": a["control_rate_hz"], "learning": a["learning"]}
    if a["max_torque"]:
        parameters["max_torque"] = [float(v) for v in a["max_torque"].split(",")]
    spec = NodeSpec("snn_sac_controller", "snn_sac_ros.adapters.ros.controller_node", "snn_sac_controller",
                    files, parameters,
                    (("joint_states", a["joint_states_topic"]), ("effort_controller/commands", a["command_topic"]),
                     ("target", a["target_topic"])))
    return [spec]


LAUNCHES = {"sim_reach": (SIM_REACH_ARGUMENTS, sim_reach_nodes),
            "controller": (CONTROLLER_ARGUMENTS, controller_nodes)}


def _ros_value(value: Any) -> str:
    """A parameter value as ``--ros-args -p name:=value`` takes it (YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def command_line(spec: NodeSpec, python: str = sys.executable) -> list[str]:
    """The command that starts ``spec`` as ``ros2 launch`` would, without the ros2 CLI."""
    args = [python, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    for path in spec.parameter_paths():
        args += ["--params-file", str(path)]
    for name, value in spec.parameters.items():
        args += ["-p", f"{name}:={_ros_value(value)}"]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return args


def launch_description(launch: str) -> Any:
    """The ``launch.LaunchDescription`` for ``launch`` (``sim_reach`` or ``controller``); needs launch_ros."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    arguments, make_nodes = LAUNCHES[launch]

    def nodes(context: Any) -> list[Any]:
        values = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        return [Node(package=PACKAGE, executable=s.executable, name=s.name, output="screen",
                     parameters=[*(str(p) for p in s.parameter_paths()), s.parameters],
                     remappings=list(s.remappings))
                for s in make_nodes(**values)]

    declared = [DeclareLaunchArgument(name, default_value=a.default, description=a.description)
                for name, a in arguments.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
