"""snn_sac_ros: spiking Soft Actor-Critic control of robot arms with Nengo, in ROS 2."""

__version__ = "0.1.0"

ENV_ID = "snn_sac_ros/ArmReach-v0"


def _register_env() -> None:
    """Register the gymnasium env, so ``gymnasium.make(ENV_ID)`` works after ``import snn_sac_ros``."""
    try:
        import gymnasium
    except ImportError:  # the ROS nodes run without gymnasium
        return
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="snn_sac_ros.adapters.gym.env:ArmReachEnv")


_register_env()
