"""The spiking SAC controller alone, for a physical arm under ros2_control.

    ros2 launch snn_sac_ros controller.launch.py params_file:=/path/to/my_arm.yaml \
        command_topic:=/effort_controller/commands max_torque:=20,20,10,10,5,5,5

Expects ``joint_state_broadcaster`` on ``joint_states`` and a ``forward_command_controller`` with
``interface_name: effort`` listening on ``command_topic``. The node and its parameter files come from
``snn_sac_ros.bringup.controller_nodes``. Read "Running on a physical arm" in the README first.
"""

from snn_sac_ros.bringup import launch_description


def generate_launch_description():
    return launch_description("controller")
