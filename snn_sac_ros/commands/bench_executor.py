"""``snn-sac-ros bench executor``: what each rclpy executor costs per callback, to choose the nodes' executor.

``arm_sim`` publishes joint states at ``--rate`` in a process of its own; this process subscribes with each
executor the rclpy wheels offer (``SingleThreadedExecutor``, ``rclpy.experimental.EventsExecutor``) in turn,
beside a timer at the same rate (a controller's two callbacks), both doing nothing, for ``--duration``
seconds each, and reports the CPU time this process spent per callback (``time.process_time``). Rounds
alternate the executors, so that a change of the machine's load hits both.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

EXECUTORS = ("SingleThreadedExecutor", "EventsExecutor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=1000.0, help="joint states and timer ticks per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per executor and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each executor once per round")


def _executor(name: str, context: object) -> object:
    from rclpy.executors import SingleThreadedExecutor

    if name == "EventsExecutor":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)


def measure(name: str, rate: float, duration: float) -> dict[str, float]:
    """CPU time per callback [us] of executor ``name``: a joint-state subscription and a timer at ``rate``."""
    import rclpy
    from rclpy.clock import Clock, ClockType
    from rclpy.context import Context
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from snn_sac_ros.adapters.ros.common import LATEST_STATE_QOS

    context = Context()
    rclpy.init(context=context)
    node = Node(f"bench_executor_{os.getpid()}", context=context)
    counts = {"states": 0, "ticks": 0}

    def state(_msg: JointState) -> None:
        counts["states"] += 1

    def tick() -> None:
        counts["ticks"] += 1

    node.create_subscription(JointState, "joint_states", state, LATEST_STATE_QOS)
    node.create_timer(1.0 / rate, tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
    executor = _executor(name, context)
    executor.add_node(node)
    try:
        end = time.monotonic() + 1.0  # discovery and the first messages, not counted
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        before, cpu, start = dict(counts), time.process_time(), time.monotonic()
        while time.monotonic() < start + duration:
            executor.spin_once(timeout_sec=0.05)
        cpu, wall = time.process_time() - cpu, time.monotonic() - start
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    states, ticks = counts["states"] - before["states"], counts["ticks"] - before["ticks"]
    return {"executor": name, "states_per_s": states / wall, "ticks_per_s": ticks / wall,
            "cpu_share": cpu / wall, "us_per_callback": 1e6 * cpu / max(states + ticks, 1)}


def run(args: argparse.Namespace) -> dict:
    from snn_sac_ros import bringup
    from snn_sac_ros.commands.demo import ros_environment
    from snn_sac_ros.supervision import Supervisor

    os.environ.update(ros_environment())
    (sim,) = [s for s in bringup.sim_reach_plan().nodes if s.name == "arm_sim"]
    sim = bringup.NodeSpec(sim.executable, sim.module, sim.name, sim.parameter_files,
                           {**sim.parameters, "publish_rate": args.rate, "physics_dt": 1.0 / args.rate / 2})
    out = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    rows: list[dict[str, float]] = []
    with Supervisor(dict(os.environ)) as nodes:
        nodes.start("arm_sim", bringup.command_line(sim), out / "arm_sim.log")
        time.sleep(3.0)
        for _ in range(args.rounds):
            for name in EXECUTORS:
                nodes.check()
                rows.append(measure(name, args.rate, args.duration))
    print(f"bench executor: {args.rate:g} Hz joint states + a {args.rate:g} Hz timer, {args.duration:g} s x "
          f"{args.rounds} rounds per executor; load average {os.getloadavg()[0]:.1f}")
    print(f"{'executor':<24} {'states/s':>9} {'ticks/s':>8} {'CPU share':>9} {'us/callback':>12}")
    for row in rows:
        print(f"{row['executor']:<24} {row['states_per_s']:>9.0f} {row['ticks_per_s']:>8.0f} "
              f"{row['cpu_share']:>9.1%} {row['us_per_callback']:>12.1f}")
    summary = {name: float(np.median([r["us_per_callback"] for r in rows if r["executor"] == name]))
               for name in EXECUTORS}
    print("median us per callback: " + ", ".join(f"{n} {v:.1f}" for n, v in summary.items()))
    return {"rows": rows, "median_us_per_callback": summary, "load_average": os.getloadavg()[0]}
