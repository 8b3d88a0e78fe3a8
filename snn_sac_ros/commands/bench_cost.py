"""``snn-sac-ros bench cost``: what a tick costs, per arm and network size, spiking events beside the dense ANN.

For each arm and hidden-layer size, the spiking agent drives the arm (the core rollout: PyBullet, the controller's
loop without ROS) with learning off, then on, and :class:`~snn_sac_ros.core.cost.CostMeter` counts every tick:
spikes, synaptic events, neuron updates, and the multiply-accumulates the same layers need as a dense (rate-mode)
ANN, with energy estimates on a Loihi-class chip and on a CPU from published per-event figures (see
:mod:`snn_sac_ros.core.cost`: estimates, not measurements). The shipped checkpoint runs where its size matches;
other sizes run untrained networks calibrated on the arm's observations (their activity is not a trained
policy's, so their figures only show how cost scales with size).
"""

from __future__ import annotations

import argparse

import numpy as np

PHYSICS_DT = 0.001


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arms", nargs="+", default=["planar2", "kuka_iiwa"], help="arm presets (shipped checkpoints)")
    parser.add_argument("--hidden", nargs="+", default=["64x64", "256x256"], metavar="WxW",
                        help="hidden layer widths per size, e.g. 256x256")
    parser.add_argument("--reaches", type=int, default=2)
    parser.add_argument("--reach-seconds", type=float, default=1.0)
    parser.add_argument("--control-hz", type=float, default=500.0, help="ticks per second (one Nengo step each)")
    parser.add_argument("--seed", type=int, default=1)


def _untrained(ckpt: object, hidden: tuple[int, ...], arm: object, seed: int) -> object:
    """A checkpoint of fresh networks of size ``hidden`` for ``arm``, biases calibrated on its observations."""
    from snn_sac_ros.core.agent.checkpoint import Checkpoint
    from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC
    from snn_sac_ros.core.task import ReachTask

    config = SACConfig.from_dict(ckpt.metadata["sac_config"])
    config.hidden = hidden
    contract, rng, task = ckpt.observation_contract, np.random.default_rng(seed), ReachTask()
    obs = np.array([contract.encode(q, rng.uniform(-0.3, 0.3, arm.n_joints) * arm.velocity_limits,
                                    arm.forward_kinematics(q), task.sample_target(arm, rng))
                    for q in (rng.uniform(arm.lower, arm.upper) for _ in range(300))])
    agent = SpikingSAC(contract.size, ckpt.action_contract.size, config, seed=seed)
    agent.calibrate(obs, rng.uniform(-1, 1, (len(obs), ckpt.action_contract.size)))
    return Checkpoint(agent.arrays(), {**ckpt.metadata, "hidden": list(hidden), "sac_config": config.to_dict()})


def run_one(args: argparse.Namespace, arm_name: str, hidden: tuple[int, ...], learning: bool) -> dict:
    """One arm, size and learning setting: the cost per tick (a dict) and whether the weights were trained."""
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint
    from snn_sac_ros.core.agent.online import OnlineAgent
    from snn_sac_ros.core.agent.rollout import ReachPlan, run_reaches
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
    from snn_sac_ros.core.cost import CostMeter
    from snn_sac_ros.core.resources import shipped_checkpoint

    dt = 1.0 / args.control_hz
    substeps = max(1, round(dt / PHYSICS_DT))
    ckpt = load_checkpoint(shipped_checkpoint(arm_name))
    with PyBulletArm(arm_name, physics_dt=dt / substeps, substeps=substeps) as arm:
        trained = tuple(ckpt.metadata["hidden"]) == hidden
        if not trained:
            ckpt = _untrained(ckpt, hidden, arm, args.seed)
        agent = OnlineAgent(ckpt, spiking=True, learning=learning, dt=dt, seed=args.seed, actor_only=not learning)
        meter = CostMeter()
        plan = ReachPlan.random(arm, args.reaches, args.seed, reach_seconds=args.reach_seconds)
        run_reaches(agent, arm, plan, on_tick=lambda _tick: meter.add(agent))
        agent.close()
    return {"arm": arm_name, "hidden": list(hidden), "trained": trained, "learning": learning, "ticks": meter.ticks,
            "cost": meter.summary()}


def run(args: argparse.Namespace) -> dict:
    sizes = [tuple(int(w) for w in h.lower().split("x")) for h in args.hidden]
    rows = [run_one(args, arm, hidden, learning) for arm in args.arms for hidden in sizes for learning in (False, True)]
    print(f"\nbench cost: per tick at {args.control_hz:g} Hz (one simulator step), mean over "
          f"{args.reaches} reaches x {args.reach_seconds:g} s; energies are estimates [nJ] (Loihi: Davies et al. 2018; "
          "CPU: Horowitz 2014)")
    header = (f"{'arm':<10}{'hidden':>9}{'weights':>10}{'learn':>6}{'spikes':>8}{'syn.ev':>9}{'dense MAC':>11}"
              f"{'ev/MAC':>8}{'Loihi':>9}{'+learn':>9}{'CPU ANN':>9}{'+fetch':>9}{'+learn':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r["cost"]["total"]
        events = c["synaptic_events"] + c["input_events"]
        print(f"{r['arm']:<10}{'x'.join(map(str, r['hidden'])):>9}{'trained' if r['trained'] else 'untrained':>10}"
              f"{'on' if r['learning'] else 'off':>6}{c['spikes']:>8.1f}{events:>9.0f}{c['dense_macs']:>11.0f}"
              f"{events / c['dense_macs']:>8.3f}{c['loihi_nj']:>9.1f}{c['loihi_learning_nj']:>9.0f}{c['cpu_nj']:>9.1f}"
              f"{c['cpu_with_fetch_nj']:>9.0f}{c['cpu_learning_nj']:>9.0f}")
    print("spikes: hidden spikes emitted (critics: the spikes their rates would give); syn.ev: synaptic events incl. "
          "the dense input layer; dense MAC: the same layers as a rate-mode ANN; +learn: on-chip synaptic updates / "
          "CPU backward pass and update; +fetch: CPU with every weight read from a 1 MB cache")
    return {"cost": rows}
