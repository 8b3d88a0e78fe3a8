"""``snn-sac-ros bench soak``: the arm node, the controller (learning on) and the reach targets for a long run.

Why: a controller that learns for hours on a robot must not leak memory, must never let a value become
non-finite, and its success must not collapse as it keeps learning. This runs the demo's processes
(same launch description, same parameter files, no payload change) for ``--sim-minutes`` of sim time and
samples, every ``--sample-s`` wall seconds: resident memory of each node (``VmRSS`` in
``/proc/<pid>/status``), sim time, the controller's /diagnostics (ticks, deadline misses, tick p99, input
errors, watchdog zeroes) and arm_sim's achieved real-time factor. It checks every effort command and every
end-effector pose for non-finite values, loads the weights the controller saves (periodically and at
shutdown) and checks them too, and compares the success rate of the first and last thirds of the reaches.

The controller ticks on the steady clock (``control_rate_hz``, 500 Hz as shipped) whatever the sim's
real-time factor: at ``--rtf`` above 1 it gets fewer ticks per sim second (each command is held for
several sim steps), so success is only comparable between runs at the same factor.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

from snn_sac_ros import bringup
from snn_sac_ros.commands import demo
from snn_sac_ros.supervision import Supervisor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2")
    parser.add_argument("--checkpoint", default="", help="controller checkpoint (default: the shipped one)")
    parser.add_argument("--sim-minutes", type=float, default=30.0, help="sim time to run [min]")
    parser.add_argument("--rtf", type=float, default=1.0, help="arm_sim real-time factor (sim s per wall s)")
    parser.add_argument("--control-rate", type=float, default=500.0, help="controller ticks per wall second")
    parser.add_argument("--reach-seconds", type=float, default=3.0, help="sim seconds per reach target")
    parser.add_argument("--save-period-s", type=float, default=60.0, help="controller's periodic saves [wall s]")
    parser.add_argument("--sample-s", type=float, default=5.0, help="wall seconds between samples")
    parser.add_argument("--warmup-fraction", type=float, default=0.1,
                        help="share of the sim time before the memory baseline is taken")
    parser.add_argument("--seed", type=int, default=1, help="seed of the target sequence")
    parser.add_argument("--no-learning", action="store_true",
                        help="frozen policy: the baseline that tells learning drift from machine load")
    parser.add_argument("--out", default="", help="output folder (default: a temporary folder)")


def rss_kb(pid: int) -> int | None:
    """Resident memory of ``pid`` [kB] from /proc (psutil is not needed), None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _plan(args: argparse.Namespace, out: Path, reaches: int) -> bringup.Plan:
    plan = bringup.sim_reach_plan(
        arm=args.arm, checkpoint=args.checkpoint, learning=str(not args.no_learning).lower(),
        real_time_factor=str(args.rtf),
        control_rate_hz=str(args.control_rate), reaches=str(reaches), reach_seconds=str(args.reach_seconds),
        payload_kg="0.0", output_dir=str(out), seed=str(args.seed))
    extra = {"snn_sac_controller": {"save_period_s": float(args.save_period_s), "resume": False, "spike_log": ""}}
    return dataclasses.replace(plan, nodes=[dataclasses.replace(s, parameters={**s.parameters, **extra.get(s.name, {})})
                                            for s in plan.nodes])


