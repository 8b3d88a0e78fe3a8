"""Evaluation on fixed targets: success at 2 cm and 5 cm, final distance, return.

The policy is run through the Nengo simulator (:class:`OnlineAgent`, actor only, learning off), one
``dt`` tick per call and ``control_dt / dt`` ticks per env step, as the ROS controller runs it; the env
step applies the mean of those ticks' actions (the impulse the per-tick commands would give over the env
step, which holds one torque). ``spiking=False`` uses ``nengo.LIFRate`` neurons, ``spiking=True``
``nengo.LIF``. Episode ``k`` uses
``env.reset(seed=seed + k)``, so every agent (ours, SB3) sees the same targets. ``chained=True`` starts each
reach where the last one left the arm (as the ROS demo's reaches follow one another) instead of near home: the
same targets, from the poses a robot would be in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from snn_sac_ros.core.agent.adaptation import PESAdaptation, PESConfig
from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm
from snn_sac_ros.core.arm.randomization import RandomizationProfile, load_profile, profile_record
from snn_sac_ros.core.task import SUCCESS_THRESHOLDS_M


def run_episodes(env: Any, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int, *,
                 chained: bool = False, on_reset: Callable[[], None] | None = None,
                 on_step: Callable[[int, int], None] | None = None) -> dict:
    """Roll out ``act`` (obs -> action) for ``episodes`` episodes; summary dict. ``chained``: every reach after
    the first starts where the last one ended. ``on_step(episode, step)`` is called after every env step (for
    rendering)."""
    finals, returns = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k, options={"chain": chained and k > 0})
        if on_reset is not None:
            on_reset()
        total, done, step = 0.0, False, 0
        info: dict = {}
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            total += reward
            done = terminated or truncated
            if on_step is not None:
                on_step(k, step)
            step += 1
        finals.append(float(info["distance"]))
        returns.append(total)
    d = np.array(finals)
    lo, hi = SUCCESS_THRESHOLDS_M
    return {"episodes": episodes, "chained": chained, "success_2cm": float(np.mean(d <= lo)),
            "success_5cm": float(np.mean(d <= hi)),
            "mean_final_distance_m": float(d.mean()), "median_final_distance_m": float(np.median(d)),
            "mean_return": float(np.mean(returns))}


def evaluate_checkpoint(path: str, *, episodes: int = 100, spiking: bool = False, seed: int = 100_000,
                        dt: float = 0.001, synapse: float = 0.005, agent_seed: int = 0,
                        perturb: str | RandomizationProfile | None = None, arm: str | None = None,
                        chained: bool = False, control_hz: float | None = None,
                        adaptation: PESConfig | None = None, frames: list[np.ndarray] | None = None,
                        frame_episodes: int = 4, frame_every: int = 2) -> dict:
    """Evaluate a checkpoint in the Nengo simulator on its own arm; summary dict with timing.

    ``perturb``: a randomisation profile to evaluate under (a name, a YAML path or a profile; default: the
    nominal arm), drawn per episode from the episode's seed. ``arm``: the checkpoint's URDF where it is now, if
    it moved (checked to be the same file). ``chained``: each reach from where the last one ended.
    ``control_hz``: the env's step rate (default: the rate the checkpoint was trained at). A higher rate feeds the
    policy a fresh observation every ``1 / control_hz``, as the controller does every tick (500 Hz, ``dt`` 2 ms,
    one Nengo step a tick), where an env step at the trained rate holds one observation and one torque for its
    whole 20 ms. The policy is the same either way (its discount and exploration hold are the checkpoint's). A
    checkpoint that observes its last action is evaluated at its own rate only: the last action it saw in training
    spanned one trained step. The result names the perturbation, the training randomisation and the rate.
    ``adaptation``: run the controller's PES pathway (:class:`~snn_sac_ros.core.agent.adaptation.PESAdaptation`) beside
    the frozen policy, on the nominal model, one step per env step, learning on every step of every episode in turn
    (the controller with ``adaptation`` and ``adaptation_while_frozen`` on): what the deployed controller makes of a
    changed arm, where the policy alone is what it was trained to be. Its decoders start at zero.
    ``frames``: a list that gets a TinyRenderer image (target shown) every ``frame_every`` env steps of the first
    ``frame_episodes`` episodes, for an animation.
    """
    import time

    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.agent.online import OnlineAgent

    ckpt = load_checkpoint(path)
    control_hz = float(control_hz or ckpt.control_hz)
    if not np.isfinite(control_hz) or control_hz <= 0:
        raise ValueError(f"control_hz must be a rate > 0 [Hz], got {control_hz}")
    if ckpt.observation_contract.last_action and control_hz != ckpt.control_hz:
        raise ValueError(f"{path} observes its last action, which spanned one {ckpt.control_hz:g} Hz step in "
                         f"training: evaluate it at {ckpt.control_hz:g} Hz, not {control_hz:g}")
    ticks = round(1.0 / (control_hz * dt))
    if ticks < 1 or abs(ticks * dt * control_hz - 1.0) > 1e-6:
        raise ValueError(f"an env step of 1/{control_hz:g} s must be a whole number of Nengo steps of {dt:g} s")
    profile = load_profile(perturb)
    pathway = model = None
    if adaptation is not None:
        model = PyBulletArm(ckpt.arm_spec(arm))  # the nominal model: the env's arm carries the perturbation
        pathway = PESAdaptation(model, 1.0 / control_hz, adaptation, seed=agent_seed)

    def beside(state: ArmState, target: np.ndarray, torque: np.ndarray) -> np.ndarray:
        return pathway.torque(state.q, state.dq, state.ee_position, target, torque, effort=state.effort)

    env = gym.make("snn_sac_ros/ArmReach-v0", arm=ckpt.arm_spec(arm), randomize=profile,
                   render_mode="rgb_array" if frames is not None else None,
                   observe_last_action=ckpt.observation_contract.last_action, control_hz=control_hz,
                   added_torque=beside if pathway is not None else None)
    base = env.unwrapped
    ckpt = load_checkpoint(path, base.observation_contract, base.action_contract)
    agent = OnlineAgent(ckpt, spiking=spiking, learning=False, dt=dt, seed=agent_seed, synapse=synapse,
                        actor_only=True)

    def act(obs: np.ndarray) -> np.ndarray:
        # The controller applies every tick's action for one tick; over an env step (torque held) the same
        # impulse is the mean of the ticks' actions.
        return np.mean([agent.step(obs) for _ in range(ticks)], axis=0)

    def render(episode: int, step: int) -> None:
        if frames is not None and episode < frame_episodes and step % frame_every == 0:
            frames.append(env.render())

    def on_reset() -> None:
        agent.end_episode()
        if pathway is not None and not chained:  # the arm was put back: no acceleration across the reset
            pathway.forget_state()

    start = time.perf_counter()
    result = run_episodes(env, act, episodes, seed, chained=chained, on_reset=on_reset, on_step=render)
    wall = time.perf_counter() - start
    agent.close()
    env.close()
    if pathway is not None:
        pathway.close()
        model.close()
    steps = episodes * base.max_episode_steps
    trained = ckpt.metadata.get("randomization")
    return {**result, "spiking": spiking, "checkpoint": str(path), "arm": ckpt.metadata["arm"],
            "control_hz": control_hz, "trained_control_hz": ckpt.control_hz, "dt": dt,
            "ticks_per_step": ticks, "us_per_tick": wall / (steps * ticks) * 1e6,
            "perturbation": profile.name if profile else "none", "perturbation_profile": profile_record(profile),
            "trained_randomization": trained["name"] if trained else "none",
            "adaptation": dataclasses.asdict(adaptation) if adaptation is not None else None}
