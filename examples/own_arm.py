"""Train the spiking SAC on a URDF the package does not ship, then evaluate it spiking.

The arm is pybullet_data's two-joint robot, loaded by path as your own URDF would be; the checkpoint records the
URDF's path and SHA-256, its joints and end effector, so `eval` (and the controller) rebuild the same arm:

    python examples/own_arm.py                 # 20k env steps (~10 min on one core)
    python examples/own_arm.py --steps 600     # a smoke run
"""

import argparse
from pathlib import Path

import pybullet_data

from snn_sac_ros.cli import main

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=20_000)
parser.add_argument("--out", default="runs/own-arm")
args = parser.parse_args()

urdf = Path(pybullet_data.getDataPath()) / "TwoJointRobot_wo_fixedJoints.urdf"
# its URDF allows 10 kNm per joint: cap the action at 20 rad/s^2 of each joint's inertia instead
arm = ["--arm", str(urdf), "--joints", "joint_1", "joint_2", "--ee-link", "link_23_cyl", "--max-acceleration", "20",
       "--home", "0.3", "0.8"]
small = ["--learning-starts", "200", "--batch-size", "32"] if args.steps < 2000 else []
assert main(["train", *arm, "--steps", str(args.steps), *small, "--out", args.out, "--no-progress"]) == 0
assert main(["eval", "--checkpoint", f"{args.out}/checkpoint.npz", "--episodes", "10", "--spiking"]) == 0
