"""The gymnasium adapter: ``snn_sac_ros/ArmReach-v0``."""

from snn_sac_ros.adapters.gym.env import ArmReachEnv

__all__ = ["ArmReachEnv"]
