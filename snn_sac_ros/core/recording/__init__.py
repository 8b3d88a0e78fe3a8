"""Recording runs as MCAP files (rosbag2's default storage) and reading them back, with no ROS needed."""
