"""``snn-sac-ros bench learn``: our spiking SAC, rung by rung of the feedback ladder, against Stable-Baselines3 SAC.

For each seed and each ``--feedback`` rung (how errors reach the hidden layers and dQ/da: ``exact`` is backprop,
``kp``, ``fa`` and ``dfa`` transport no weight, see ``train --help``): train ours (``train`` command, rate-mode
replay), evaluate its checkpoint in the Nengo simulator with LIF-rate and with spiking LIF neurons; train SB3 SAC
with its defaults (MlpPolicy 256x256, lr 3e-4, batch 256, auto entropy) and evaluate its deterministic policy.
The ladder table puts every rung beside ``exact`` and SB3: what it transports, spiking success at 2 / 5 cm, mean
final distance, training time. Every agent is evaluated on the
same targets (episode ``k`` seeded ``--eval-seed + k``). One BLAS thread per run (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``). Each finished run writes ``<out>/<agent>-seed<S>.json``; a re-run skips runs
whose file exists (``--fresh`` to redo), so a long benchmark can be resumed or collected later with
``--collect``. ``--reevaluate`` evaluates the finished runs' saved policies again, on ``--episodes`` targets
from ``--eval-seed`` (training is deterministic for its seed, so more targets need no retraining), and keeps
those results apart in ``<out>/eval-<episodes>x<eval-seed>/``. SB3 is a benchmark-only dependency
(``requirements-bench.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from snn_sac_ros.core.learning.modes import FEEDBACK_MODES

AGENTS = ("ours", "sb3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=100, help="evaluation targets")
    parser.add_argument("--eval-seed", type=int, default=100_000)
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    parser.add_argument("--feedback", nargs="+", choices=list(FEEDBACK_MODES), default=["exact"], metavar="RUNG",
                        help=f"feedback modes to train ours with, one run per seed each ({', '.join(FEEDBACK_MODES)})")
    parser.add_argument("--out", default=None, help="results folder (default: runs/bench-learn-<arm>-<steps>)")
    parser.add_argument("--fresh", action="store_true", help="redo runs whose results exist")
    parser.add_argument("--eval-modes", nargs="+", choices=["rate", "spiking"], default=["rate", "spiking"],
                        help="how ours is evaluated (the ladder reads spiking; rate doubles the evaluation's time)")
    parser.add_argument("--collect", action="store_true", help="only print the table of finished runs")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate the finished runs' policies again on --episodes targets from --eval-seed")


def _evaluate_ours(args: argparse.Namespace, checkpoint: str) -> dict:
    from snn_sac_ros.core.agent.evaluate import evaluate_checkpoint

    return {mode: evaluate_checkpoint(checkpoint, episodes=args.episodes, spiking=mode == "spiking",
                                      seed=args.eval_seed) for mode in args.eval_modes}


def _evaluate_sb3(args: argparse.Namespace, model: object) -> dict:
    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.core.agent.evaluate import run_episodes

    env = gym.make("snn_sac_ros/ArmReach-v0", arm=args.arm)
    result = run_episodes(env, lambda obs: model.predict(obs, deterministic=True)[0], args.episodes, args.eval_seed)
    env.close()
    return {"deterministic": result}


def _run_name(result: dict) -> str:
    """``ours-<rung>-seed<S>`` or ``sb3-seed<S>``: a result's file stem, and its checkpoint folder's name."""
    rung = f"-{result['feedback']}" if result["agent"] == "ours" else ""
    return f"{result['agent']}{rung}-seed{result['seed']}"


def _reevaluate(args: argparse.Namespace, trained: dict, out: Path) -> dict:
    """``trained``'s result with its evaluation redone (its training time kept); paths relative to ``out``."""
    name = _run_name(trained)
    if trained["agent"] == "ours":
        evaluation = _evaluate_ours(args, str(out / name / "checkpoint.npz"))
    else:
        import torch
        from stable_baselines3 import SAC

        torch.set_num_threads(1)
        evaluation = _evaluate_sb3(args, SAC.load(out / f"{name}.zip", device="cpu"))
    kept = {k: v for k, v in trained.items() if k not in ("rate", "spiking", "deterministic")}  # not stale figures
    return {**kept, **evaluation}


