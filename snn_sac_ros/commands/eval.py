"""``snn-sac-ros eval``: success at 2 cm and 5 cm, final distance and return of a checkpoint.

The policy runs in the Nengo simulator as the controller runs it (one 1 ms step per tick, 20 ticks per
50 Hz env step): LIF-rate neurons by default, spiking LIF neurons with ``--spiking``. Without
``--checkpoint`` it evaluates the checkpoint the package ships for ``--arm``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one for --arm)")
    parser.add_argument("--arm", default="planar2", help="arm whose shipped checkpoint to use")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation targets")
    parser.add_argument("--spiking", action="store_true", help="spiking LIF neurons (default: LIF rate)")
    parser.add_argument("--seed", type=int, default=100_000, help="episode k uses env seed SEED + k")
    parser.add_argument("--dt", type=float, default=0.001, help="Nengo step [s]")
    parser.add_argument("--synapse", type=float, default=0.005, help="spiking synapse time constant [s]")


def run(args: argparse.Namespace) -> dict:
    from snn_sac_ros.core.agent.evaluate import evaluate_checkpoint
    from snn_sac_ros.core.resources import shipped_checkpoint

    path = args.checkpoint or str(shipped_checkpoint(args.arm))
    r = evaluate_checkpoint(path, episodes=args.episodes, spiking=args.spiking, seed=args.seed, dt=args.dt,
                            synapse=args.synapse)
    mode = "spiking LIF" if args.spiking else "LIF rate"
    print(f"eval {r['arm']} ({mode}, {r['episodes']} targets): success 2 cm {r['success_2cm']:.0%}, "
          f"5 cm {r['success_5cm']:.0%}, mean final distance {r['mean_final_distance_m'] * 100:.1f} cm, "
          f"mean return {r['mean_return']:.1f}  [{r['us_per_tick']:.0f} us per Nengo step]")
    return r
