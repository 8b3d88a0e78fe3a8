"""``snn-sac-ros train``: train the spiking SAC agent on ``snn_sac_ros/ArmReach-v0`` from replay.

Training runs the LIF networks in rate mode with batched local-rule updates (the sample-efficient way);
the checkpoint it writes is then deployed as spiking LIF neurons by ``eval --spiking`` and by the ROS
controller. Writes to ``--out``: ``checkpoint.npz`` (every ``--checkpoint-every`` steps and at the end,
atomically), ``learning_curve.csv`` (one row per episode) and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from snn_sac_ros.commands import arm_options, train_from_bag
from snn_sac_ros.core.learning.modes import ALIASES, FEEDBACK_MODES

DEFAULTS = {"planar2": 50_000, "kuka_iiwa": 200_000, "panda": 200_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2", help="arm preset or URDF path")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: 50k planar2, 200k 7-DoF)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="output folder (default: runs/train-<arm>-seed<S>)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="LIF neurons per hidden layer")
    parser.add_argument("--feedback", choices=[*FEEDBACK_MODES, *ALIASES], default="exact", metavar="MODE",
                        help="how errors reach the hidden layers and how the critics form dQ/da: "
                        + "; ".join(f"{m.name}: {m.summary} (weight transport: {m.transports})"
                                    for m in FEEDBACK_MODES.values())
                        + "; random: the old name of fa-hidden")
    parser.add_argument("--feedback-weight-decay", type=float, default=1e-4,
                        help="kp: weight decay per update of each feedback matrix and its forward twin alike")
    parser.add_argument("--input-feedback-decay", type=float, default=1e-3,
                        help="kp: the same for the critics' input feedback and the action columns it mirrors")
    parser.add_argument("--control-hz", type=float, default=50.0,
                        help="env steps per second: the policy's action is held for one step (a whole number of "
                        "1 ms physics steps); the controller reads it from the checkpoint")
    parser.add_argument("--gamma", type=float, default=0.99,
                        help="discount per env step (keep gamma ** control_hz to keep the horizon in seconds)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--actor-lr", type=float, default=3e-4)
    parser.add_argument("--critic-lr", type=float, default=1e-3)
    parser.add_argument("--update-every", type=int, default=1, help="env steps per update")
    parser.add_argument("--target-entropy-per-action", type=float, default=-0.5,
                        help="entropy the temperature is tuned toward, per action dimension (SB3: -1)")
    parser.add_argument("--observe-last-action", action="store_true",
                        help="the observation ends with the last step's action (for arms with a command delay)")
    parser.add_argument("--chain-reaches", type=float, default=0.0, metavar="P",
                        help="probability that a reach starts where the last one ended instead of near home, so "
                        "that the policy learns from the poses chained reaches leave (as on a robot)")
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    arm_options.add_arm_arguments(parser)  # --joints, --ee-link, URDF spec fields, --randomize
    train_from_bag.add_arguments(parser)  # --from-bag, --init, --mix-env


def checkpoint_metadata(env: object, agent: object, seed: int, steps: int, train_command: str) -> dict:
    """What a checkpoint of ``agent`` trained on ``env`` records (see :mod:`snn_sac_ros.core.agent.checkpoint`)."""
    base = env.unwrapped
    return {
        "arm": base.arm.spec.name, "joint_names": list(base.arm.joint_names),
        "observation_contract": base.observation_contract.to_dict(), "action_contract": base.action_contract.to_dict(),
        "hidden": list(agent.config.hidden), "obs_dim": agent.obs_dim, "act_dim": agent.act_dim,
        "sac_config": agent.config.to_dict(), "control_hz": 1.0 / base.arm.control_dt,
        "max_episode_steps": base.max_episode_steps, "seed": seed, "steps": steps, "train_command": train_command,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **arm_options.checkpoint_record(env),  # the arm spec to rebuild it, the randomisation profile
    }


def _metadata(env: object, agent: object, args: argparse.Namespace, steps: int, command: list[str]) -> dict:
    return checkpoint_metadata(env, agent, args.seed, steps,
                               "snn-sac-ros " + " ".join(shlex.quote(a) for a in command) if command else "")


def train_run(args: argparse.Namespace, command: list[str] | None = None) -> dict:
    """Train and write outputs; the result dict (also used by ``bench learn``).

    ``command`` is the ``snn-sac-ros`` command line the checkpoint records (default: the one ``main`` parsed), so
    that a checkpoint trained by ``bench learn`` names the ``train`` command that reproduces it.
    """
    if command is None:
        command = list(getattr(args, "command_line", None) or sys.argv[1:])
    import gymnasium as gym
    from tqdm import tqdm

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.core.agent.checkpoint import save_checkpoint
    from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC, train

    steps = args.steps or DEFAULTS.get(args.arm, 200_000)
    out = Path(args.out or f"runs/train-{Path(args.arm).stem}-seed{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make("snn_sac_ros/ArmReach-v0", **arm_options.env_kwargs(args),
                   observe_last_action=getattr(args, "observe_last_action", False),
                   chain_reaches=args.chain_reaches,
                   control_hz=args.control_hz)
    config = SACConfig(hidden=tuple(args.hidden), feedback=args.feedback, batch_size=args.batch_size,
                       gamma=args.gamma,
                       learning_starts=args.learning_starts, actor_lr=args.actor_lr, critic_lr=args.critic_lr,
                       update_every=args.update_every, target_entropy_per_action=args.target_entropy_per_action,
                       feedback_weight_decay=args.feedback_weight_decay,
                       input_feedback_decay=args.input_feedback_decay)
    agent = SpikingSAC(env.observation_space.shape[0], env.action_space.shape[0], config, seed=args.seed)
    ckpt_path = out / "checkpoint.npz"
    bar = tqdm(total=steps, desc=f"train {Path(args.arm).stem} seed {args.seed}", unit="step",
               disable=args.no_progress, mininterval=1.0, dynamic_ncols=True)

    def on_step(step: int, episodes: list, metrics: dict) -> None:
        bar.update(1)
        if (step + 1) % 200 == 0 and episodes:
            recent = episodes[-20:]
            bar.set_postfix(ret=f"{np.mean([e.episode_return for e in recent]):.1f}",
                            succ2cm=f"{np.mean([e.success_2cm for e in recent]):.0%}",
                            dist=f"{np.mean([e.final_distance for e in recent]):.3f}",
                            alpha=f"{metrics.get('alpha', 0):.3g}", refresh=False)
        if args.checkpoint_every and (step + 1) % args.checkpoint_every == 0 and step + 1 < steps:
            save_checkpoint(ckpt_path, agent.arrays(), _metadata(env, agent, args, step + 1, command))

    episodes, wall = train(env, agent, steps, args.seed, on_step)
    bar.close()
    save_checkpoint(ckpt_path, agent.arrays(), _metadata(env, agent, args, steps, command))
    env.close()
    write_curve(out, episodes, f"{Path(args.arm).stem}, seed {args.seed}, {config.feedback} feedback")
    recent = episodes[-20:] or episodes
    return {"out_dir": str(out), "checkpoint": str(ckpt_path), "steps": steps, "seed": args.seed,
            "train_wall_s": wall, "steps_per_s": steps / wall, "episodes": len(episodes),
            "recent_success_2cm": float(np.mean([e.success_2cm for e in recent])) if recent else 0.0,
            "recent_return": float(np.mean([e.episode_return for e in recent])) if recent else 0.0}


def write_curve(out: Path, episodes: list, title: str) -> None:
    """learning_curve.csv (one row per episode) and learning_curve.png (return and success, rolling 20)."""
    with open(out / "learning_curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "episode", "return", "final_distance_m", "success_2cm", "success_5cm"])
        for e in episodes:
            w.writerow([e.step, e.episode, f"{e.episode_return:.4f}", f"{e.final_distance:.4f}",
                        int(e.success_2cm), int(e.success_5cm)])
    if not episodes:
        return
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([e.step for e in episodes])
    k = min(20, len(episodes))
    kernel = np.ones(k) / k

    def roll(x: list) -> np.ndarray:
        return np.convolve(np.asarray(x, float), kernel, mode="valid")

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(steps[k - 1:], roll([e.episode_return for e in episodes]))
    ax1.set_ylabel("episode return (rolling 20)")
    ax2.plot(steps[k - 1:], roll([e.success_2cm for e in episodes]), label="success 2 cm")
    ax2.plot(steps[k - 1:], roll([e.success_5cm for e in episodes]), label="success 5 cm")
    ax2.set_ylabel("training success (rolling 20)")
    ax2.set_xlabel("env steps")
    ax2.set_ylim(-0.02, 1.02)
    ax2.legend()
    fig.suptitle(f"spiking SAC training: {title}")
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    if getattr(args, "from_bag", None):
        return train_from_bag.run(args)
    result = train_run(args)
    print(f"trained {result['steps']} steps in {result['train_wall_s']:.0f} s ({result['steps_per_s']:.0f} steps/s); "
          f"recent training success at 2 cm {result['recent_success_2cm']:.0%}")
    print(f"checkpoint: {result['checkpoint']}")
    return result