def _thirds(values: np.ndarray) -> tuple[float, float]:
    third = max(1, len(values) // 3)
    return (float(values[:third].mean()), float(values[-third:].mean())) if len(values) else (math.nan, math.nan)


def run(args: argparse.Namespace) -> dict:
    os.environ.update(demo.ros_environment())  # the monitor in this process joins the nodes' domain
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-soak-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sim_seconds = args.sim_minutes * 60.0
    reaches = max(3, math.ceil(sim_seconds / args.reach_seconds))
    plan = _plan(args, out, reaches)
    (out / "commands.txt").write_text("\n".join(" ".join(bringup.command_line(s, plan=plan))
                                                for s in plan.nodes if s.module) + "\n")
    print(f"bench soak: {args.arm}, {sim_seconds / 60:g} min of sim time ({reaches} reaches x "
          f"{args.reach_seconds:g} s) at real-time factor {args.rtf:g}, learning "
          f"{'off' if args.no_learning else 'on'}, controller "
          f"{args.control_rate:g} Hz; output {out}", flush=True)
    with demo.start_plan(plan, out, dict(os.environ)) as nodes:
        record = _monitor(nodes, args, sim_seconds)
    result = _report(out, record, nodes.codes, args, sim_seconds)
    if record["failure"] is not None:  # reported what was measured; the command still fails
        raise record["failure"]
    return result


def _monitor(nodes: Supervisor, args: argparse.Namespace, sim_seconds: float) -> dict:
    """Sample memory and diagnostics until the reach targets are done (or the wall time runs out)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import Float64MultiArray

    from snn_sac_ros.adapters.ros.common import COMMAND_QOS, STATE_QOS, time_to_seconds

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C: stop and report what was measured
    node = Node("soak_monitor")
    state = {"commands": 0, "non_finite_commands": 0, "max_abs_command": 0.0, "poses": 0, "non_finite_poses": 0,
             "sim_time": 0.0, "controller": {}, "sim": {}}

    def command(msg: Float64MultiArray) -> None:
        values = np.asarray(msg.data, dtype=float)
        state["commands"] += 1
        if not np.all(np.isfinite(values)):
            state["non_finite_commands"] += 1
        elif values.size:
            state["max_abs_command"] = max(state["max_abs_command"], float(np.abs(values).max()))

    def pose(msg: PoseStamped) -> None:
        p = msg.pose.position
        state["poses"] += 1
        state["non_finite_poses"] += not all(math.isfinite(v) for v in (p.x, p.y, p.z))
        state["sim_time"] = time_to_seconds(msg.header.stamp)

    def diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith("snn_sac_controller"):
                state["controller"] = values
            elif status.name.startswith("arm_sim"):
                state["sim"] = values

    node.create_subscription(Float64MultiArray, "effort_controller/commands", command, COMMAND_QOS)
    node.create_subscription(PoseStamped, "ee_pose", pose, STATE_QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    pids = {name: p.pid for name, p in nodes.processes.items() if name != "reach_targets"}
    samples: list[dict] = []
    start = time.monotonic()
    timeout = 3.0 * sim_seconds / max(args.rtf, 1e-3) + 120.0
    next_sample = start
    died: list[str] = []
    failure = None
    interrupted = False

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT may be ignored (a background job of a script) and SIGTERM would end us without stopping the nodes
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while nodes.running("reach_targets"):
            executor.spin_once(timeout_sec=0.05)
            failure = nodes.failed()
            if failure is not None:
                died = [failure.name]
                print(f"bench soak: {failure}", flush=True)
                break
            if time.monotonic() - start > timeout:
                break
            if time.monotonic() >= next_sample:
                next_sample += args.sample_s
                c = state["controller"]
                samples.append({"wall_s": round(time.monotonic() - start, 2), "sim_s": round(state["sim_time"], 3),
                                **{f"rss_kb_{n}": rss_kb(pid) for n, pid in pids.items()},
                                "ticks": c.get("ticks"), "deadline_misses": c.get("deadline_misses"),
                                "tick_p99_ms": c.get("tick_p99_ms"), "control_rate_hz": c.get("control_rate_hz"),
                                "recent_success_rate": c.get("recent_success_rate"),
                                "input_errors": c.get("input_errors"), "last_save": c.get("last_save"),
                                "sim_rtf": state["sim"].get("real_time_factor")})
                last = samples[-1]
                print(f"  wall {last['wall_s']:7.1f} s  sim {last['sim_s']:8.1f} s  rss controller "
                      f"{(last.get('rss_kb_snn_sac_controller') or 0) / 1024:6.1f} MiB  arm_sim "
                      f"{(last.get('rss_kb_arm_sim') or 0) / 1024:6.1f} MiB  sim rtf {last['sim_rtf']}  "
                      f"p99 {last['tick_p99_ms']} ms  recent success {last['recent_success_rate']}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("bench soak: interrupted; stopping the nodes and reporting what was measured", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return {"samples": samples, "state": state, "died": died, "wall_s": time.monotonic() - start,
            "interrupted": interrupted, "failure": failure}


def _memory(samples: list[dict], name: str, warmup_s: float) -> dict:
    key = f"rss_kb_{name}"
    # Warm-up counts from the controller's first tick (it builds its Nengo model first, for a while on a
    # loaded machine, while sim time already runs), then ``warmup_s`` more of sim time.
    running = next((s["sim_s"] for s in samples if int(s.get("ticks") or 0) > 0), math.inf)
    after = [s[key] for s in samples if s.get(key) and s["sim_s"] >= running + warmup_s]  # none: still warming
    if not after:
        return {"baseline_mib": math.nan, "final_mib": math.nan, "peak_mib": math.nan, "growth_pct": math.nan}
    base, final = after[0], after[-1]
    return {"baseline_mib": base / 1024, "final_mib": final / 1024, "peak_mib": max(after) / 1024,
            "growth_pct": 100.0 * (final - base) / base}


def _report(out: Path, record: dict, codes: dict[str, int], args: argparse.Namespace, sim_seconds: float) -> dict:
    import csv
    import json
    import re

    from snn_sac_ros.core.agent.checkpoint import CheckpointError, load_checkpoint

    state, samples = record["state"], record["samples"]
    distances = np.zeros(0)
    if (out / "reaches.csv").exists():
        with open(out / "reaches.csv") as handle:
            distances = np.array([float(r["final_distance_m"]) for r in csv.DictReader(handle)])
    elif (out / "reach_targets.log").exists():  # interrupted: reach_targets wrote no csv, but logged each reach
        found = re.findall(r"reach \d+/\d+: final distance ([0-9.]+) cm", (out / "reach_targets.log").read_text())
        distances = np.array([float(cm) / 100 for cm in found])
    first2, last2 = _thirds(distances <= 0.02)
    first5, last5 = _thirds(distances <= 0.05)
    weights_finite: bool | None = None
    weights = out / "online_weights.npz"
    try:
        arrays = load_checkpoint(weights).arrays
        weights_finite = all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")
    except (FileNotFoundError, CheckpointError):
        weights_finite = None
    warmup = args.warmup_fraction * sim_seconds
    c = state["controller"]
    non_finite = state["non_finite_commands"] + state["non_finite_poses"] + (weights_finite is False) + int(
        not np.all(np.isfinite(distances)))
    result = {
        "sim_s": state["sim_time"], "wall_s": record["wall_s"],
        "achieved_rtf": state["sim_time"] / record["wall_s"] if record["wall_s"] else math.nan,
        "requested_rtf": args.rtf, "learning": not args.no_learning, "reaches": len(distances),
        "mean_final_distance_cm_first_third": _thirds(distances * 100)[0],
        "mean_final_distance_cm_last_third": _thirds(distances * 100)[1],
        "success_2cm_first_third": first2, "success_2cm_last_third": last2,
        "success_5cm_first_third": first5, "success_5cm_last_third": last5,
        "memory": {n: _memory(samples, n, warmup) for n in ("snn_sac_controller", "arm_sim")},
        "warmup_sim_s_after_first_tick": warmup, "non_finite_values": non_finite,
        "non_finite_commands": state["non_finite_commands"], "non_finite_poses": state["non_finite_poses"],
        "commands_checked": state["commands"], "poses_checked": state["poses"],
        "max_abs_command": state["max_abs_command"], "saved_weights_finite": weights_finite,
        "ticks": int(c.get("ticks", 0)), "deadline_misses": int(c.get("deadline_misses", -1)),
        "tick_p99_ms": float(c.get("tick_p99_ms", "nan")), "input_errors": c.get("input_errors", ""),
        "stall_watchdog_zeroed": int(c.get("stall_watchdog_zeroed", -1)), "last_save": c.get("last_save", ""),
        "nodes_died": record["died"], "interrupted": record["interrupted"],
        "exit_codes": codes, "samples": len(samples), "output_dir": str(out),
    }
    (out / "soak_samples.json").write_text(json.dumps(samples, indent=1))
    (out / "soak_result.json").write_text(json.dumps(result, indent=2, default=str))
    mem = result["memory"]
    print(f"\nbench soak: {result['sim_s'] / 60:.1f} min sim in {result['wall_s'] / 60:.1f} min wall "
          f"(real-time factor {result['achieved_rtf']:.2f}, requested {args.rtf:g}), {result['reaches']} reaches")
    header = f"{'node':<20} {'RSS after warm-up':>18} {'final':>9} {'peak':>9} {'growth':>8}"
    print(header)
    print("-" * len(header))
    for name, m in mem.items():
        print(f"{name:<20} {m['baseline_mib']:>14.1f} MiB {m['final_mib']:>5.1f} MiB {m['peak_mib']:>5.1f} MiB "
              f"{m['growth_pct']:>7.2f}%")
    print(f"success at 2 cm: first third {first2:.0%}, last third {last2:.0%}; at 5 cm: {first5:.0%} -> {last5:.0%}")
    print(f"non-finite values: {non_finite} ({state['commands']} commands, {state['poses']} poses, saved weights "
          f"{'finite' if weights_finite else weights_finite}); ticks {result['ticks']}, deadline misses "
          f"{result['deadline_misses']}, tick p99 {result['tick_p99_ms']:.2f} ms; exit codes {codes}")
    return result
