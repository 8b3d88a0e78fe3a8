"""Shared test set-up: keep DDS on loopback, give each test session its own ROS domain."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ["ROS_DOMAIN_ID"] = os.environ.get("SNN_SAC_ROS_TEST_DOMAIN", str(random.randint(101, 200)))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The fake robots of the tests publish from threads: let them take the GIL every 0.5 ms, not every 5 ms
# (Python's default), or a busy test thread stretches their 2 ms period to 5-15 ms.
sys.setswitchinterval(0.0005)
# Nodes save learned weights under $ROS_HOME: keep the tests' saves out of the user's ~/.ros.
os.environ["ROS_HOME"] = tempfile.mkdtemp(prefix="snn_sac_ros_test_ros_home_")


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """Remove the session's ROS_HOME (every node the tests started has exited by now)."""
    shutil.rmtree(os.environ["ROS_HOME"], ignore_errors=True)
