"""``snn-sac-ros demo``: the simulated arm demo, the README's main job.

Starts the nodes of ``launch/sim_reach.launch.py`` (from the same :mod:`snn_sac_ros.bringup`
description, with the same parameter files) as separate processes over real DDS on localhost: the
PyBullet arm, the spiking SAC controller (shipped checkpoint, learning on) and the reach targets, which
add a payload half-way. The controller records the run into ``run.mcap`` in the output folder; an observer node in
this process shows progress, keeps the controller's last diagnostics and asks for rendered frames. At the end it
prints a summary (with the cost of a tick) and draws the plots from ``run.mcap``, as ``snn-sac-ros plot`` does.
When a node dies or fails to start, every node is stopped and the command fails, naming the node and showing the
end of its log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import datetime
from pathlib import Path

from snn_sac_ros import bringup
from snn_sac_ros.supervision import Supervisor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2", help="arm preset (a checkpoint must exist for it)")
    parser.add_argument("--checkpoint", default="", help="checkpoint .npz (default: the shipped one)")
    parser.add_argument("--reaches", type=int, default=16, help="number of reach targets")
    parser.add_argument("--reach-seconds", type=float, default=4.0, help="sim seconds per target")
    parser.add_argument("--payload-kg", type=float, default=2.0, help="payload added half-way (0: none)")
    parser.add_argument("--no-learning", action="store_true", help="freeze the weights (no online learning)")
    parser.add_argument("--adaptation", action="store_true",
                        help="add the controller's PES adaptive dynamics pathway (it learns while learning is on)")
    parser.add_argument("--adaptation-only", action="store_true",
                        help="the policy frozen, the adaptation pathway on and learning (implies --adaptation and "
                             "--no-learning)")
    parser.add_argument("--control-rate", type=float, default=500.0, help="controller rate [Hz]")
    parser.add_argument("--seed", type=int, default=1, help="seed of the target sequence (and of --perturb's draw)")
    parser.add_argument("--perturb", default="", metavar="PROFILE",
                        help="run arm_sim randomised or perturbed: a profile under config/randomization or a YAML "
                        "path (default: the nominal arm)")
    parser.add_argument("--rt-priority", type=int, default=int(bringup.SIM_REACH_ARGUMENTS["rt_priority"].default),
                        metavar="P",
                        help="SCHED_FIFO priority 1-99 of the arm's stepping thread and the controller's control "
                             "thread (default: the launch file's, 50 as ros2_control's; without root or CAP_SYS_NICE "
                             "each node logs the refusal and runs on; 0: normal scheduling)")
    parser.add_argument("--out", default="", help="output folder (default runs/demo-<time>)")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="give up after this many wall seconds (default: 3x the sim time + 60)")


def run_arguments(**values: object) -> argparse.Namespace:
    """The demo's arguments as its command line gives them, with ``values`` set: for the benchmarks that run it."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    unknown = set(values) - set(vars(args))
    if unknown:
        raise TypeError(f"the demo has no arguments {sorted(unknown)}")
    vars(args).update(values)
    return args


def ros_environment() -> dict[str, str]:
    """This process's environment with DDS kept on loopback and a domain of its own unless one is set."""
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_plan(plan: bringup.Plan, out: Path, env: dict[str, str], finishers: tuple[str, ...] = ("reach_targets",)
               ) -> Supervisor:
    """Start the plan's nodes, each its own process with its output in ``out/<name>.log``, under one supervisor.

    Nodes of other packages (robot_state_publisher, RViz) need ``ros2 launch`` and are left out here.
    """
    nodes = Supervisor(env, finishers)
    for spec in plan.nodes:
        if spec.module:
            nodes.start(spec.name, bringup.command_line(spec, plan=plan), out / f"{spec.name}.log")
    return nodes


def _perturbation(profile: str) -> str:
    """``--perturb`` as arm_sim takes it, checked here: a bad profile is refused before any node starts."""
    from snn_sac_ros.core.arm.randomization import load_profile

    if not profile:
        return ""
    load_profile(profile)
    return str(Path(profile).resolve()) if Path(profile).suffix.lower() in (".yaml", ".yml") else profile


def _learning_said(args: argparse.Namespace) -> str:
    if args.adaptation_only:
        return "policy frozen, adaptation pathway learning"
    return (f"learning {'off' if args.no_learning else 'on'}"
            + (", with the adaptation pathway" if args.adaptation else ""))


