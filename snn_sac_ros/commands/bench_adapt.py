"""``snn-sac-ros bench adapt``: does online learning win back what a payload costs? Learning on vs frozen.

Runs the demo (real nodes over DDS) twice per seed with the same targets and the same payload change,
once with the controller's online learning on and once frozen, and compares the reach error before the
payload, just after it, and at the end. Adaptation shows as the late error with learning on coming back
down below the frozen policy's.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from snn_sac_ros.commands import demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2")
    parser.add_argument("--reaches", type=int, default=24, help="reaches per run (payload after half)")
    parser.add_argument("--reach-seconds", type=float, default=4.0)
    parser.add_argument("--payload-kg", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="target-sequence seeds")
    parser.add_argument("--adaptation", action="store_true",
                        help="the learning run also runs the PES adaptive dynamics pathway")
    parser.add_argument("--adaptation-only", action="store_true",
                        help="the adapting run freezes the policy and runs the PES pathway alone (learning)")
    parser.add_argument("--out", default="", help="folder for the runs (default: a temporary folder)")


def _phases(reaches_csv: Path, payload_after: int) -> dict[str, float]:
    with open(reaches_csv) as handle:
        final = np.array([float(r["final_distance_m"]) for r in csv.DictReader(handle)])
    after = final[payload_after:]
    half = max(1, len(after) // 2)
    phases = {"before": final[:payload_after], "after_early": after[:half], "after_late": after[half:]}
    return {**{f"{k}_cm": float(v.mean() * 100) for k, v in phases.items()},
            **{f"{k}_median_cm": float(np.median(v) * 100) for k, v in phases.items()},
            "success_2cm_late": float(np.mean(phases["after_late"] <= 0.02))}


def run(args: argparse.Namespace) -> dict:
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-adapt-"))
    rows = []
    for seed in args.seeds:
        for learning in (True, False):
            out = root / f"seed{seed}-{'learning' if learning else 'frozen'}"
            result = demo.run(demo.run_arguments(
                arm=args.arm, reaches=args.reaches, reach_seconds=args.reach_seconds, payload_kg=args.payload_kg,
                no_learning=not learning, out=str(out), seed=seed, adaptation=args.adaptation and learning,
                adaptation_only=args.adaptation_only and learning))
            phases = _phases(out / "reaches.csv", args.reaches // 2)
            rows.append({"seed": seed, "learning": learning, **phases, "tick_p99_ms": result["tick_p99_ms"],
                         "damping_gains": result.get("damping_gains", [])})
    pathway = (", adapting run: the policy frozen, the PES adaptation pathway learning" if args.adaptation_only
               else ", learning run with the PES adaptation pathway" if args.adaptation else "")
    print(f"\nbench adapt: {args.arm}{pathway}, payload {args.payload_kg:g} kg after reach {args.reaches // 2} "
          f"of {args.reaches}, final reach error [cm]: mean (median)")
    header = (f"{'seed':>4} {'learning':>8} {'before':>15} {'after, early':>15} {'after, late':>15} {'late 2cm':>9}"
              "  damping gains")
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "".join(f"{r[k + '_cm']:>8.2f} ({r[k + '_median_cm']:>4.2f})"
                        for k in ("before", "after_early", "after_late"))
        gains = ", ".join(f"{g:.2f}" for g in r["damping_gains"])
        label = ("pathway" if args.adaptation_only else "on") if r["learning"] else "frozen"
        print(f"{r['seed']:>4} {label:>8} {cells} {r['success_2cm_late']:>8.0%}  {gains}")
    return {"rows": rows, "output_dir": str(root)}
