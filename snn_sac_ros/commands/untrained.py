"""Checkpoints with untrained weights, of any size: for what does not depend on training (a tick's time, a
contract's plumbing)."""

from __future__ import annotations

from pathlib import Path


def hidden_sizes(neurons: int, depth: int) -> tuple[int, ...]:
    """Per-layer width so that actor + two critics, ``depth`` hidden layers each, hold ``neurons`` in total."""
    return (max(1, round(neurons / (3 * depth))),) * depth


def make_checkpoint(arm: str, hidden: tuple[int, ...], path: Path, seed: int = 0, last_action: bool = False) -> Path:
    """A checkpoint for ``arm`` with random weights of the given hidden sizes, saved to ``path``; ``last_action``:
    its observation ends with the last action."""
    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.commands.train import checkpoint_metadata
    from snn_sac_ros.core.agent.checkpoint import save_checkpoint
    from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC

    env = gym.make("snn_sac_ros/ArmReach-v0", arm=arm, observe_last_action=last_action)
    agent = SpikingSAC(env.observation_space.shape[0], env.action_space.shape[0], SACConfig(hidden=hidden), seed=seed)
    meta = checkpoint_metadata(env, agent, seed, 0, "untrained")
    env.close()
    return save_checkpoint(path, agent.arrays(), meta)
