"""``snn-sac-ros bench online``: what online learning does to the policy, without ROS, on the same targets.

Runs the controller's loop in the core (:func:`~snn_sac_ros.core.agent.rollout.run_reaches`: the spiking
agent ticking against PyBullet at the control rate, learning inside ``sim.step()``) for each seed and
each variant: ``frozen`` (learning off), ``anchored`` (the local SAC rules on, weights pulled back toward
the checkpoint with ``--anchor-tau``), ``unanchored`` (SAC rules on, no pull), ``adaptive`` (anchored SAC
rules plus the adaptive joint damping learned by weight perturbation: what the controller runs with
learning on) and ``frozen+pd`` (learning off,
a fixed task-space PD torque added: not a learner, a reference for what a change of control strategy
recovers on the changed arm), ``frozen+pes`` (learning off, abr_control's PES-learned adaptive dynamics pathway
added, see :class:`~snn_sac_ros.core.agent.adaptation.PESAdaptation`) and ``frozen+matched`` (learning off, the
torque that gives the changed arm the nominal arm's motion added, from both models, clipped to the PES pathway's
limit: what a perfect dynamics adaptation would add; not a learner). The last three are asked for with
``--variants``. Every variant of a seed
gets the same targets and the same payload change, so their reach errors compare pairwise. Without a
payload the phases are the run's thirds (drift over a long run); with one, the reaches before it, the
two halves after it (adaptation) and, with ``--payload-off-after``, the reaches after it came off again; and
per seed the recovery: reaches until the error is back near its pre-payload level.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from tqdm import tqdm

from snn_sac_ros.core.agent.adaptation import TEACHERS, PESConfig
from snn_sac_ros.core.agent.online import DampingLearning

VARIANTS = ("frozen", "anchored", "unanchored", "adaptive", "frozen+pd", "frozen+pes", "frozen+matched")
DEFAULT_VARIANTS = VARIANTS[:4]
PHYSICS_DT = 0.001
#: recovered: the median error of this many consecutive reaches is within RECOVERY_RATIO of the pre-payload median
RECOVERY_WINDOW, RECOVERY_RATIO = 10, 1.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="planar2", help="arm preset whose shipped checkpoint runs")
    parser.add_argument("--checkpoint", default="", help="checkpoint (default: the one shipped for --arm)")
    parser.add_argument("--reaches", type=int, default=60)
    parser.add_argument("--reach-seconds", type=float, default=3.0)
    parser.add_argument("--payload-kg", type=float, default=2.0, help="0: no payload (a drift run)")
    parser.add_argument("--payload-after", type=int, default=-1, help="reaches before the payload (-1: a third)")
    parser.add_argument("--payload-off-after", type=int, default=-1,
                        help="reaches before the payload is taken off again (-1: it stays)")
    parser.add_argument("--recovery-window", type=int, default=RECOVERY_WINDOW,
                        help="recovery: reaches whose median error must be back within 1.2x the pre-payload median")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="target-sequence seeds")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(DEFAULT_VARIANTS))
    parser.add_argument("--pd-gains", type=float, nargs=2, default=[20.0, 1.0], metavar=("KP", "KV"),
                        help="frozen+pd: spring to the target [N/m] and joint damping [Nm s/rad]")
    parser.add_argument("--pes-neurons", type=int, default=PESConfig.neurons, help="frozen+pes: ensemble size")
    parser.add_argument("--pes-rate", type=float, default=PESConfig.learning_rate, help="frozen+pes: PES learning rate")
    parser.add_argument("--pes-intercepts", type=float, nargs=2, default=list(PESConfig.intercepts),
                        metavar=("LOW", "HIGH"), help="frozen+pes: range of the neurons' intercepts on the unit sphere")
    parser.add_argument("--pes-sees-torque", action="store_true",
                        help="frozen+pes: the ensemble also represents the policy's torque")
    parser.add_argument("--pes-no-velocity", action="store_true",
                        help="frozen+pes: the ensemble does not represent the joint velocities (angles only)")
    parser.add_argument("--pes-teacher", choices=TEACHERS, default=PESConfig.teacher,
                        help="frozen+pes: pd (abr_control's PD torque, --pd-gains) or residual (what the nominal "
                        "model does not explain)")
    parser.add_argument("--pes-gate", type=float, default=PESConfig.gate,
                        help="frozen+pes: taught within this distance of the target [m] (the teacher: --pd-gains)")
    parser.add_argument("--adaptive-limit", type=float, default=PESConfig.limit,
                        help="frozen+pes, frozen+matched: bound of the added torque per joint [Nm]")
    parser.add_argument("--control-hz", type=float, default=500.0, help="ticks per second (one Nengo step each)")
    parser.add_argument("--learning-rate", type=float, default=1e-5, help="online rules' step size per tick")
    parser.add_argument("--anchor-tau", type=float, default=30.0, help="anchored variant's pull time constant [s]")
    parser.add_argument("--damping-sigma", type=float, default=DampingLearning.sigma,
                        help="adaptive: perturbation of each damping gain [Nm s/rad]")
    parser.add_argument("--damping-rate", type=float, default=DampingLearning.rate,
                        help="adaptive: step per trial pair, in units of sigma")
    parser.add_argument("--damping-cost-tau", type=float, default=DampingLearning.cost_tau,
                        help="adaptive: a reach is scored by its last this many seconds (0: all of it)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each)")
    parser.add_argument("--record-dir", default="", help="record every run as <dir>/<variant>-seed<S>.mcap "
                        "(the topics and tick records the controller records; for plot and train --from-bag)")


def _payload_after(args: argparse.Namespace) -> int:
    """Reaches before the payload: ``--payload-after``, or a third of the run."""
    return args.payload_after if args.payload_after >= 0 else args.reaches // 3


def _payload_off_after(args: argparse.Namespace) -> int:
    """Reaches before the payload comes off (-1: never), checked against the run."""
    off = args.payload_off_after
    if off >= 0 and not _payload_after(args) < off < args.reaches:
        raise SystemExit(f"--payload-off-after {off} must lie after the payload ({_payload_after(args)}) and "
                         f"before the end of the run ({args.reaches} reaches)")
    return off


def _phases(args: argparse.Namespace) -> list[tuple[str, slice]]:
    n = args.reaches
    if args.payload_kg > 0:
        after, off = _payload_after(args), _payload_off_after(args)
        end = off if off >= 0 else n
        mid = after + (end - after) // 2
        phases = [("before payload", slice(0, after)), ("after, 1st half", slice(after, mid)),
                  ("after, 2nd half", slice(mid, end))]
        return [*phases, ("payload off", slice(off, n))] if off >= 0 else phases
    return [("first third", slice(0, n // 3)), ("middle third", slice(n // 3, 2 * n // 3)),
            ("last third", slice(2 * n // 3, n))]


def run_one(args: argparse.Namespace, seed: int, variant: str) -> dict:
    """One run in a fresh process: its own arm, agent and simulator."""
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.agent.online import OnlineAgent
    from snn_sac_ros.core.agent.rollout import ReachPlan, run_reaches
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
    from snn_sac_ros.core.resources import shipped_checkpoint

    ckpt = load_checkpoint(args.checkpoint or shipped_checkpoint(args.arm))
    dt = 1.0 / args.control_hz
    substeps = max(1, round(dt / PHYSICS_DT))  # 1 kHz physics as arm_sim runs it, several steps per tick
    arm = PyBulletArm(ckpt.metadata["arm"], physics_dt=dt / substeps, substeps=substeps)
    plan = ReachPlan.random(arm, args.reaches, seed, reach_seconds=args.reach_seconds, payload_kg=args.payload_kg,
                            payload_after=_payload_after(args) if args.payload_kg > 0 else -1,
                            payload_off_after=_payload_off_after(args) if args.payload_kg > 0 else -1)
    learning = variant in ("anchored", "unanchored", "adaptive")
    damping = DampingLearning(sigma=args.damping_sigma, rate=args.damping_rate,
                              cost_tau=args.damping_cost_tau) if variant == "adaptive" else None
    agent = OnlineAgent(ckpt, spiking=True, learning=learning, dt=dt, seed=seed, online_lr=args.learning_rate,
                        anchor_tau=0.0 if variant == "unanchored" else args.anchor_tau, damping=damping)
    residual, adaptation, closers = _added_torque(args, variant, arm, ckpt.metadata["arm"], dt=dt, substeps=substeps,
                                                  seed=seed)
    recorder = None
    if getattr(args, "record_dir", ""):
        from pathlib import Path

        from snn_sac_ros.core.recording.run import RolloutRecorder

        recorder = RolloutRecorder(Path(args.record_dir) / f"{variant}-seed{seed}.mcap", agent, arm, metadata={
            "payload_reach": plan.payload_after, "variant": variant, "seed": seed,
            "checkpoint": args.checkpoint or args.arm})
    finals = run_reaches(agent, arm, plan, residual=residual, on_tick=recorder, adaptation=adaptation)
    if recorder is not None:
        recorder.close()
    agent_gains = agent.damping_gains().tolist()
    for close in closers:
        close()
    agent.close()
    arm.close()
    return {"seed": seed, "variant": variant, "final_distance_m": finals.tolist(),
            "damping_gains": agent_gains}


def _added_torque(args: argparse.Namespace, variant: str, arm: object, arm_spec: object, *, dt: float,
                  substeps: int, seed: int) -> tuple[object, object, list]:
    """What ``variant`` adds to the policy's torque: ``(residual, the tick's adaptation pathway, what to close after
    the run)``, None where it adds nothing."""
    from snn_sac_ros.core.agent.adaptation import PESAdaptation, matched_torque
    from snn_sac_ros.core.agent.rollout import task_space_pd
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm

    if variant == "frozen+pd":
        return task_space_pd(arm, *args.pd_gains), None, []
    if variant == "frozen+pes":
        kp, kv = args.pd_gains
        model = PyBulletArm(arm_spec)  # the nominal model: the simulated arm's dynamics calls may see the payload
        pes = PESAdaptation(model, dt, PESConfig(neurons=args.pes_neurons, learning_rate=args.pes_rate,
                                                 teacher=args.pes_teacher, kp=kp, kv=kv, gate=args.pes_gate,
                                                 limit=args.adaptive_limit, intercepts=tuple(args.pes_intercepts),
                                                 sees_torque=args.pes_sees_torque,
                                                 sees_velocity=not args.pes_no_velocity),
                            seed=seed)
        return None, pes, [pes.close, model.close]
    if variant == "frozen+matched":
        nominal, loaded = PyBulletArm(arm_spec), PyBulletArm(arm_spec, payload_kg=args.payload_kg)

        def matched(state: object, _target: object, policy: object) -> object:
            if arm.payload_kg == 0:
                return 0.0 * policy
            return matched_torque(nominal, loaded, state, policy, args.adaptive_limit)

        return matched, None, [nominal.close, loaded.close]
    return None, None, []


def recovery_reaches(finals: np.ndarray, start: int, end: int, reference: float, *,
                     window: int = RECOVERY_WINDOW, ratio: float = RECOVERY_RATIO) -> int | None:
    """Reaches after ``start`` until the median final error of ``window`` consecutive reaches (all before
    ``end``) is within ``ratio`` x ``reference``: 0 when the first window already is; None when none is."""
    for k in range(start, end - window + 1):
        if np.median(finals[k:k + window]) <= ratio * reference:
            return k - start
    return None


def run(args: argparse.Namespace) -> dict:
    _phases(args)  # a bad payload schedule is refused before any run starts
    jobs = [(seed, variant) for seed in args.seeds for variant in args.variants]
    runs: list[dict] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, args, seed, variant) for seed, variant in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="bench online", unit="run"):
            runs.append(future.result())
    return report(args, runs)


def report(args: argparse.Namespace, runs: list[dict]) -> dict:
    """Print the table of ``runs`` (from :func:`run_one`) and return the figures."""
    phases = _phases(args)
    window, recovery = args.recovery_window, args.payload_kg > 0
    finals = {(r["seed"], r["variant"]): np.array(r["final_distance_m"]) for r in runs}

    def per_seed(variant: str, stat: object) -> np.ndarray:
        """(seeds, phases) array of ``stat`` over each phase's final distances (NaN for a phase without reaches)."""
        return np.array([[stat(d) if (d := finals[(s, variant)][sl]).size else np.nan for _, sl in phases]
                         for s in args.seeds])

    rows = []
    for variant in args.variants:
        median_cm = per_seed(variant, np.median) * 100
        success = per_seed(variant, lambda d: np.mean(d <= 0.02))
        row = {"variant": variant, "median_cm": median_cm.mean(axis=0).tolist(),
               "mean_cm": (per_seed(variant, np.mean) * 100).mean(axis=0).tolist(),
               "success_2cm": success.mean(axis=0).tolist(), "per_seed_median_cm": median_cm.tolist(),
               "per_seed_success_2cm": success.tolist()}
        if recovery:
            start, end = phases[1][1].start, phases[2][1].stop
            row["recovery_reaches"] = [recovery_reaches(finals[(s, variant)], start, end,
                                                        float(np.median(finals[(s, variant)][phases[0][1]])),
                                                        window=window) for s in args.seeds]
        rows.append(row)
    payload = f"payload {args.payload_kg:g} kg" if args.payload_kg > 0 else "no payload"
    kp, kv = args.pd_gains
    pd = f", frozen+pd gains {kp:g} N/m, {kv:g} Nm s/rad" if "frozen+pd" in args.variants else ""
    if "frozen+pes" in args.variants:
        taught = (f"PD {kp:g} / {kv:g} within {args.pes_gate * 100:g} cm" if args.pes_teacher == "pd"
                  else "the nominal model's residual")
        sees = ("angles" + ("" if args.pes_no_velocity else ", velocities")
                + (", torque" if args.pes_sees_torque else ""))
        pd += f", frozen+pes {args.pes_neurons} neurons over {sees}, rate {args.pes_rate:g}, taught by {taught}"
    if {"frozen+pes", "frozen+matched"} & set(args.variants):
        pd += f", added torque within +-{args.adaptive_limit:g} Nm"
    print(f"\nbench online: {args.checkpoint or args.arm}, {args.reaches} reaches x {args.reach_seconds:g} s at "
          f"{args.control_hz:g} Hz, "
          f"{payload}, online rate {args.learning_rate:g}, anchor {args.anchor_tau:g} s{pd}, seeds {args.seeds}")
    print("median final reach error [cm] (success at 2 cm), averaged over seeds")
    header = f"{'variant':<15}" + "".join(f"{name:>20}" for name, _ in phases)
    header += f"{'recovery, reaches per seed':>30}" if recovery else ""
    print(header)
    print("-" * len(header))
    for r in rows:
        line = f"{r['variant']:<15}" + "".join(f"{cm:>13.2f} ({s:>4.0%})" for cm, s in zip(r["median_cm"],
                                                                                              r["success_2cm"]))
        if recovery:
            line += f"{' / '.join('-' if k is None else str(k) for k in r['recovery_reaches']):>30}"
        print(line)
    if recovery:
        print(f"recovery: reaches after the payload until {window} consecutive reaches have a median error within"
              f" {RECOVERY_RATIO:g}x the seed's pre-payload median (x {args.reach_seconds:g} s for sim "
              "seconds; -: not within the run)")
    if "frozen" in args.variants:
        frozen = next(r for r in rows if r["variant"] == "frozen")
        print("last phase, minus frozen, per seed: success at 2 cm [pp] (positive: better than frozen)")
        for r in rows:
            if r["variant"] != "frozen":
                diff = 100 * (np.array(r["per_seed_success_2cm"])[:, -1]
                              - np.array(frozen["per_seed_success_2cm"])[:, -1])
                print(f"  {r['variant']:<15} " + " ".join(f"{d:+.0f}" for d in diff) + f"  mean {diff.mean():+.1f}")
        print("last phase, minus frozen, per seed: median reach error [cm] (negative: better than frozen)")
        for r in rows:
            if r["variant"] != "frozen":
                diff = np.array(r["per_seed_median_cm"])[:, -1] - np.array(frozen["per_seed_median_cm"])[:, -1]
                print(f"  {r['variant']:<15} " + " ".join(f"{d:+.2f}" for d in diff) + f"  mean {diff.mean():+.2f}")
    learned = [r for r in runs if r["variant"] == "adaptive"]
    if learned:
        print("adaptive: learned damping gains at the end [Nm s/rad], per seed: "
              + "; ".join(f"{r['seed']}: " + ", ".join(f"{g:.2f}" for g in r["damping_gains"])
                          for r in sorted(learned, key=lambda r: r["seed"])))
    return {"phases": [name for name, _ in phases], "rows": rows, "runs": runs}
