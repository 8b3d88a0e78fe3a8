"""ament_python build of snn_sac_ros: Python package, console scripts, and share/ data files."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "snn_sac_ros"


def share(folder: str, pattern: str) -> tuple[str, list[str]]:
    """One data_files entry: files of ``folder`` matching ``pattern`` into share/snn_sac_ros/folder."""
    return (f"share/{PACKAGE}/{folder}", sorted(glob(f"{folder}/{pattern}")))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*launch.py"),
        share("config", "*.yaml"),
        share("config", "*.rviz"),
        share("config/randomization", "*.yaml"),
        share("urdf", "*.urdf"),
        share("checkpoints", "*.npz"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="snn_sac_ros maintainers",
    maintainer_email="maintainers@snn-sac-ros.invalid",
    description="Spiking Soft Actor-Critic torque control of robot arms with Nengo in ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "snn-sac-ros = snn_sac_ros.cli:main",
            "arm_sim = snn_sac_ros.adapters.ros.sim_node:main",
            "snn_sac_controller = snn_sac_ros.adapters.ros.controller_node:main",
            "reach_targets = snn_sac_ros.adapters.ros.reach_targets_node:main",
        ],
    },
)
