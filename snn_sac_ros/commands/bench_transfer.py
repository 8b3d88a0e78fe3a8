"""``snn-sac-ros bench transfer``: how trained policies hold up on arms that differ from the one they saw.

Every checkpoint given (``train`` makes them, nominal or with ``--randomize``; this command only evaluates) is
evaluated on the nominal arm and under every held-out perturbation (``--perturb``; default: every shipped
``eval-*`` profile), on the same targets (episode ``k`` seeded ``--eval-seed + k``, the perturbation drawn from
the same seed), as spiking LIF neurons unless ``--rate``. Checkpoints are grouped by arm, by the randomisation
they were trained with (their metadata), by whether they observe their last action and by their env step; one per
training seed. The table gives, per group and condition, the mean success at 2 and 5 cm, its ratio at 2 cm to the
group's nominal success, and the difference at 2 cm to the unrandomised group on the same arm and condition. Each
evaluation is written to ``--out`` and reused by a re-run (``--fresh`` redoes them). ``--chained`` starts every env
reach after the first where the last one ended. ``--control-hz`` and ``--dt`` step the env evaluations at another
rate than the trained one (500 and 0.002: the controller's default tick, a fresh state every 2 ms).

With ``--ros`` each evaluation is a demo run instead: ``arm_sim`` with the perturbation (``randomize``), the
controller with the checkpoint, frozen, over DDS at real time, ``--episodes`` reaches one after the other from
target seed ``--ros-seed`` (no reset between them, as on a robot).

With ``--adaptation`` every evaluation runs the controller's PES adaptation pathway beside the frozen policy, learning
from its first step of each condition on (the controller with ``adaptation`` and ``adaptation_while_frozen`` on; over
ROS, the demo's ``--adaptation-only``): what the deployed controller makes of a changed arm. The groups get
``+adaptation``, and their differences are to the unrandomised checkpoints with the pathway too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np

NOMINAL = "nominal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", nargs="+", required=True, metavar="PATH",
                        help="checkpoints to evaluate: nominal and randomised ones, one per training seed")
    parser.add_argument("--perturb", nargs="+", default=None, metavar="PROFILE",
                        help="held-out perturbations (names under config/randomization or YAML paths); "
                        "default: every shipped eval-* profile")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation targets per condition")
    parser.add_argument("--eval-seed", type=int, default=100_000, help="episode k uses seed EVAL_SEED + k")
    parser.add_argument("--rate", action="store_true", help="LIF rate neurons (default: spiking LIF, as deployed)")
    parser.add_argument("--out", default="runs/bench-transfer", help="folder of the evaluations' results")
    parser.add_argument("--fresh", action="store_true", help="redo evaluations whose results exist")
    parser.add_argument("--chained", action="store_true",
                        help="env evaluations: each reach from where the last one ended, as over ROS (no reset)")
    parser.add_argument("--control-hz", type=float, default=None,
                        help="env evaluations: env steps per second (default: each checkpoint's training rate)")
    parser.add_argument("--dt", type=float, default=0.001, help="env evaluations: Nengo step [s]")
    parser.add_argument("--ros", action="store_true",
                        help="evaluate over ROS 2: the demo's nodes, arm_sim perturbed, the controller frozen")
    parser.add_argument("--ros-seed", type=int, default=1, help="--ros: the reach targets' seed")
    parser.add_argument("--reach-seconds", type=float, default=3.0, help="--ros: sim seconds per reach")
    parser.add_argument("--adaptation", action="store_true",
                        help="run the controller's PES adaptation pathway beside the frozen policy, learning")


def _evaluate(args: argparse.Namespace, checkpoint: str, condition: str) -> dict:
    """One evaluation, from ``--out`` when it was run before on the same file, targets and neurons."""
    from snn_sac_ros.core.agent.evaluate import evaluate_checkpoint
    from snn_sac_ros.core.arm.randomization import load_profile, profile_record

    weights = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:12]
    perturbation = None if condition == NOMINAL else load_profile(condition)
    what = hashlib.sha256(json.dumps(profile_record(perturbation), sort_keys=True).encode()).hexdigest()[:8]
    mode = ("rate" if args.rate else "spiking") + ("-adaptation" if args.adaptation else "")
    rate = (f"-{args.control_hz:g}Hz" if args.control_hz else "") + (f"-dt{args.dt:g}" if args.dt != 0.001 else "")
    seeds = (f"ros-{args.ros_seed}-{args.reach_seconds:g}s" if args.ros
             else f"{args.eval_seed}{'-chained' if args.chained else ''}{rate}")
    path = Path(args.out) / f"{Path(checkpoint).stem}-{weights}-{Path(condition).stem}-{what}-{mode}-" \
                            f"{args.episodes}x{seeds}.json"
    if path.exists() and not args.fresh:
        return json.loads(path.read_text())
    print(f"bench transfer: {checkpoint} under {condition} ({args.episodes} targets, {mode}"
          f"{', over ROS 2' if args.ros else ''}) ...", flush=True)
    if args.ros:
        result = _evaluate_over_ros(args, checkpoint, condition, path.with_suffix(""))
        result.update(perturbation=perturbation.name if perturbation else "none",
                      perturbation_profile=profile_record(perturbation))
    else:
        from snn_sac_ros.core.agent.adaptation import CONTROLLER_CONFIG

        result = evaluate_checkpoint(checkpoint, episodes=args.episodes, spiking=not args.rate,
                                     seed=args.eval_seed, perturb=perturbation, chained=args.chained,
                                     control_hz=args.control_hz, dt=args.dt,
                                     adaptation=CONTROLLER_CONFIG if args.adaptation else None)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


def _evaluate_over_ros(args: argparse.Namespace, checkpoint: str, condition: str, out: Path) -> dict:
    """One demo run: arm_sim under ``condition``, the controller frozen on ``checkpoint`` (its adaptation pathway
    learning with ``--adaptation``)."""
    from snn_sac_ros.commands import demo
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.arm import PRESETS

    arm = load_checkpoint(checkpoint).metadata["arm"]
    if arm not in PRESETS:
        raise ValueError(f"bench transfer --ros runs the demo's preset arms ({', '.join(PRESETS)}); {checkpoint} is "
                         f"for {arm!r}: start arm_sim and the controller yourself (docs/randomization.md)")
    result = demo.run(demo.run_arguments(
        arm=arm, checkpoint=str(Path(checkpoint).resolve()), reaches=args.episodes, reach_seconds=args.reach_seconds,
        payload_kg=0.0, no_learning=not args.adaptation, adaptation_only=args.adaptation, out=str(out),
        seed=args.ros_seed,
        perturb="" if condition == NOMINAL else condition))
    if result["reaches"] < args.episodes:
        raise RuntimeError(f"the demo under {condition} ended after {result['reaches']} of {args.episodes} reaches "
                           f"(logs in {out})")
    keys = ("success_2cm", "success_5cm", "mean_final_distance_m", "control_rate_hz", "deadline_misses")
    return {k: result[k] for k in keys}


def training_label(metadata: dict) -> str:
    """A checkpoint's group: its training randomisation (``none``), ``+last-action`` when it observes its last
    action (another observation, so another policy family), ``+from-bag`` when it was fine-tuned from recordings
    (``train --from-bag``: not its init's policy any more), ``@100Hz`` when its env step was not 50 Hz."""
    from snn_sac_ros.core.agent.checkpoint import DEFAULT_CONTROL_HZ, trained_control_hz

    label = (metadata.get("randomization") or {}).get("name", "none")
    label += "+last-action" if metadata["observation_contract"].get("last_action") else ""
    label += "+from-bag" if metadata.get("bags") else ""
    control_hz = trained_control_hz(metadata)
    return label + (f"@{control_hz:g}Hz" if control_hz != DEFAULT_CONTROL_HZ else "")


def unrandomised(label: str) -> str:
    """The group of the same family trained without randomisation: ``train+adaptation`` -> ``none+adaptation``."""
    return re.sub(r"^[^+@]+", "none", label)


def summarize(rows: list[dict], conditions: list[str]) -> list[dict]:
    """Per (arm, trained with, condition): mean success over seeds, ratio to nominal, points vs unrandomised."""
    means: dict[tuple[str, str, str], dict] = {}
    for arm, trained in dict.fromkeys((r["arm"], r["trained"]) for r in rows):
        for condition in conditions:
            group = [r for r in rows if (r["arm"], r["trained"], r["condition"]) == (arm, trained, condition)]
            means[arm, trained, condition] = {
                "arm": arm, "trained": trained, "condition": condition, "seeds": sorted(r["seed"] for r in group),
                **{k: float(np.mean([r[k] for r in group]))
                   for k in ("success_2cm", "success_5cm", "mean_final_distance_m")}}
    for (arm, trained, condition), m in means.items():
        nominal, plain = means[arm, trained, NOMINAL], means.get((arm, unrandomised(trained), condition))
        m["vs_nominal"] = m["success_2cm"] / nominal["success_2cm"] if nominal["success_2cm"] else None
        m["vs_unrandomised_pts"] = (100 * (m["success_2cm"] - plain["success_2cm"])
                                    if plain is not None and plain is not m else None)
    return list(means.values())


def print_table(summary: list[dict], title: str) -> None:
    header = (f"{'arm':<12} {'trained with':<20} {'condition':<18} {'seeds':<8} {'2 cm':>7} {'5 cm':>7} "
              f"{'dist [cm]':>10} {'/ nominal':>10} {'vs unrandomised [pts]':>22}")
    print(title)
    print(header)
    print("-" * len(header))
    for m in summary:
        ratio = f"{m['vs_nominal']:>10.2f}" if m["vs_nominal"] is not None else f"{'-':>10}"
        points = f"{m['vs_unrandomised_pts']:>+22.1f}" if m["vs_unrandomised_pts"] is not None else f"{'-':>22}"
        seeds = ",".join(str(s) for s in m["seeds"])
        print(f"{m['arm']:<12} {m['trained']:<20} {m['condition']:<18} {seeds:<8} {m['success_2cm']:>7.1%} "
              f"{m['success_5cm']:>7.1%} {m['mean_final_distance_m'] * 100:>10.2f} {ratio}{points}")


def run(args: argparse.Namespace) -> dict:
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.arm.randomization import held_out_profiles, load_profile

    if args.ros and (args.control_hz or args.dt != 0.001):
        raise ValueError("--control-hz and --dt set the env evaluations; over ROS the controller's parameters do")
    perturbations = list(args.perturb or held_out_profiles())
    for profile in perturbations:
        if load_profile(profile) is None:
            raise ValueError(f"perturbation {profile!r} changes nothing: give a held-out profile")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    conditions = [NOMINAL, *(Path(p).stem for p in perturbations)]
    rows = []
    for checkpoint in args.checkpoints:
        meta = load_checkpoint(checkpoint).metadata
        trained = training_label(meta) + ("+adaptation" if args.adaptation else "")
        for condition, profile in zip(conditions, [NOMINAL, *perturbations]):
            r = _evaluate(args, checkpoint, profile)
            rows.append({"checkpoint": str(checkpoint), "arm": meta["arm"], "trained": trained,
                         "seed": meta.get("seed"), "condition": condition, "perturbation": r["perturbation"],
                         **{k: r[k] for k in ("success_2cm", "success_5cm", "mean_final_distance_m")}})
    summary = summarize(rows, conditions)
    mode = ("LIF rate" if args.rate else "spiking LIF") + (", over ROS 2 (demo nodes, frozen)" if args.ros else "")
    mode += ", the PES adaptation pathway beside the policy, learning" if args.adaptation else ""
    if args.control_hz and not args.ros:
        mode += f", env step {args.control_hz:g} Hz, Nengo dt {args.dt:g} s"
    print_table(summary, f"bench transfer: {len(args.checkpoints)} checkpoints, {args.episodes} targets from seed "
                         f"{args.eval_seed}, {mode} (results in {args.out})")
    return {"rows": rows, "summary": summary, "conditions": conditions, "mode": mode, "episodes": args.episodes}
