"""``snn-sac-ros train --from-bag RUN.mcap [...] [--init CHECKPOINT] [--mix-env N]``: off-policy SAC from recordings.

The recorded transitions (:mod:`snn_sac_ros.core.agent.from_bag`: reward recomputed by the task code) fill the
replay buffer; ``--steps`` SAC updates run on it, the same update as ``train``. ``--init`` (required) is the
checkpoint to start from: its SAC config, weights, target critics and temperature (a fine-tune), and the contracts
that encode the recorded states. ``--mix-env N`` adds N env steps of the current stochastic policy
(nominal arm) spread over the updates. The checkpoint written records every bag it has learned from (``bags``:
path, SHA-256, ticks, transitions), those of its ``--init`` included.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import time
from pathlib import Path

import numpy as np

DEFAULT_UPDATES = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-bag", nargs="+", default=[], metavar="RUN.mcap",
                        help="train from these recordings (MCAP) instead of the env; --steps counts SAC updates "
                        f"(default {DEFAULT_UPDATES})")
    parser.add_argument("--init", default="", metavar="CHECKPOINT",
                        help="with --from-bag: start from this checkpoint (fine-tune)")
    parser.add_argument("--mix-env", type=int, default=0, metavar="N",
                        help="with --from-bag: also take N env steps (nominal arm), spread over the updates")


def _agent(args: argparse.Namespace, ckpt: object) -> tuple[object, dict, str]:
    """The replay agent of the checkpoint ``ckpt`` (learning rates and batch size from the command line), its
    metadata and its arm."""
    from snn_sac_ros.core.agent.sac import SACConfig, SpikingSAC

    config = SACConfig.from_dict(ckpt.metadata["sac_config"])
    config.batch_size, config.actor_lr, config.critic_lr = args.batch_size, args.actor_lr, args.critic_lr
    agent = SpikingSAC(int(ckpt.metadata["obs_dim"]), int(ckpt.metadata["act_dim"]), config, seed=args.seed)
    agent.load_arrays(ckpt.arrays)
    return agent, dict(ckpt.metadata), ckpt.metadata["arm"]


def run(args: argparse.Namespace) -> dict:
    """Fine-tune (or train) from the recordings; writes ``--out``/checkpoint.npz; the result dict."""
    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint, save_checkpoint
    from snn_sac_ros.core.agent.from_bag import bag_transitions
    from snn_sac_ros.core.agent.replay import ReplayBuffer
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm

    if not args.init:
        raise ValueError("--from-bag needs --init CHECKPOINT: the recorded run's contracts and the networks to "
                         "fine-tune come from it")
    init = load_checkpoint(args.init)
    contract, control_hz = init.observation_contract, init.control_hz
    with PyBulletArm(init.metadata["arm"]) as arm:
        found = [bag_transitions(path, arm, contract, control_hz) for path in args.from_bag]
    total = sum(len(t) for t, _ in found)
    if total == 0:
        raise ValueError(f"no transitions in {args.from_bag}: no reach with the policy acting for "
                         f"{1 / control_hz:g} s")
    agent, metadata, arm_name = _agent(args, init)
    updates = args.steps or DEFAULT_UPDATES
    rb = ReplayBuffer(agent.obs_dim, agent.act_dim, total + max(0, args.mix_env), seed=args.seed)
    for t, _ in found:
        for row in zip(t.obs, t.actions, t.rewards[:, 0], t.next_obs, t.dones[:, 0]):
            rb.add(*row)
    env = (gym.make("snn_sac_ros/ArmReach-v0", arm=arm_name, observe_last_action=contract.last_action,
                    control_hz=control_hz)
           if args.mix_env > 0 else None)
    env_every = max(1, updates // args.mix_env) if args.mix_env > 0 else 0
    env_steps, obs, metrics = 0, None, {}
    from tqdm import tqdm

    bar = tqdm(total=updates, desc="train from bag", unit="update", disable=args.no_progress, mininterval=1.0)
    start = time.perf_counter()
    for i in range(updates):
        if env is not None and i % env_every == 0 and env_steps < args.mix_env:
            obs = env.reset(seed=args.seed)[0] if obs is None else obs
            action = agent.act(obs).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            rb.add(obs, action, reward, next_obs, terminated)
            obs = env.reset()[0] if terminated or truncated else next_obs
            env_steps += 1
        metrics = agent.update(*rb.sample(min(args.batch_size, rb.size)))
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - start
    if env is not None:
        env.close()
    bags = [*metadata.get("bags", []), *(info for _, info in found)]
    out = Path(args.out or f"runs/train-from-bag-{Path(args.from_bag[0]).stem}-seed{args.seed}")
    words = ["train", "--from-bag", *args.from_bag, "--init", args.init, "--steps", updates, "--seed", args.seed,
             "--batch-size", args.batch_size, "--actor-lr", args.actor_lr, "--critic-lr", args.critic_lr,
             "--mix-env", args.mix_env, "--out", out]
    command = "snn-sac-ros " + " ".join(shlex.quote(str(w)) for w in words)  # what reproduces this checkpoint
    init_digest = hashlib.sha256(Path(args.init).read_bytes()).hexdigest()
    metadata.pop("format_version", None)
    metadata.update(bags=bags, train_command=command, created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    fine_tuned_from={"path": str(Path(args.init).resolve()), "sha256": init_digest,
                                     "updates": updates, "env_steps": env_steps, "seed": args.seed})
    path = save_checkpoint(out / "checkpoint.npz", agent.arrays(), metadata)
    result = {"checkpoint": str(path), "out_dir": str(out), "updates": updates, "env_steps": env_steps,
              "transitions": total, "bags": [info for _, info in found], "train_wall_s": wall,
              "qf_loss": metrics.get("qf_loss"), "alpha": metrics.get("alpha")}
    print(f"{updates} SAC updates on {total} recorded transitions from {len(found)} bag(s)"
          + (f" and {env_steps} env steps" if env_steps else "") + f" in {wall:.0f} s; checkpoint: {path}")
    return result
