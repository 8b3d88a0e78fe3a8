"""``snn-sac-ros bench sim``: how fast the arm_sim node runs, and where each control step's time goes.

For each arm the node is started in its own process at a 1 kHz physics step and 500 Hz state publishing (/clock
and ee_pose at 100 Hz, the node's defaults; ``--clock-rate 0 --ee-pose-rate 0`` sends them every step too),
first unpaced (``real_time_factor: 0``: as fast as it can, which is the highest factor it sustains), then at
any paced factors asked for with ``--factors``. This process is a separate rclpy node that counts
``joint_states`` and reads ``/clock``: the achieved factor is sim seconds on ``/clock`` per wall second
here, so it includes everything between the two processes. The node's own timing reports on
``/diagnostics`` split its wall time into PyBullet's stepSimulation, the rest of the arm wrapper (gravity
compensation, state read-out), ROS messaging (building and publishing joint_states, /clock and ee_pose),
and the executor plus idle time.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from snn_sac_ros.core.arm.specs import PRESETS
from snn_sac_ros.supervision import Supervisor

_SHARES = ("pybullet_share", "arm_wrapper_share", "ros_share", "other_share")
_PER_STEP = ("pybullet_us_per_step", "arm_us_per_step", "ros_us_per_step")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arms", nargs="+", default=list(PRESETS), help="presets or URDF paths")
    parser.add_argument("--duration", type=float, default=5.0, help="measured wall seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="wall seconds ignored at the start of a run")
    parser.add_argument("--factors", type=float, nargs="*", default=[],
                        help="paced real-time factors to check as well (the unpaced run always comes first)")
    parser.add_argument("--physics-dt", type=float, default=1e-3, help="physics step [s]")
    parser.add_argument("--publish-rate", type=float, default=500.0, help="joint state rate [Hz of sim time]")
    parser.add_argument("--clock-rate", type=float, default=100.0, help="/clock rate [Hz of sim time]; 0: every step")
    parser.add_argument("--ee-pose-rate", type=float, default=100.0, help="ee_pose rate [Hz, sim]; 0: every step")


def _start_node(arm: str, factor: float, args: argparse.Namespace, nodes: Supervisor, log: Path) -> None:
    params = {"arm": arm, "real_time_factor": float(factor), "physics_dt": float(args.physics_dt),
              "publish_rate": float(args.publish_rate), "clock_rate": float(args.clock_rate),
              "ee_pose_rate": float(args.ee_pose_rate), "diagnostics_period": 0.5, "gravity_compensation": True}
    command = [sys.executable, "-m", "snn_sac_ros.adapters.ros.sim_node", "--ros-args"]
    for key, value in params.items():
        command += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    nodes.start("arm_sim", command, log)


def measure(arm: str, factor: float, args: argparse.Namespace) -> dict:
    """One run of the node: the achieved factor, message rates and the node's timing shares."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from snn_sac_ros.adapters.ros.common import CLOCK_SUB_QOS, STATE_QOS, time_to_seconds

    nodes = Supervisor()
    _start_node(arm, factor, args, nodes, Path(tempfile.mkdtemp(prefix="bench-sim-")) / "arm_sim.log")
    rclpy.init()
    node = Node("bench_sim")
    counts = {"joint_states": 0, "clock": 0}
    clock: list[float] = [float("nan")]
    reports: list[dict[str, float]] = []
    measuring = [False]

    def on_state(_raw: bytes) -> None:
        counts["joint_states"] += measuring[0]

    def on_clock(msg: Clock) -> None:
        clock[0] = time_to_seconds(msg.clock)
        counts["clock"] += measuring[0]

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if measuring[0] and status.name.startswith("arm_sim"):
                reports.append({kv.key: float(kv.value) for kv in status.values})

    # joint_states are only counted (ee_pose ignored): take them serialized, to keep up at thousands a second.
    node.create_subscription(JointState, "joint_states", on_state, STATE_QOS, raw=True)
    node.create_subscription(PoseStamped, "ee_pose", lambda _raw: None, STATE_QOS, raw=True)  # as a scorer would
    node.create_subscription(Clock, "/clock", on_clock, CLOCK_SUB_QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        nodes.wait_until(lambda: not math.isnan(clock[0]), 60.0, f"the first /clock of arm_sim for {arm}",
                         step=lambda: executor.spin_once(timeout_sec=0.05))
        _spin(executor, args.warmup, nodes)
        measuring[0] = True
        sim0, wall0 = clock[0], time.monotonic()
        _spin(executor, args.duration, nodes)
        sim1, wall1 = clock[0], time.monotonic()
        measuring[0] = False
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        nodes.stop_all()
    wall = wall1 - wall0
    achieved = (sim1 - sim0) / wall
    row = {"arm": arm, "requested_factor": factor if factor > 0 else None, "real_time_factor": achieved,
           "joint_states_per_s": counts["joint_states"] / wall, "expected_per_s": achieved * args.publish_rate,
           "clock_per_s": counts["clock"] / wall, "node_reports": len(reports)}
    # Shares and per-step costs as the node measured them, averaged over its reports in the window.
    for key in (*_SHARES, *_PER_STEP, "slips"):
        values = [r[key] for r in reports if key in r]
        row[key] = sum(values) / len(values) if values else float("nan")
    row["slips"] = sum(r.get("slips", 0.0) for r in reports)
    return row


def _spin(executor: object, seconds: float, nodes: Supervisor) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)  # type: ignore[attr-defined]
        nodes.check()


def run(args: argparse.Namespace) -> dict:
    if args.duration <= 0:
        raise ValueError("--duration must be positive")
    # DDS stays on this machine, in a domain of its own unless the caller chose one (inherited by the node).
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for arm in args.arms:
        for factor in (0.0, *args.factors):
            print(f"bench sim: {arm} at {'max' if factor == 0 else f'{factor:g}x'} for {args.duration:g} s ...",
                  file=sys.stderr, flush=True)
            rows.append(measure(arm, factor, args))
    rate = {0.0: "every step"}
    print(f"bench sim: arm_sim at {1 / args.physics_dt:g} Hz physics, {args.publish_rate:g} Hz joint_states, "
          f"/clock {rate.get(args.clock_rate, f'{args.clock_rate:g} Hz')}, ee_pose "
          f"{rate.get(args.ee_pose_rate, f'{args.ee_pose_rate:g} Hz')}; {args.duration:g} s per run; "
          "one subscriber process (this one); shares of the node's wall time")
    header = (f"{'arm':<12} {'asked':>6} {'real-time x':>11} {'states/s':>9} {'recv':>5} {'PyBullet':>9} "
              f"{'arm wrap':>9} {'ROS msgs':>9} {'exec+idle':>9} {'us/step':>8} {'slips':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        asked = "max" if r["requested_factor"] is None else f"{r['requested_factor']:g}"
        received = r["joint_states_per_s"] / r["expected_per_s"] if r["expected_per_s"] > 0 else float("nan")
        step_us = r["arm_us_per_step"] + r["ros_us_per_step"]
        print(f"{r['arm']:<12} {asked:>6} {r['real_time_factor']:>11.2f} {r['joint_states_per_s']:>9.0f} "
              f"{received:>5.0%} {r['pybullet_share']:>9.0%} {r['arm_wrapper_share']:>9.0%} {r['ros_share']:>9.0%} "
              f"{r['other_share']:>9.0%} {step_us:>8.0f} {r['slips']:>6.0f}")
    print("us/step: node wall time per control step (physics steps + messages), executor excluded; "
          "recv: joint_states this process received / published")
    return {"rows": rows}
