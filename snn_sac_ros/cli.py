"""``snn-sac-ros``: one console script, one subcommand per job (train, eval, demo, bench ...).

Each subcommand lives in its own module under :mod:`snn_sac_ros.commands` and exposes
``add_arguments(parser)`` and ``run(args) -> dict``. The dict is the command's result: with ``--json``
it is printed as one JSON object on the last line, so scripts and tests can read it.
Only the module of the command being run (or asked for ``--help``) is imported, so start-up stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from snn_sac_ros.supervision import NodeFailedError

# subcommand -> (module, one-line help). Benchmarks are ``bench <name>``.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("snn_sac_ros.commands.demo", "the simulated arm demo: arm node + spiking SAC controller over ROS 2"),
    "train": ("snn_sac_ros.commands.train", "train the spiking SAC agent (rate-mode replay, local rules)"),
    "eval": ("snn_sac_ros.commands.eval", "success at 2 cm / 5 cm of a checkpoint, rate or spiking"),
    "plot": ("snn_sac_ros.commands.plot", "the demo's plots from a recorded run (MCAP file)"),
}
BENCHMARKS: dict[str, tuple[str, str]] = {
    "env": ("snn_sac_ros.commands.bench_env", "env steps per second per arm, and PyBullet's share"),
    "learn": ("snn_sac_ros.commands.bench_learn", "our spiking SAC (rate + spiking) vs SB3 SAC: success, time"),
    "adapt": ("snn_sac_ros.commands.bench_adapt", "payload adaptation: online learning on vs frozen, over ROS 2"),
    "online": ("snn_sac_ros.commands.bench_online", "online learning without ROS: drift and payload adaptation"),
    "sim": ("snn_sac_ros.commands.bench_sim", "arm_sim: top real-time factor per arm, PyBullet vs ROS share"),
    "soak": ("snn_sac_ros.commands.bench_soak", "long run, learning on: memory growth, non-finite values, success"),
    "cost": ("snn_sac_ros.commands.bench_cost", "a tick's spikes, synaptic events, dense MACs, energy estimates"),
    "realtime": ("snn_sac_ros.commands.bench_realtime", "controller tick and latency at 500/1000 Hz, Nengo vs floor"),
    "transfer": ("snn_sac_ros.commands.bench_transfer", "checkpoints on the nominal arm and held-out perturbations"),
    "executor": ("snn_sac_ros.commands.bench_executor", "rclpy executors' CPU time per callback at a control rate"),
}


def _add_command(subparsers: argparse._SubParsersAction, name: str, module: str, help_text: str,
                 load: bool) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON object on the last line")
    parser.set_defaults(_module=module)
    if load:  # only the chosen command's module is imported: --help and start-up stay fast
        importlib.import_module(module).add_arguments(parser)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the command named there gets its full arguments."""
    words = [w for w in (sys.argv[1:] if argv is None else argv) if not w.startswith("-")]
    chosen = words[:2]
    parser = argparse.ArgumentParser(
        prog="snn-sac-ros",
        description="Spiking Soft Actor-Critic arm control with Nengo: train, evaluate, demo, benchmark.")
    from snn_sac_ros import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        _add_command(sub, name, module, help_text, load=chosen[:1] == [name])
    bench = sub.add_parser("bench", help="benchmarks that print tables",
                           description="Benchmarks: each prints a table; --json adds the figures.")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        _add_command(bench_sub, name, module, help_text, load=chosen == ["bench", name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    args.command_line = list(sys.argv[1:] if argv is None else argv)  # what a checkpoint records it was made by
    module = importlib.import_module(args._module)
    try:
        result = module.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NodeFailedError, TimeoutError) as error:
        print(f"snn-sac-ros: error: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error)}))
        # 3: a node the command started died or never came up; 2: bad arguments or files
        return 3 if isinstance(error, (NodeFailedError, TimeoutError)) else 2
    if args.json:
        print(json.dumps(result, default=_jsonable))
    return 0


def _jsonable(value: object) -> object:
    """NumPy scalars and arrays, and paths, as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
