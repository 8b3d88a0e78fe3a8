"""The launch files and the demo start the same nodes with the same parameter files, and those files only
hold parameters their nodes declare. ``ros2 launch`` is not installable here, so the launch files are
checked against the shared description, and the nodes are started for real to list what they declare."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from snn_sac_ros import bringup

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("launch", sorted(bringup.LAUNCHES))
def test_launch_file_builds_from_the_shared_description(launch: str) -> None:
    tree = ast.parse((REPO / "launch" / f"{launch}.launch.py").read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    calls = [n for n in ast.walk(functions["generate_launch_description"]) if isinstance(n, ast.Call)]
    assert any(getattr(c.func, "id", "") == "launch_description" and c.args and
               getattr(c.args[0], "value", None) == launch for c in calls)


def test_every_executable_is_a_console_script_with_a_main() -> None:
    setup = (REPO / "setup.py").read_text()
    scripts = dict(re.findall(r'"([\w-]+) = ([\w.]+):main"', setup))
    for launch, (_, make_plan) in bringup.LAUNCHES.items():
        for spec in make_plan().nodes:
            if spec.package != bringup.PACKAGE:  # robot_state_publisher, RViz: other packages' executables
                continue
            assert scripts.get(spec.executable) == spec.module, f"{launch}: {spec.executable}"
            module = __import__(spec.module, fromlist=["main"])
            assert callable(module.main)


def test_parameter_files_parse_and_are_keyed_by_node_name() -> None:
    for launch, (_, make_plan) in bringup.LAUNCHES.items():
        for spec in make_plan().nodes:
            for path in spec.parameter_paths():
                data = yaml.safe_load(path.read_text())
                assert list(data) == [spec.name], f"{launch}: {path.name}"
                assert isinstance(data[spec.name]["ros__parameters"], dict)


def test_launch_arguments_are_typed_and_checked() -> None:
    specs = bringup.sim_reach_nodes(arm="kuka_iiwa", learning="false", reaches="3")
    controller = next(s for s in specs if s.executable == "snn_sac_controller")
    assert controller.parameters["arm"] == "kuka_iiwa" and controller.parameters["learning"] is False
    with pytest.raises(ValueError, match="learning"):
        bringup.sim_reach_nodes(learning="maybe")
    with pytest.raises(ValueError, match="unknown launch arguments"):
        bringup.sim_reach_nodes(speed="9")
    (spec,) = bringup.controller_nodes(max_torque="1,2.5", command_topic="/arm/effort_controller/commands")
    assert spec.parameters["max_torque"] == [1.0, 2.5]
    assert ("effort_controller/commands", "/arm/effort_controller/commands") in spec.remappings


def test_command_line_passes_files_overrides_and_remappings_like_ros2_launch() -> None:
    (spec,) = bringup.controller_nodes(params_file="/tmp/my_arm.yaml", max_torque="1,2")
    line = bringup.command_line(spec, python="python")
    assert line[:3] == ["python", "-m", spec.module]
    files = [line[i + 1] for i, a in enumerate(line) if a == "--params-file"]
    assert Path(files[0]).name == "snn_sac_controller.yaml" and files[1] == "/tmp/my_arm.yaml"
    assert "max_torque:=[1.0, 2.0]" in line
    assert "__node:=snn_sac_controller" in line


def test_the_sim_plan_brings_the_controller_up_before_the_first_target_and_ends_with_the_reaches() -> None:
    """What sim_reach.launch.py makes of the plan (launch_actions: LifecycleNode with configure/activate events,
    Shutdown when reach_targets exits) rests on these flags; the demo's supervisor on the same ones."""
    plan = bringup.sim_reach_plan()
    nodes = {s.name: s for s in plan.nodes}
    assert plan.autostart and nodes["snn_sac_controller"].lifecycle
    assert [s.name for s in plan.nodes if s.ends_launch] == ["reach_targets"]
    assert nodes["reach_targets"].parameters["controller_node"] == "snn_sac_controller"
    assert nodes["robot_state_publisher"].optional and not nodes["robot_state_publisher"].module
    assert not bringup.controller_plan().autostart  # hardware: a lifecycle manager or the user brings it up
    with pytest.raises(ValueError, match="log_level"):
        bringup.sim_reach_plan(log_level="loud")


def test_with_an_output_folder_the_arm_renders_the_first_quarters_and_last_reach_into_it() -> None:
    nodes = {s.name: s for s in bringup.sim_reach_plan(output_dir="/tmp/run", reaches="20").nodes}
    assert nodes["arm_sim"].parameters["snapshot_targets"] == [0, 5, 10, 15, 19]
    assert nodes["arm_sim"].parameters["snapshot_path"] == "/tmp/run/frame_{n}.png"
    assert bringup.frame_reaches(1) == [0]
    assert "snapshot_targets" not in {s.name: s for s in bringup.sim_reach_plan().nodes}["arm_sim"].parameters


def test_rt_priority_puts_the_arms_stepping_and_the_control_thread_under_sched_fifo() -> None:
    nodes = {s.name: s for s in bringup.sim_reach_plan(rt_priority="70").nodes}
    assert nodes["arm_sim"].parameters["thread_priority"] == 70
    assert nodes["snn_sac_controller"].parameters["thread_priority"] == 70
    assert "thread_priority" not in nodes["reach_targets"].parameters
    defaults = {s.name: s for s in bringup.sim_reach_plan().nodes}  # ros2_control's default priority
    assert defaults["arm_sim"].parameters["thread_priority"] == 50
    assert defaults["snn_sac_controller"].parameters["thread_priority"] == 50
    normal = {s.name: s for s in bringup.sim_reach_plan(rt_priority="0").nodes}
    assert normal["arm_sim"].parameters["thread_priority"] == 0
    with pytest.raises(ValueError, match="rt_priority"):
        bringup.sim_reach_plan(rt_priority="high")


def test_in_a_namespace_parameter_files_still_reach_their_node(tmp_path: Path) -> None:
    """A file keyed by the bare node name applies only in the root namespace; in a namespace the plan passes
    a copy keyed /**/<name>, in the same order, and leaves files keyed otherwise alone."""
    mine = tmp_path / "my_arm.yaml"
    mine.write_text("# my arm\nsnn_sac_controller:\n  ros__parameters:\n    control_rate_hz: 250.0\n")
    plan = bringup.controller_plan(params_file=str(mine), namespace="arm1")
    (spec,) = plan.nodes
    assert spec.parameter_paths() == [bringup.data_path("config", "snn_sac_controller.yaml"), mine]
    package, user = spec.parameter_paths(plan.namespace)
    assert package.name == "snn_sac_controller.yaml" and user.name == "my_arm.yaml" and user != mine
    for path in (package, user):
        assert list(yaml.safe_load(path.read_text())) == ["/**/snn_sac_controller"]
    assert yaml.safe_load(user.read_text())["/**/snn_sac_controller"]["ros__parameters"]["control_rate_hz"] == 250.0
    line = bringup.command_line(spec, plan=plan)
    assert [line[i + 1] for i, a in enumerate(line) if a == "--params-file"] == [str(package), str(user)]
    assert "__ns:=/arm1" in line
    wildcard = tmp_path / "any.yaml"
    wildcard.write_text("/**:\n  ros__parameters:\n    control_rate_hz: 100.0\n")
    (other,) = bringup.controller_plan(params_file=str(wildcard), namespace="arm1").nodes
    assert other.parameter_paths("arm1")[-1] == wildcard
