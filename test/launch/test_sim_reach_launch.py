"""launch_testing test of ``sim_reach.launch.py``, for machines with a full ROS 2 install.

Run with ``launch_test test/launch/test_sim_reach_launch.py`` (or ``colcon test``). ``launch_testing`` has
no PyPI wheel, so on a pip-only machine pytest skips this module. There the plan this launch file turns
into actions is checked by test_bringup.py, and the same nodes, started from the same plan by
``snn-sac-ros demo``, by test_demo.py.
"""

from __future__ import annotations

import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is only on full ROS 2 installs")

import launch_testing.actions
import launch_testing.asserts
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "sim_reach.launch.py"


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    demo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"reaches": "2", "reach_seconds": "2.0", "payload_kg": "0.0"}.items())
    return LaunchDescription([demo, launch_testing.actions.ReadyToTest()])


class TestSimReach(unittest.TestCase):
    def test_the_launch_brings_the_controller_up_and_scores_the_reaches(self, proc_output) -> None:
        proc_output.assertWaitFor("active: commanding torques", timeout=120)  # configure, activate: the launch's
        proc_output.assertWaitFor("snn_sac_controller is active: first target", timeout=120)
        proc_output.assertWaitFor("reach 1/2", timeout=120)
        proc_output.assertWaitFor("done: 2 reaches", timeout=120)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_ran_and_exited_cleanly(self, proc_info) -> None:
        names = {name.rsplit("-", 1)[0] for name in proc_info.process_names()}
        assert {"arm_sim", "snn_sac_controller", "reach_targets"} <= names, names
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
