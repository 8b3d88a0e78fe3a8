"""ROS 2 adapters: nodes that translate between messages and the plain-Python core.

Importing this package does not import rclpy; the node modules do.
"""
