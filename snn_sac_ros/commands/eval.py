"""``snn-sac-ros eval``: success at 2 cm and 5 cm, final distance and return of a checkpoint.

The policy runs in the Nengo simulator as the controller runs it (one ``--dt`` step per tick, 20 ticks of 1 ms
per 50 Hz env step): LIF-rate neurons by default, spiking LIF neurons with ``--spiking``. ``--control-hz 500
--dt 0.002`` steps the env at the controller's default rate instead, a fresh observation every 2 ms tick as over
ROS. Without ``--checkpoint`` it evaluates the checkpoint the package ships for ``--arm``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one for --arm)")
    parser.add_argument("--arm", default=None,
                        help="arm whose shipped checkpoint to use (default planar2); with --checkpoint: the "
                        "checkpoint's URDF where it is now, if it moved (it must be the same file)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation targets")
    parser.add_argument("--spiking", action="store_true", help="spiking LIF neurons (default: LIF rate)")
    parser.add_argument("--seed", type=int, default=100_000, help="episode k uses env seed SEED + k")
    parser.add_argument("--dt", type=float, default=0.001, help="Nengo step [s]")
    parser.add_argument("--control-hz", type=float, default=None,
                        help="env steps per second (default: the checkpoint's training rate); 500 with --dt 0.002 "
                        "feeds the policy a fresh state every tick, as the controller does at its default rate")
    parser.add_argument("--synapse", type=float, default=0.005, help="spiking synapse time constant [s]")
    parser.add_argument("--perturb", default="", metavar="PROFILE",
                        help="evaluate under this randomisation profile (a name under config/randomization, e.g. "
                        "eval-delay10ms, or a YAML path), drawn per episode; default: the nominal arm")
    parser.add_argument("--chained", action="store_true",
                        help="each reach starts where the last one left the arm, as over ROS (default: near home)")
    parser.add_argument("--animation", default="", metavar="GIF",
                        help="write an animated GIF of the first --animation-episodes reaches (target shown)")
    parser.add_argument("--animation-episodes", type=int, default=4, help="reaches in the animation")


def run(args: argparse.Namespace) -> dict:
    from snn_sac_ros.core.agent.evaluate import evaluate_checkpoint
    from snn_sac_ros.core.resources import shipped_checkpoint

    path = args.checkpoint or str(shipped_checkpoint(args.arm or "planar2"))
    frames: list[np.ndarray] | None = [] if args.animation else None
    r = evaluate_checkpoint(path, episodes=args.episodes, spiking=args.spiking, seed=args.seed, dt=args.dt,
                            synapse=args.synapse, perturb=args.perturb,
                            arm=args.arm if args.checkpoint else None, chained=args.chained,
                            control_hz=args.control_hz, frames=frames,
                            frame_episodes=args.animation_episodes)
    mode = "spiking LIF" if args.spiking else "LIF rate"
    perturbed = f", perturbation {r['perturbation']}" if r["perturbation"] != "none" else ""
    perturbed += ", chained" if r["chained"] else ""
    if r["control_hz"] != r["trained_control_hz"]:
        perturbed += f", env step {r['control_hz']:g} Hz (trained at {r['trained_control_hz']:g})"
    print(f"eval {r['arm']} ({mode}, {r['episodes']} targets{perturbed}): success 2 cm {r['success_2cm']:.0%}, "
          f"5 cm {r['success_5cm']:.0%}, mean final distance {r['mean_final_distance_m'] * 100:.1f} cm, "
          f"mean return {r['mean_return']:.1f}  [{r['us_per_tick']:.0f} us per Nengo step]")
    if frames:
        r["animation"] = str(write_animation(frames, Path(args.animation), fps=25))
        print(f"animation: {r['animation']} ({len(frames)} frames)")
    return r


def write_animation(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """An animated GIF of RGB frames (Pillow, which matplotlib already brings): viewable anywhere, no codec."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)[..., :3]) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=True)
    return path
