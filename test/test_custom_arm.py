"""Any URDF end to end: ``train --arm PATH.urdf --joints ... --ee-link ...`` on an arm the package does not ship
(pybullet_data's two-joint robot, loaded by path) gives a checkpoint that ``eval`` rebuilds the arm for and the
controller node runs; another arm, an edited URDF or a missing one is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet_data
import pytest
from geometry_msgs.msg import PointStamped
from ros_helpers import CONTROLLER, NodeProcess, Probe, controller_params, target_msg
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from snn_sac_ros.adapters.ros.common import COMMAND_QOS, STATE_QOS
from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.checkpoint import load_checkpoint, save_checkpoint
from snn_sac_ros.core.arm import PyBulletArm

URDF = str(Path(pybullet_data.getDataPath()) / "TwoJointRobot_wo_fixedJoints.urdf")
JOINTS = ["joint_1", "joint_2"]
EE_LINK = "link_23_cyl"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("custom_arm")
    # its URDF allows 10 kNm per joint: the action is capped at 20 rad/s^2 instead
    assert main(["train", "--arm", URDF, "--joints", *JOINTS, "--ee-link", EE_LINK, "--max-acceleration", "20",
                 "--home", "0.3", "0.8", "--steps", "300", "--learning-starts", "150", "--batch-size", "32",
                 "--hidden", "32", "32", "--seed", "2", "--no-progress", "--out", str(out)]) == 0
    return out / "checkpoint.npz"


def _eval(capsys: pytest.CaptureFixture, checkpoint: Path, *extra: str) -> tuple[int, str]:
    code = main(["eval", "--checkpoint", str(checkpoint), "--episodes", "1", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_checkpoint_records_the_arm_and_eval_rebuilds_it(checkpoint: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    meta = load_checkpoint(checkpoint).metadata
    spec = meta["arm_spec"]
    assert (spec["urdf"], spec["joints"], spec["ee_link"], spec["preset"]) == (URDF, JOINTS, EE_LINK, "")
    assert spec["action_max_acceleration"] == 20.0 and spec["home"] == [0.3, 0.8] and len(spec["urdf_sha256"]) == 64
    assert meta["arm"] == "TwoJointRobot_wo_fixedJoints"
    code, out = _eval(capsys, checkpoint)
    assert code == 0 and "eval TwoJointRobot_wo_fixedJoints" in out, out
    moved = tmp_path / "moved.urdf"  # the same file elsewhere: --arm says where
    moved.write_bytes(Path(URDF).read_bytes())
    assert _eval(capsys, checkpoint, "--arm", str(moved))[0] == 0


def test_another_arm_or_an_edited_or_missing_urdf_is_refused(checkpoint: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    code, out = _eval(capsys, checkpoint, "--arm", "planar2")
    assert code == 2 and "not on the 'planar2' preset" in out
    edited = tmp_path / "edited.urdf"
    edited.write_text(Path(URDF).read_text().replace('effort="10000"', 'effort="5000"'))
    code, out = _eval(capsys, checkpoint, "--arm", str(edited))
    assert code == 2 and "differs from the one the checkpoint was trained on" in out
    ckpt = load_checkpoint(checkpoint)
    gone = tmp_path / "gone.npz"
    save_checkpoint(gone, ckpt.arrays, {**ckpt.metadata, "arm_spec": {**ckpt.metadata["arm_spec"],
                                                                      "urdf": str(tmp_path / "nowhere.urdf")}})
    code, out = _eval(capsys, gone)
    assert code == 2 and "nowhere.urdf is not there" in out and "--arm PATH" in out
    # over ROS the demo's nodes run presets only: refused before any node starts, with what to do instead
    assert main(["bench", "transfer", "--ros", "--checkpoints", str(checkpoint), "--perturb", "eval-delay10ms",
                 "--episodes", "1", "--out", str(tmp_path / "ros")]) == 2
    assert "runs the demo's preset arms" in capsys.readouterr().err
    assert not any((tmp_path / "ros").glob("*/commands.txt"))


def test_the_controller_runs_the_checkpoint_on_the_urdf(checkpoint: Path, tmp_path: Path) -> None:
    """The controller node, given the URDF, joints and ee link, drives the arm with the checkpoint: finite torques
    within the trained action range, answering the joint states and target a robot would send."""
    trained = load_checkpoint(checkpoint)
    scale = np.array(trained.action_contract.torque_scale)
    node = NodeProcess(CONTROLLER, controller_params(
        arm=URDF, joints=JOINTS, ee_link=EE_LINK, checkpoint=str(checkpoint), resume=False,
        save_path=str(tmp_path / "w.npz"), save_period_s=0.0, learning=False, spiking=True, state_timeout=1.0))
    probe = Probe("custom_arm_probe")
    commands: list[np.ndarray] = []
    probe.node.create_subscription(Float64MultiArray, "effort_controller/commands",
                                   lambda m: commands.append(np.array(m.data)), COMMAND_QOS)
    state_pub = probe.node.create_publisher(JointState, "joint_states", STATE_QOS)
    target_pub = probe.node.create_publisher(PointStamped, "target", 10)
    with PyBulletArm(URDF, joints=JOINTS, ee_link=EE_LINK) as arm:
        target = target_msg(arm.forward_kinematics(np.array([0.9, -0.4])))

    def publish() -> None:
        msg = JointState(name=JOINTS, position=[0.3, 0.8], velocity=[0.0, 0.0])
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        state_pub.publish(msg)
        target_pub.publish(target)

    probe.node.create_timer(0.002, publish)
    try:
        def answered() -> bool:
            assert node.process.poll() is None, node.stderr
            return sum(np.any(c != 0) for c in commands) >= 50

        probe.spin_until(answered, 120, "50 non-zero commands from the controller")
        recent = np.array(commands[-50:])
        assert np.all(np.isfinite(recent)) and np.all(np.abs(recent) <= scale + 1e-9), (recent.max(axis=0), scale)
    finally:
        probe.close()
        node.stop_cleanly()
