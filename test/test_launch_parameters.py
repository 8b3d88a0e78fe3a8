"""Parameters as a ROS user sets and reads them, over real DDS.

``controller.launch.py params_file:=my_arm.yaml``: the user's file decides every parameter no launch
argument was given for (its ``checkpoint:`` is not replaced by an empty default), through the plan, the
command line it makes, and the running node's parameters read back. ``ros2 param dump``: one
``get_parameters`` request for every declared parameter of every node gets every value.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters, ListParameters
from ros_helpers import CONTROLLER, NodeProcess, Probe, stop_all_cleanly

from snn_sac_ros import bringup
from snn_sac_ros.core.resources import shipped_checkpoint

SIM = "snn_sac_ros.adapters.ros.sim_node"
TARGETS = "snn_sac_ros.adapters.ros.reach_targets_node"
NODE = "snn_sac_controller"


def my_arm_yaml(folder: Path) -> tuple[Path, dict[str, object]]:
    """A user's parameter file for their arm, with its own checkpoint, rate and learning; and those values."""
    checkpoint = folder / "my_arm_policy.npz"
    shutil.copy(shipped_checkpoint("planar2"), checkpoint)
    values: dict[str, object] = {"arm": "planar2", "checkpoint": str(checkpoint), "control_rate_hz": 250.0,
                                 "learning": True, "use_sim_time": False, "command_controller": "",
                                 "save_path": str(folder / "weights.npz"), "state_timeout": 0.05}
    lines = [f"{NODE}:", "  ros__parameters:"]
    lines += [f"    {k}: {str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, str) else v}"
              for k, v in values.items()]
    path = folder / "my_arm.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, values


def test_the_controller_launch_plan_keeps_what_the_users_file_sets(tmp_path: Path) -> None:
    path, _ = my_arm_yaml(tmp_path)
    plan = bringup.controller_plan(params_file=str(path))
    (spec,) = plan.nodes
    overridden = {"checkpoint", "control_rate_hz", "learning", "use_sim_time", "max_torque"} & set(spec.parameters)
    assert not overridden, f"launch arguments the user did not give override their file: {spec.parameters}"
    line = bringup.command_line(spec, plan=plan)
    files = [line[i + 1] for i, a in enumerate(line) if a == "--params-file"]
    assert files[-1] == str(path), "the user's file must come last, after the package's defaults"
    assert not [a for a in line if a.split(":=")[0] in overridden | {"checkpoint", "learning"}], line
    # a launch argument the user does give overrides the file
    (given,) = bringup.controller_plan(params_file=str(path), control_rate_hz="200.0", learning="false").nodes
    assert given.parameters == {"control_rate_hz": 200.0, "learning": False}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The controller started from controller.launch.py's command line with my_arm.yaml, beside arm_sim and
    reach_targets, each in its own process; and the values of my_arm.yaml."""
    folder = tmp_path_factory.mktemp("launch_parameters")
    path, values = my_arm_yaml(folder)
    plan = bringup.controller_plan(params_file=str(path))
    started = {NODE: NodeProcess(CONTROLLER, {}, command=bringup.command_line(plan.nodes[0], plan=plan)),
               "arm_sim": NodeProcess(SIM, {"arm": "planar2"}),
               "reach_targets": NodeProcess(TARGETS, {"reaches": 3})}
    probe = Probe("parameter_probe")
    try:
        yield {"probe": probe, "processes": started, "values": values}
    finally:
        probe.close()
        stop_all_cleanly(started.values())


def test_the_controller_started_with_the_users_file_runs_its_checkpoint(nodes: dict) -> None:
    probe, values, process = nodes["probe"], nodes["values"], nodes["processes"][NODE]
    probe.wait_lifecycle(NODE, "unconfigured")
    for name in ("checkpoint", "control_rate_hz", "learning", "use_sim_time", "save_path"):
        assert probe.get_parameter(NODE, name) == values[name], name
    assert probe.transition(NODE, "configure"), process.stderr[-3000:]
    configured = next(line for line in process.lines if "configured:" in line)
    assert f"checkpoint {values['checkpoint']}" in configured and "250 Hz" in configured, configured


@pytest.mark.parametrize("name", ["arm_sim", NODE, "reach_targets"])
def test_one_request_gets_every_declared_parameter(nodes: dict, name: str) -> None:
    """What ``ros2 param dump`` and rqt_reconfigure do: list the names, then ask for all of them at once."""
    probe = nodes["probe"]
    listed = probe.call(ListParameters, f"/{name}/list_parameters", ListParameters.Request(), timeout=90)
    names = list(listed.result.names)
    assert len(names) > 5, names
    values = probe.call(GetParameters, f"/{name}/get_parameters", GetParameters.Request(names=names)).values
    assert len(values) == len(names), f"{name}: {len(values)} values for {len(names)} names"
    unset = [n for n, v in zip(names, values) if v.type == ParameterType.PARAMETER_NOT_SET]
    assert not unset, f"{name}: parameters without a value {unset}"
