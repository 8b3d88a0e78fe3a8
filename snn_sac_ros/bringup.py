"""What each launch file starts, described once.

``launch/sim_reach.launch.py`` and ``launch/controller.launch.py`` turn these descriptions into launch_ros
actions (:func:`launch_description`), and ``snn-sac-ros demo`` and the benchmarks turn the same descriptions
into processes (:func:`command_line`), with the same parameter files, so what the demo runs is what
``ros2 launch`` runs. A :class:`Plan` holds the nodes and what applies to all of them (namespace, log level,
whether the lifecycle nodes are brought up). This module imports no ROS package itself: ``launch`` and
``launch_ros`` are imported only inside :func:`launch_description`, which only a ROS install calls.

Launch arguments with an empty default are *not given* unless the user gives them: they then set no
parameter at all, so a user's ``params_file`` is never overridden by a default they did not choose.
"""

from __future__ import annotations

import atexit
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn_sac_ros.core.resources import data_path

PACKAGE = "snn_sac_ros"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
BOOL = ("true", "false")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a launch: which executable, under which name, with which parameters and remappings.

    ``lifecycle``: a managed node, configured and activated by the launch (``autostart``). ``ends_launch``:
    the launch is over when this node exits. ``optional``: started only where its package is installed
    (robot_state_publisher, RViz: not on PyPI).
    """

    executable: str
    module: str  # the Python module whose main() the executable runs ('' for another package's executable)
    name: str
    parameter_files: tuple[str, ...] = ()  # names under the package's config/ folder, or paths
    parameters: dict[str, Any] = field(default_factory=dict)  # overrides, applied after the files
    remappings: tuple[tuple[str, str], ...] = ()
    package: str = PACKAGE
    lifecycle: bool = False
    ends_launch: bool = False
    optional: bool = False
    arguments: tuple[str, ...] = ()

    def parameter_paths(self, namespace: str = "") -> list[Path]:
        """The parameter files in the order they apply: a bare name is one of the package's configs.

        A file keyed by the bare node name (``snn_sac_controller:``, as ours and most users' are) applies to
        the node in the root namespace only: in a ``namespace`` the node is ``/<namespace>/<name>`` and ROS
        ignores it. So there such a file is given as a copy keyed ``/**/<name>`` (the node in any namespace).
        """
        paths = [data_path("config", name) if Path(name).name == name else Path(name).expanduser()
                 for name in self.parameter_files]
        return [_any_namespace(path, self.name) for path in paths] if namespace.strip("/") else paths


_REKEYED: dict[tuple[Path, str], Path] = {}


def _any_namespace(path: Path, node: str) -> Path:
    """``path`` with its top-level ``<node>:`` key made ``/**/<node>:`` (a copy in a temporary folder)."""
    if not path.is_file():
        return path  # the node says that the file is missing
    text = path.read_text()
    rekeyed = re.sub(rf"^{re.escape(node)}:", f"/**/{node}:", text, flags=re.MULTILINE)
    if rekeyed == text:
        return path
    if (path, node) not in _REKEYED:
        folder = Path(tempfile.mkdtemp(prefix="snn_sac_ros_params_"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _REKEYED[path, node] = folder / path.name
        _REKEYED[path, node].write_text(rekeyed)
    return _REKEYED[path, node]


@dataclass(frozen=True)
class Plan:
    """A launch: its nodes, and the namespace, log level and lifecycle bring-up that apply to all of them."""

    nodes: list[NodeSpec]
    namespace: str = ""
    log_level: str = "info"
    autostart: bool = True


@dataclass(frozen=True)
class Argument:
    """A launch argument: default (as launch passes it, a string; '' for "not given"), meaning, how to parse it,
    and its allowed values (launch refuses others)."""

    default: str
    description: str
    kind: type = str
    choices: tuple[str, ...] = ()

    def parse(self, text: str) -> Any:
        if self.choices and text not in self.choices:
            raise ValueError(f"expected one of {list(self.choices)}, got {text!r}")
        if self.kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {text!r}")
            return lowered in ("true", "1")
        return self.kind(text)


def _flag(default: str, description: str) -> Argument:
    return Argument(default, description, bool, BOOL)


_COMMON = {
    "namespace": Argument("", "namespace of every node (empty: none)"),
    "log_level": Argument("info", "log level of every node", choices=LOG_LEVELS),
}

SIM_REACH_ARGUMENTS: dict[str, Argument] = {
    "arm": Argument("planar2", "arm preset (planar2, kuka_iiwa, panda) or URDF path"),
    "checkpoint": Argument("", "controller checkpoint (.npz); empty: the one the package ships for the arm"),
    "use_sim_time": _flag("true", "run every node on the simulator's /clock"),
    "learning": _flag("true", "online learning on at start"),
    "adaptation": _flag("false", "add the PES adaptive dynamics pathway to the controller (learns while learning "
                        "is on)"),
    "adaptation_while_frozen": _flag("false", "the adaptation pathway learns while learning is off too (the policy "
                                     "frozen)"),
    "real_time_factor": Argument("1.0", "simulated seconds per wall-clock second", float),
    "control_rate_hz": Argument("500.0", "controller tick rate [Hz]", float),
    "reaches": Argument("20", "number of reach targets; the launch ends after the last", int),
    "reach_seconds": Argument("3.0", "sim seconds per reach target", float),
    "payload_kg": Argument("2.0", "payload added at the end effector half-way through (0: none)", float),
    "output_dir": Argument("", "folder for the reach log, snapshots, learned weights and the run's recording "
                           "(run.mcap) (empty: none)"),
    "seed": Argument("1", "seed of the reach target sequence and of the arm's randomisation", int),
    "randomize": Argument("", "arm_sim's randomisation profile or held-out perturbation (a name under "
                          "config/randomization or a YAML path); empty: the nominal arm"),
    "rt_priority": Argument("50", "SCHED_FIFO priority (1-99) of arm_sim's stepping thread and of the controller's "
                            "control thread, ros2_control's 50 by default (needs root or CAP_SYS_NICE; refused with "
                            "a warning otherwise, the nodes run on); 0: normal scheduling", int),
    "gui": _flag("false", "open PyBullet's GUI (needs a display)"),
    "autostart": _flag("true", "configure and activate the controller (lifecycle transitions from the launch)"),
    "rviz": _flag("false", "start RViz with the arm and the target (needs rviz2 and a display)"),
    **_COMMON,
}

#: Arguments of the hardware launch. Those with an empty default are set only when given: the package's
#: defaults and then the user's params_file decide otherwise.
CONTROLLER_ARGUMENTS: dict[str, Argument] = {
    "params_file": Argument("", "your robot's YAML parameter file, applied after the package's defaults"),
    "checkpoint": Argument("", "controller checkpoint (.npz) (not given: params_file's, else the shipped one)"),
    "control_rate_hz": Argument("", "controller tick rate [Hz] (not given: params_file's, else 500)", float),
    "learning": Argument("", "online learning at start (not given: params_file's, else false; see README)", bool,
                         ("", *BOOL)),
    "max_torque": Argument("", "comma-separated per-joint torque limits [Nm], each > 0 (not given: params_file's, "
                           "else the checkpoint's torque scale)"),
    "use_sim_time": Argument("", "follow /clock, only with a simulator (not given: params_file's, else false)",
                             bool, ("", *BOOL)),
    "joint_states_topic": Argument("/joint_states", "joint state topic to read"),
    "command_topic": Argument("/effort_controller/commands", "forward command controller topic to write"),
    "target_topic": Argument("/target", "geometry_msgs/PointStamped reach targets"),
    "autostart": _flag("false", "configure and activate at once (false: a lifecycle manager or you do it)"),
    **_COMMON,
}


def parse_arguments(arguments: dict[str, Argument], values: dict[str, str]) -> dict[str, Any]:
    """Launch-argument strings to typed values (None for an empty string: not given); unknown names refused."""
    unknown = set(values) - set(arguments)
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}; known: {sorted(arguments)}")
    typed = {}
    for name, argument in arguments.items():
        text = values.get(name, argument.default)
        if text == "" and argument.kind is not str:
            typed[name] = None  # not given
            continue
        try:
            typed[name] = argument.parse(text)
        except ValueError as error:
            raise ValueError(f"launch argument {name}: {error}") from None
    return typed


def robot_description(arm: str) -> str:
    """The arm's URDF text, as robot_state_publisher takes it, with relative mesh paths made ``file://`` URIs."""
    from snn_sac_ros.core.arm.specs import resolve_arm

    path = resolve_arm(arm).urdf_path()
    folder = path.parent

    def absolute(match: re.Match[str]) -> str:
        name = match.group(2)
        if "://" in name or name.startswith("/"):
            return match.group(0)
        return f'{match.group(1)}"file://{(folder / name).resolve()}"'

    return re.sub(r'(filename=)"([^"]+)"', absolute, path.read_text())


def frame_reaches(reaches: int) -> list[int]:
    """The reaches the demo shows as rendered frames: first, quarters, last."""
    return sorted({0, reaches // 4, reaches // 2, (3 * reaches) // 4, max(0, reaches - 1)})


def sim_reach_plan(**values: str) -> Plan:
    """The simulated arm demo: PyBullet arm, spiking SAC controller, reach targets, and for RViz the robot
    state publisher (and RViz itself with ``rviz:=true``)."""
    a = parse_arguments(SIM_REACH_ARGUMENTS, values)
    sim_time = {"use_sim_time": a["use_sim_time"]}
    out = Path(a["output_dir"]) if a["output_dir"] else None
    nodes = [
        NodeSpec("arm_sim", "snn_sac_ros.adapters.ros.sim_node", "arm_sim", ("arm_sim.yaml",),
                 {"arm": a["arm"], "real_time_factor": a["real_time_factor"], "gui": a["gui"],
                  "thread_priority": a["rt_priority"],
                  **({"randomize": a["randomize"], "seed": a["seed"]} if a["randomize"] else {}),
                  **({"snapshot_path": str(out / "frame_{n}.png"),
                      "snapshot_targets": frame_reaches(a["reaches"])} if out else {})}),
        NodeSpec("snn_sac_controller", "snn_sac_ros.adapters.ros.controller_node", "snn_sac_controller",
                 ("snn_sac_controller.yaml",),
                 {**sim_time, "arm": a["arm"], "checkpoint": a["checkpoint"], "learning": a["learning"],
                  "adaptation": a["adaptation"], "adaptation_while_frozen": a["adaptation_while_frozen"],
                  "control_rate_hz": a["control_rate_hz"], "command_controller": "",
                  "thread_priority": a["rt_priority"],
                  **({"save_path": str(out / "online_weights.npz"), "spike_log": str(out / "spikes.npz"),
                      "record_path": str(out / "run.mcap")} if out else {})}, lifecycle=True),
        NodeSpec("reach_targets", "snn_sac_ros.adapters.ros.reach_targets_node", "reach_targets",
                 ("reach_targets.yaml",),
                 {**sim_time, "arm": a["arm"], "reaches": a["reaches"], "reach_seconds": a["reach_seconds"],
                  "payload_kg": a["payload_kg"], "output_dir": a["output_dir"], "seed": a["seed"],
                  "controller_node": "snn_sac_controller"},
                 ends_launch=True),
        NodeSpec("robot_state_publisher", "", "robot_state_publisher", (),
                 {**sim_time, "robot_description": robot_description(a["arm"])}, package="robot_state_publisher",
                 optional=True),
    ]
    if a["rviz"]:
        nodes.append(NodeSpec("rviz2", "", "rviz2", package="rviz2", optional=True,
                              arguments=("-d", str(data_path("config", "sim_reach.rviz")))))
    return Plan(nodes, a["namespace"], a["log_level"], a["autostart"])


def controller_plan(**values: str) -> Plan:
    """The controller alone, for a physical arm under ros2_control."""
    a = parse_arguments(CONTROLLER_ARGUMENTS, values)
    # The user's file comes after the package's defaults; only launch arguments given override it.
    files = ("snn_sac_controller.yaml", *([a["params_file"]] if a["params_file"] else []))
    given = {name: a[name] for name in ("checkpoint", "control_rate_hz", "learning", "use_sim_time")
             if a[name] is not None and a[name] != ""}
    if a["max_torque"]:
        given["max_torque"] = [float(v) for v in a["max_torque"].split(",")]
    spec = NodeSpec("snn_sac_controller", "snn_sac_ros.adapters.ros.controller_node", "snn_sac_controller",
                    files, given,
                    (("joint_states", a["joint_states_topic"]), ("effort_controller/commands", a["command_topic"]),
                     ("target", a["target_topic"])), lifecycle=True)
    return Plan([spec], a["namespace"], a["log_level"], a["autostart"])


def sim_reach_nodes(**values: str) -> list[NodeSpec]:
    """The nodes of :func:`sim_reach_plan` (what the demo and the benchmarks start)."""
    return sim_reach_plan(**values).nodes


def controller_nodes(**values: str) -> list[NodeSpec]:
    """The nodes of :func:`controller_plan`."""
    return controller_plan(**values).nodes


LAUNCHES = {"sim_reach": (SIM_REACH_ARGUMENTS, sim_reach_plan),
            "controller": (CONTROLLER_ARGUMENTS, controller_plan)}


def _ros_value(value: Any) -> str:
    """A parameter value as ``--ros-args -p name:=value`` takes it (YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def command_line(spec: NodeSpec, python: str = sys.executable, plan: Plan | None = None) -> list[str]:
    """The command that starts ``spec`` as ``ros2 launch`` would, without the ros2 CLI.

    With no launch system to drive its transitions, a lifecycle node of a plan that brings them up gets
    ``autostart:=true`` and brings itself up.
    """
    if not spec.module:
        raise ValueError(f"{spec.executable} is another package's executable: only ros2 launch starts it")
    args = [python, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    if plan is not None and plan.namespace:
        args += ["-r", f"__ns:=/{plan.namespace.strip('/')}"]
    if plan is not None:
        args += ["--log-level", plan.log_level]
    for path in spec.parameter_paths(plan.namespace if plan is not None else ""):
        args += ["--params-file", str(path)]
    parameters = dict(spec.parameters)
    if spec.lifecycle and plan is not None and plan.autostart:
        parameters["autostart"] = True
    for name, value in parameters.items():
        args += ["-p", f"{name}:={_ros_value(value)}"]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return args


def launch_description(launch: str) -> Any:
    """The ``launch.LaunchDescription`` for ``launch`` (``sim_reach`` or ``controller``); needs launch_ros."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    from snn_sac_ros.launch_actions import node_actions

    arguments, make_plan = LAUNCHES[launch]

    def nodes(context: Any) -> list[Any]:
        return node_actions(make_plan(**{name: LaunchConfiguration(name).perform(context) for name in arguments}))

    declared = [DeclareLaunchArgument(name, default_value=a.default, description=a.description,
                                      **({"choices": list(a.choices)} if a.choices else {}))
                for name, a in arguments.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
