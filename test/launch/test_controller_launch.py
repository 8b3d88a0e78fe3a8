"""launch_testing test of ``controller.launch.py``, for machines with a full ROS 2 install.

Run with ``launch_test test/launch/test_controller_launch.py``. The controller starts from a user's
parameter file in a namespace of its own with ``autostart:=true``: the launch configures and activates it,
with the file's values (its rate, its arm) and not the launch arguments' defaults. On a pip-only machine
pytest skips this module; test_launch_parameters.py starts the same command line there.
"""

from __future__ import annotations

import re
import tempfile
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is only on full ROS 2 installs")

import launch_testing.actions
import launch_testing.asserts
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "controller.launch.py"
MY_ARM = """snn_sac_controller:
  ros__parameters:
    arm: planar2
    control_rate_hz: 250.0
    command_controller: ''
    robot_description_timeout: 0.0
"""


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    params = Path(tempfile.mkdtemp(prefix="controller_launch_test_")) / "my_arm.yaml"
    params.write_text(MY_ARM)
    controller = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"params_file": str(params), "autostart": "true", "namespace": "arm1"}.items())
    return LaunchDescription([controller, launch_testing.actions.ReadyToTest()])


class TestController(unittest.TestCase):
    def test_the_users_file_configures_it_and_the_launch_activates_it(self, proc_output) -> None:
        proc_output.assertWaitFor(re.compile(r"configured: planar2 .* 250 Hz"), timeout=120)  # the file's values
        proc_output.assertWaitFor("active: commanding torques", timeout=60)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_the_controller_exits_cleanly(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
