"""Replay buffer: a fixed-size ring of transitions in preallocated float32 arrays."""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Stores ``(obs, action, reward, next_obs, done)``; samples uniform minibatches.

    ``done`` is true only for real terminations: a time-limit truncation still bootstraps (as in
    CleanRL, which stores ``final_observation`` as the next observation).
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, seed: int = 0) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros((capacity, 1), np.float32)
        self.dones = np.zeros((capacity, 1), np.float32)
        self.size = 0
        self._pos = 0
        self._rng = np.random.default_rng(seed)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, done: bool) -> None:
        i = self._pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.dones[i] = next_obs, float(done)
        self._pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        idx = self._rng.integers(0, self.size, batch_size)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]
