"""Thin adapters from the core to the outside world: gymnasium and ROS 2."""
