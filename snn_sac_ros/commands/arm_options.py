"""The arm and randomisation options ``train`` shares with other commands, and what a checkpoint records of them.

``--arm`` takes a preset or a URDF path; for a URDF, ``--joints`` and ``--ee-link`` choose the controlled joints
and the end effector, and a few spec fields that a URDF does not say (home pose, action scale, damping) can be
set. ``--randomize`` names a randomisation profile (``config/randomization/<name>.yaml`` or a YAML path). The
checkpoint records the arm spec (:func:`~snn_sac_ros.core.arm.specs.spec_record`, so ``eval`` and ``bench
transfer`` rebuild the arm) and the profile (metadata only: the contracts stay the nominal arm's).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from snn_sac_ros.core.arm.specs import PRESETS, ArmSpec, resolve_arm

# URDF-only spec fields: flag -> (ArmSpec field, type, help)
_SPEC_FLAGS: dict[str, tuple[str, type, str]] = {
    "--home": ("home", float, "home joint positions [rad], one per joint (default: zeros)"),
    "--torque-fraction": ("action_torque_fraction", float, "share of each joint's URDF effort limit that "
                          "action 1 maps to (default 1)"),
    "--max-acceleration": ("action_max_acceleration", float, "cap action 1 at this joint acceleration at home "
                           "[rad/s^2] (default 0: no cap); for URDFs whose effort limits are far above need"),
    "--damping-seconds": ("damping_seconds", float, "joint damping of inertia / this [s] applied by the arm "
                          "(default 0: none)"),
    "--episode-seconds": ("episode_seconds", float, "seconds per reach (default 2)"),
}


def add_arm_arguments(parser: argparse.ArgumentParser) -> None:
    """``--joints``, ``--ee-link``, the URDF spec fields and ``--randomize``."""
    group = parser.add_argument_group("arm from a URDF (with --arm PATH.urdf)")
    group.add_argument("--joints", nargs="+", default=None, metavar="JOINT",
                       help="controlled joints in command order (default: every movable joint)")
    group.add_argument("--ee-link", default=None, help="end-effector link (default: the URDF's last link)")
    for flag, (_, kind, text) in _SPEC_FLAGS.items():
        group.add_argument(flag, type=kind, nargs="+" if flag == "--home" else None, default=None, help=text)
    parser.add_argument("--randomize", default="", metavar="PROFILE",
                        help="randomise the arm's dynamics, actuators and sensors per episode by this profile: a "
                        "name under config/randomization (train, eval-*) or a YAML path; default: off")


def arm_spec(args: argparse.Namespace) -> ArmSpec:
    """The spec ``--arm`` and the URDF flags describe; the URDF flags are refused for a preset."""
    given = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _SPEC_FLAGS.items()}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    if args.arm in PRESETS and given:
        raise ValueError(f"preset {args.arm!r} fixes {sorted(given)}; pass a URDF path to choose them")
    spec = resolve_arm(args.arm, args.joints, args.ee_link)
    return dataclasses.replace(spec, **given) if given else spec


def env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make("snn_sac_ros/ArmReach-v0", ...)`` for these options."""
    from snn_sac_ros.core.arm.randomization import load_profile

    return {"arm": arm_spec(args), "randomize": load_profile(args.randomize)}


def checkpoint_record(env: Any) -> dict[str, Any]:
    """What the checkpoint's metadata records of the arm (to rebuild it) and of the randomisation."""
    from snn_sac_ros.core.arm.randomization import profile_record
    from snn_sac_ros.core.arm.specs import spec_record

    base = env.unwrapped
    return {"arm_spec": spec_record(base.arm.spec, base.arm.joint_names, base.arm.ee_link),
            "randomization": profile_record(base.randomization)}