def run(args: argparse.Namespace) -> dict:
    perturb = _perturbation(args.perturb)
    os.environ.update(ros_environment())  # the observer in this process joins the same domain
    out = Path(args.out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    plan = bringup.sim_reach_plan(
        arm=args.arm, checkpoint=args.checkpoint, learning=str(not (args.no_learning or args.adaptation_only)).lower(),
        adaptation=str(args.adaptation or args.adaptation_only).lower(),
        adaptation_while_frozen=str(args.adaptation_only).lower(),
        reaches=str(args.reaches), reach_seconds=str(args.reach_seconds), payload_kg=str(args.payload_kg),
        control_rate_hz=str(args.control_rate), output_dir=str(out), seed=str(args.seed),
        randomize=perturb, rt_priority=str(args.rt_priority))
    (out / "commands.txt").write_text("\n".join(" ".join(bringup.command_line(s, plan=plan))
                                                for s in plan.nodes if s.module) + "\n")
    sim_seconds = args.reaches * args.reach_seconds
    timeout = args.timeout or 3.0 * sim_seconds + 60.0
    print(f"demo: {args.arm}, {args.reaches} reaches x {args.reach_seconds:g} s sim time, payload "
          f"{args.payload_kg:g} kg after reach {args.reaches // 2}, "
          f"{_learning_said(args)}, "
          f"{'arm_sim perturbed by ' + args.perturb if args.perturb else 'nominal arm'}, "
          f"{f'SCHED_FIFO {args.rt_priority}' if args.rt_priority else 'normal scheduling'}, "
          f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (localhost only)", flush=True)
    from snn_sac_ros.adapters.ros.demo_observer import observe  # rclpy only once the nodes start

    with start_plan(plan, out, dict(os.environ)) as nodes:
        record = observe(nodes, reaches=args.reaches, timeout=timeout)
    return _report(out, record, nodes.codes, args)


def cost_summary(diagnostics: dict[str, str]) -> dict[str, float]:
    """The cost of a tick from the controller's ``cost_*`` diagnostics (mean per tick, all networks; energies are
    estimates): ``{}`` when it reported none."""
    return {k.removeprefix("cost_"): float(v) for k, v in diagnostics.items() if k.startswith("cost_")}


def _animate(frames: list[str], path: Path) -> str:
    """The rendered snapshots (one per chosen reach, target shown) as an animated GIF; '' without frames."""
    import numpy as np
    from PIL import Image

    from snn_sac_ros.commands.eval import write_animation

    if not frames:
        return ""
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(np.asarray(image.convert("RGB")))
    return str(write_animation(images, path, fps=1.0))


def _report(out: Path, record: dict, codes: dict[str, int], args: argparse.Namespace) -> dict:
    from snn_sac_ros.commands.demo_plots import write_plots
    from snn_sac_ros.commands.plot import demo_record

    summary_file = out / "summary.json"
    reach_summary = json.loads(summary_file.read_text()) if summary_file.exists() else {
        "reaches": 0, "success_2cm": 0.0, "success_5cm": 0.0, "mean_final_distance_m": float("nan")}
    recording = Path(record["controller"].get("record_path", out / "run.mcap"))  # run-2.mcap if run.mcap was there
    recorded, _, read = demo_record(recording) if recording.is_file() else ({"series": {}}, [], None)
    # the reach log (reaches.csv) knows the payload; the controller's recording does not
    plots = write_plots(out, recorded, args.reaches // 2 if args.payload_kg > 0 else None)
    diag = record["controller"]
    gains = recorded["series"].get("damping", [])
    result = {
        "reaches": reach_summary["reaches"], "success_2cm": reach_summary["success_2cm"],
        "success_5cm": reach_summary["success_5cm"],
        "mean_final_distance_m": reach_summary["mean_final_distance_m"],
        "control_rate_hz": float(diag.get("control_rate_hz", "nan")),
        "tick_p99_ms": float(diag.get("tick_p99_ms", "nan")),
        "deadline_misses": int(diag.get("deadline_misses", -1)),
        "damping_gains": [float(g) for g in gains[-1]] if len(gains) else [],  # as last recorded
        "cost": cost_summary(diag),
        "recording": str(recording) if recording.is_file() else "",
        "recording_complete": bool(read and read.complete),
        "exit_codes": codes, "plots": [str(p) for p in plots],
        "frames": sorted(str(p) for p in out.glob("frame_*.png")), "output_dir": str(out),
    }
    result["animation"] = _animate(result["frames"], out / "reaches.gif")
    (out / "demo_result.json").write_text(json.dumps(result, indent=2))
    print(f"\nreaches {result['reaches']}: success {result['success_2cm']:.0%} at 2 cm, "
          f"{result['success_5cm']:.0%} at 5 cm, mean final distance "
          f"{result['mean_final_distance_m'] * 100:.1f} cm")
    print(f"controller: {result['control_rate_hz']:.0f} Hz achieved, tick p99 {result['tick_p99_ms']:.3f} ms, "
          f"{result['deadline_misses']} deadline misses; node exit codes {codes}")
    cost = result["cost"]
    if cost:
        print(f"cost of a tick (mean, estimates): {cost['spikes']:.1f} spikes, {cost['synaptic_events']:.0f} "
              f"synaptic events; {cost['loihi_nj']:.0f} nJ on a Loihi-class chip (+{cost['loihi_learning_nj']:.0f} "
              f"learning) vs {cost['cpu_nj']:.0f} nJ of dense MACs on a CPU (+{cost['cpu_learning_nj']:.0f})")
    if result["damping_gains"]:
        print("learned joint damping gains [Nm s/rad]: " + ", ".join(f"{g:.2f}" for g in result["damping_gains"]))
    print(f"plots: {', '.join(Path(p).name for p in plots)} (from {recording.name}); frames: "
          f"{len(result['frames'])}{' (animated: reaches.gif)' if result['animation'] else ''}")
    print(f"output: {out}")
    return result