def _ours(args: argparse.Namespace, seed: int, out: Path, rung: str) -> dict:
    from snn_sac_ros.commands.train import add_arguments, train_run

    parser = argparse.ArgumentParser()
    add_arguments(parser)  # train's own defaults, so the bench trains exactly what `train` does
    argv = ["--arm", args.arm, "--steps", str(args.steps), "--seed", str(seed), "--no-progress",
            "--out", str(out / _run_name({"agent": "ours", "feedback": rung, "seed": seed})), "--feedback", rung]
    trained = train_run(parser.parse_args(argv), ["train", *argv])
    return {"agent": "ours", "feedback": rung, "seed": seed, "train_wall_s": trained["train_wall_s"],
            "checkpoint": trained["checkpoint"], **_evaluate_ours(args, trained["checkpoint"])}


def _sb3(args: argparse.Namespace, seed: int, out: Path) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    import snn_sac_ros  # noqa: F401  (registers the env)

    torch.set_num_threads(1)
    env = gym.make("snn_sac_ros/ArmReach-v0", arm=args.arm)
    model = SAC("MlpPolicy", env, seed=seed, verbose=0, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    wall = time.perf_counter() - start
    model.save(out / f"sb3-seed{seed}")
    env.close()
    return {"agent": "sb3", "seed": seed, "train_wall_s": wall, **_evaluate_sb3(args, model)}


def _write_json(path: Path, result: dict) -> None:
    """Write then rename: an interrupted run leaves no half-written result to be collected."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)


def _rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        modes = [(f"ours {r['feedback']} {mode}", r[mode]) for mode in ("rate", "spiking") if mode in r] if (
            r["agent"] == "ours") else [("SB3 SAC", r["deterministic"])]
        for name, m in modes:
            rows.append({"agent": name, "feedback": r.get("feedback"), "seed": r["seed"],
                         "success_2cm": m["success_2cm"], "success_5cm": m["success_5cm"],
                         "mean_final_distance_m": m["mean_final_distance_m"], "train_wall_s": r["train_wall_s"]})
    return rows


def print_table(rows: list[dict], title: str) -> list[dict]:
    """Per-seed rows and a mean row per agent; returns the mean rows."""
    header = (f"{'agent':<24} {'seed':>5} {'success 2cm':>12} {'success 5cm':>12} {'final dist [cm]':>16} "
              f"{'train [s]':>10}")
    print(title)
    print(header)
    print("-" * len(header))
    means = []
    names = list(dict.fromkeys(r["agent"] for r in sorted(rows, key=lambda r: r["agent"] == "SB3 SAC")))
    for name in names:
        group = [r for r in rows if r["agent"] == name]
        for r in sorted(group, key=lambda r: r["seed"]):
            print(f"{name:<24} {r['seed']:>5} {r['success_2cm']:>12.0%} {r['success_5cm']:>12.0%} "
                  f"{r['mean_final_distance_m'] * 100:>16.2f} {r['train_wall_s']:>10.0f}")
        m = {k: float(np.mean([r[k] for r in group]))
             for k in ("success_2cm", "success_5cm", "mean_final_distance_m", "train_wall_s")}
        means.append({"agent": name, "feedback": group[0]["feedback"], "seeds": sorted(r["seed"] for r in group), **m})
        print(f"{name + ' mean':<24} {len(group):>5} {m['success_2cm']:>12.1%} {m['success_5cm']:>12.1%} "
              f"{m['mean_final_distance_m'] * 100:>16.2f} {m['train_wall_s']:>10.0f}")
    return means


def ladder(means: list[dict]) -> list[dict]:
    """One row per rung (spiking), beside backprop (``exact``) and SB3 SAC: the answer to "can local rules do it?"."""
    by_name = {m["agent"]: m for m in means}
    exact, sb3 = by_name.get("ours exact spiking"), by_name.get("SB3 SAC")
    rows = []
    for m in means:
        if not m["agent"].endswith("spiking"):
            continue
        mode = FEEDBACK_MODES[m["feedback"]]
        rows.append({"rung": mode.name, "transports": mode.transports, "seeds": m["seeds"],
                     "success_2cm": m["success_2cm"], "success_5cm": m["success_5cm"],
                     "mean_final_distance_m": m["mean_final_distance_m"], "train_wall_s": m["train_wall_s"],
                     "vs_exact": m["success_2cm"] / exact["success_2cm"] if exact and exact["success_2cm"] else None,
                     "vs_sb3": m["success_2cm"] / sb3["success_2cm"] if sb3 and sb3["success_2cm"] else None})
    rows.sort(key=lambda r: list(FEEDBACK_MODES).index(r["rung"]))  # the ladder's order: backprop first
    header = (f"{'rung':<10} {'weight transport':<54} {'seeds':>5} {'2 cm':>7} {'5 cm':>7} {'dist [cm]':>10} "
              f"{'train [s]':>10} {'/ exact':>8} {'/ SB3':>7}")
    print("\nthe ladder: spiking success, means over seeds (2 cm ratios to backprop and to SB3 SAC)")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratios = "".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}" for v in (r["vs_exact"], r["vs_sb3"]))
        print(f"{r['rung']:<10} {r['transports']:<54} {len(r['seeds']):>5} {r['success_2cm']:>7.1%} "
              f"{r['success_5cm']:>7.1%} {r['mean_final_distance_m'] * 100:>10.2f} {r['train_wall_s']:>10.0f}{ratios}")
    if sb3:
        print(f"{'SB3 SAC':<10} {'(autograd, not a spiking network)':<54} {len(sb3['seeds']):>5} "
              f"{sb3['success_2cm']:>7.1%} "
              f"{sb3['success_5cm']:>7.1%} {sb3['mean_final_distance_m'] * 100:>10.2f} {sb3['train_wall_s']:>10.0f}")
    return rows


def run(args: argparse.Namespace) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"  # for any process this one starts; set it in the shell for this one
    out = Path(args.out or f"runs/bench-learn-{Path(args.arm).stem}-{args.steps}")
    out.mkdir(parents=True, exist_ok=True)
    results_dir = out / f"eval-{args.episodes}x{args.eval_seed}" if args.reevaluate else out

    def wanted(result: dict) -> bool:
        return (result.get("steps") == args.steps and result.get("arm") == args.arm and result["agent"] in args.agents
                and result["seed"] in args.seeds
                and (result["agent"] == "sb3" or result.get("feedback", "exact") in args.feedback))

    if args.reevaluate and not args.collect:
        results_dir.mkdir(exist_ok=True)
        for path in sorted(out.glob("*-seed*.json")):
            trained = json.loads(path.read_text())
            if not wanted(trained):
                continue
            target = results_dir / path.name
            if target.exists() and not args.fresh:
                print(f"{target} exists: skipping (--fresh to redo)")
                continue
            print(f"bench learn: evaluating {path.stem} on {args.episodes} targets from seed {args.eval_seed} ...",
                  flush=True)
            _write_json(target, {**_reevaluate(args, trained, out), "episodes": args.episodes})
    elif not args.collect:
        runs = [(seed, agent, rung) for seed in args.seeds for agent in args.agents
                for rung in (args.feedback if agent == "ours" else [None])]
        for seed, agent, rung in runs:
            path = out / f"{_run_name({'agent': agent, 'feedback': rung, 'seed': seed})}.json"
            if path.exists() and not args.fresh:
                print(f"{path} exists: skipping (--fresh to redo)")
                continue
            print(f"bench learn: {agent}{f' {rung}' if rung else ''} seed {seed}, {args.steps} steps on {args.arm} ...",
                  flush=True)
            result = _ours(args, seed, out, rung) if agent == "ours" else _sb3(args, seed, out)
            result.update({"arm": args.arm, "steps": args.steps, "episodes": args.episodes})
            _write_json(path, result)
    results = [r for r in (json.loads(p.read_text()) for p in sorted(results_dir.glob("*-seed*.json"))) if wanted(r)]
    rows = _rows(results)
    means = print_table(rows, f"bench learn: {args.arm}, {args.steps} env steps, {args.episodes} evaluation targets "
                              f"from seed {args.eval_seed} (results in {results_dir})")
    summary = {m["agent"]: m for m in means}
    for rung in args.feedback:
        rate, spiking = summary.get(f"ours {rung} rate"), summary.get(f"ours {rung} spiking")
        if rate and spiking:
            gap = rate["success_2cm"] - spiking["success_2cm"]
            print(f"{rung}: rate - spiking gap at 2 cm {gap * 100:+.1f} percentage points")
    return {"out_dir": str(out), "rows": rows, "means": means, "ladder": ladder(means)}
