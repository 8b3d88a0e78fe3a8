"""``snn-sac-ros bench env``: how fast the env steps, and how much of that is PyBullet itself.

For each arm, random actions are stepped through ``ArmReachEnv`` for a fixed number of control steps;
the time spent inside PyBullet's ``stepSimulation`` is counted by the arm. The rest is our wrapper:
gravity compensation, state read-out, observation encoding, reward.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from snn_sac_ros.core.arm.specs import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arms", nargs="+", default=list(PRESETS), help="presets or URDF paths")
    parser.add_argument("--steps", type=int, default=2000, help="control steps per arm")
    parser.add_argument("--control-hz", type=float, default=50.0, help="env control rate [Hz]")
    parser.add_argument("--physics-dt", type=float, default=1e-3, help="physics step [s]")
    parser.add_argument("--seed", type=int, default=0)


def measure(arm: str, steps: int, control_hz: float, physics_dt: float, seed: int) -> dict:
    """Steps/s of the env and PyBullet's share of the wall time, for one arm."""
    from snn_sac_ros.adapters.gym.env import ArmReachEnv

    env = ArmReachEnv(arm, control_hz=control_hz, physics_dt=physics_dt)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=seed)
    env.arm.physics_seconds = 0.0
    start = time.perf_counter()
    for action in tqdm(actions, desc=f"bench env {arm}", unit="step", leave=False):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    wall = time.perf_counter() - start
    physics = env.arm.physics_seconds
    substeps = env.arm.substeps
    env.close()
    return {"arm": arm, "env_steps_per_s": steps / wall, "physics_steps_per_s": steps * substeps / wall,
            "substeps": substeps, "pybullet_share": physics / wall,
            "wrapper_us_per_step": (wall - physics) / steps * 1e6}


def run(args: argparse.Namespace) -> dict:
    rows = [measure(arm, args.steps, args.control_hz, args.physics_dt, args.seed) for arm in args.arms]
    header = f"{'arm':<12} {'env steps/s':>12} {'physics steps/s':>16} {'PyBullet share':>15} {'wrapper us/step':>16}"
    print(f"bench env: {args.steps} control steps at {args.control_hz:g} Hz, physics dt {args.physics_dt:g} s")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['arm']:<12} {r['env_steps_per_s']:>12.0f} {r['physics_steps_per_s']:>16.0f} "
              f"{r['pybullet_share']:>14.0%} {r['wrapper_us_per_step']:>16.0f}")
    return {"rows": rows}
