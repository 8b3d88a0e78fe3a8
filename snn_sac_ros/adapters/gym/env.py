"""``snn_sac_ros/ArmReach-v0``: the reach task on the PyBullet arm, as a gymnasium env.

The env adds nothing of its own to the physics: observations and torques go through the shared
contracts (:mod:`snn_sac_ros.core.contracts`), so a policy trained here runs unchanged in the ROS node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from snn_sac_ros.core.arm import ArmSpec, PyBulletArm
from snn_sac_ros.core.arm.pybullet_arm import ArmState
from snn_sac_ros.core.arm.randomization import RandomizationProfile, load_profile
from snn_sac_ros.core.contracts import contracts_for
from snn_sac_ros.core.task import SUCCESS_THRESHOLDS_M, ReachTask


class ArmReachEnv(gym.Env):
    """Reach a random target with joint torques.

    Parameters
    ----------
    arm: preset (``planar2``, ``kuka_iiwa``, ``panda``), URDF path, or :class:`ArmSpec`.
    joints, ee_link: for a URDF path, the controlled joints and end-effector link.
    render_mode: ``"rgb_array"`` (TinyRenderer, no display needed).
    gui: open PyBullet's own GUI window (needs a display) to watch the arm.
    physics_dt: physics step [s]; control_hz: policy rate [Hz] (a whole number of physics steps).
    episode_seconds: length of one reach [s] (default: the arm's).
    gravity_compensation: policy outputs a residual on gravity compensation (True) or the full
        torque (False); default: the arm's.
    success_threshold: distance [m] for ``info["is_success"]``; torque_cost, precision_weight,
        precision_scale: reward terms (see :class:`ReachTask`; ``precision_weight=0`` is Reacher's reward).
    randomize: a randomisation profile (:mod:`snn_sac_ros.core.arm.randomization`: a shipped name, a YAML path
        or a profile), drawn again at every reset from the reset's seed (targets stay those of the nominal
        env); the policy sees the sensors' readings, reward and success use the true end effector. The
        contracts are the nominal arm's. Default: off, the nominal arm.
    observe_last_action: the observation ends with the previous step's action (zero after a reset), so that a
        policy can see the command still in flight under a delay. Default: off.
    chain_reaches: the probability that a reset keeps the arm where the last reach left it (pose, velocity and
        last action) and only sets a new target, as reaches chain on a robot; otherwise the arm starts near home.
        Default: 0, every reach from home.
    added_torque: ``(sensed state, target, policy torque) -> torque [Nm]`` added to the policy's every step, for a
        pathway that runs beside the policy as in the controller (an adaptation); it sees what the policy saw.

    ``info`` holds ``distance`` [m], ``is_success``, ``success_2cm``, ``success_5cm``, ``target`` and
    ``ee_position`` [m, base frame].
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, arm: str | ArmSpec = "planar2", *, joints: list[str] | None = None,
                 ee_link: str | None = None, render_mode: str | None = None, physics_dt: float = 1e-3,
                 control_hz: float = 50.0, episode_seconds: float | None = None,
                 gravity_compensation: bool | None = None, success_threshold: float = 0.02,
                 torque_cost: float = 0.05, precision_weight: float = 0.5, precision_scale: float = 0.02,
                 gui: bool = False, randomize: str | RandomizationProfile | None = None,
                 observe_last_action: bool = False, chain_reaches: float = 0.0,
                 added_torque: Callable[[ArmState, np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        substeps = round(1.0 / (control_hz * physics_dt))
        if substeps < 1 or abs(substeps * physics_dt * control_hz - 1.0) > 1e-6:
            raise ValueError(f"control period 1/{control_hz} s must be a whole number of physics steps of "
                             f"{physics_dt} s")
        if not 0.0 <= chain_reaches <= 1.0:
            raise ValueError(f"chain_reaches is a probability in [0, 1], got {chain_reaches}")
        self.render_mode = render_mode
        self.chain_reaches = float(chain_reaches)
        self.added_torque = added_torque
        self.arm = PyBulletArm(arm, physics_dt=physics_dt, substeps=substeps, joints=joints, ee_link=ee_link,
                               gravity_compensation=gravity_compensation, gui=gui)
        self.task = ReachTask(success_threshold=success_threshold, torque_cost=torque_cost,
                              precision_weight=precision_weight, precision_scale=precision_scale)
        center, reach = self.task.workspace(self.arm)
        self.observation_contract, self.action_contract = contracts_for(self.arm, center, reach,
                                                                        last_action=observe_last_action)
        self.randomization = load_profile(randomize)  # after the contracts: they describe the nominal arm
        self.arm.perturb(self.randomization)
        seconds = self.arm.spec.episode_seconds if episode_seconds is None else episode_seconds
        self.max_episode_steps = max(1, round(seconds / self.arm.control_dt))
        self.metadata = {**self.metadata, "render_fps": round(control_hz)}
        size = self.observation_contract.size
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.action_contract.size,), dtype=np.float32)
        self.target = np.zeros(3)
        self._last_action = np.zeros(self.action_contract.size)
        self._steps = 0
        self._marker: int | None = None
        self._state = self.arm.state()
        self._sensed = self._state  # what the last observation was made of

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """New episode: a new reachable target, the arm near home (small random offset) or, chained, where the
        last reach left it.

        ``options`` may set ``target`` [m, base frame] and ``q`` [rad] explicitly, and ``chain`` (bool) to chain
        this reach or not (default: drawn with probability ``chain_reaches``). Chained or not, reset ``seed``
        gives the same target. A chained reach keeps the arm's motion; the perturbation's per-episode draw
        (and its command delay line) starts again as at any reset.
        """
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        if "q" in options:
            home_start = np.asarray(options["q"], dtype=float)
        else:  # drawn even when chained, so that the target drawn next is the same either way
            noise = rng.uniform(-1.0, 1.0, self.arm.n_joints) * self.arm.spec.home_noise
            home_start = np.clip(self.arm.home + noise, self.arm.lower, self.arm.upper)
        target = (np.asarray(options["target"], dtype=float) if "target" in options
                  else self.task.sample_target(self.arm, rng))
        chain = bool(options["chain"]) if "chain" in options else (
            self.chain_reaches > 0.0 and rng.random() < self.chain_reaches)
        if seed is not None and self.arm.perturbation is not None:
            self.arm.perturbation.seed(seed)
        if chain and "q" not in options:
            self._state = self.arm.reset(self._state.q, self._state.dq)
        else:
            self._state = self.arm.reset(home_start)
            self._last_action = np.zeros(self.action_contract.size)
        self.target = target
        self._steps = 0
        if self._marker is not None:
            self.arm.move_marker(self._marker, self.target)
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=float)
        torque = self.action_contract.to_torque(action)  # the arm adds gravity compensation itself
        if self.added_torque is not None:
            torque = torque + self.added_torque(self._sensed, self.target, torque)
        self._state = self.arm.apply_torque(torque)
        self._steps += 1
        distance = self.task.distance(self._state.ee_position, self.target)
        self._last_action = np.clip(action, -1.0, 1.0)
        reward = self.task.reward(distance, self._last_action)
        truncated = self._steps >= self.max_episode_steps
        return self._observation(), reward, False, truncated, self._info(distance)

    def _observation(self) -> np.ndarray:
        self._sensed = s = self.arm.measure(self._state)
        contract = self.observation_contract
        return contract.encode(s.q, s.dq, s.ee_position, self.target,
                               self._last_action if contract.last_action else None)

    def _info(self, distance: float | None = None) -> dict[str, Any]:
        if distance is None:
            distance = self.task.distance(self._state.ee_position, self.target)
        two, five = SUCCESS_THRESHOLDS_M
        return {"distance": distance, "is_success": self.task.is_success(distance),
                "success_2cm": distance <= two, "success_5cm": distance <= five,
                "target": self.target.copy(), "ee_position": self._state.ee_position.copy()}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._marker is None:
            self._marker = self.arm.add_marker()
            self.arm.move_marker(self._marker, self.target)
        return self.arm.render()

    def close(self) -> None:
        self.arm.close()
