"""The control loop's logic, without ROS: one tick, written once."""
