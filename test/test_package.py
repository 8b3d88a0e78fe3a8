"""package.xml is a valid format-3 manifest that names what the package needs on a ROS install, and
requirements-ros.txt gives a ROS install's venv the rest without touching the distribution's numpy or ROS."""

from __future__ import annotations

import re
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]
#: what the nodes import from ROS, and the Python libraries by their rosdep keys
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "sensor_msgs", "std_msgs", "geometry_msgs",
                "std_srvs", "rosgraph_msgs", "diagnostic_msgs", "lifecycle_msgs", "visualization_msgs",
                "ament_index_python", "launch", "launch_ros"}
PYTHON_KEYS = {"python3-numpy", "python3-scipy", "python3-numba", "python3-matplotlib", "python3-tqdm",
               "python3-pybullet-pip", "python3-gymnasium-pip"}


def _requirements(name: str) -> dict[str, str]:
    lines = (REPO / name).read_text().splitlines()
    pins = [re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line) for line in lines if line and not line.startswith(("#", "-r"))]
    return {m.group(1).lower(): m.group(2) for m in pins if m}


def test_package_xml_parses_and_lists_every_dependency() -> None:
    package = parse_package(str(REPO / "package.xml"))
    package.validate()
    assert package.package_format == 3 and package.name == "snn_sac_ros"
    assert package.get_build_type() == "ament_python"
    run = {d.name for d in package.exec_depends}
    assert ROS_PACKAGES | PYTHON_KEYS <= run, sorted((ROS_PACKAGES | PYTHON_KEYS) - run)
    tests = {d.name for d in package.test_depends}
    assert "python3-yaml" in tests and "python3-yaml" not in run  # only the tests read YAML
    assert "nengo" in (REPO / "package.xml").read_text()  # the comment says which library has no key


def test_ros_requirements_pin_no_numpy_and_no_ros_wheels() -> None:
    ros = _requirements("requirements-ros.txt")
    core = _requirements("requirements-core.txt")
    assert "numpy" not in ros and not [name for name in ros if name.startswith("ros-")]
    assert set(core) - set(ros) == {"numpy", "pyyaml"}, set(core) ^ set(ros)
    assert all(ros[name] == core[name] for name in ros), "requirements-ros.txt pins other versions than core"
