"""Simulated arm demo: PyBullet arm node, spiking SAC controller, reach targets.

    ros2 launch snn_sac_ros sim_reach.launch.py arm:=planar2 learning:=true

The nodes and their parameter files come from ``snn_sac_ros.bringup.sim_reach_nodes``, the same
description ``snn-sac-ros demo`` starts without ``ros2 launch``. Arguments: ``ros2 launch ... --show-args``.
"""

from snn_sac_ros.bringup import launch_description


def generate_launch_description():
    return launch_description("sim_reach")
