"""The snn_sac_controller node over real DDS: it reaches with the arm node, refuses bad input with zero
torque, its watchdog and e-stop work, saving does not stop the loop, and apply_joint_damping damps.

Timing is counted in control ticks (commands received), not in milliseconds, so a loaded machine
slows the test down without making it fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped, PoseStamped
from ros_helpers import CONTROLLER, NodeProcess, Probe, RobotProbe, controller_params, planar2_target, target_msg
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.adapters.ros.common import COMMAND_QOS, STATE_QOS
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.arm import PyBulletArm
from snn_sac_ros.core.resources import shipped_checkpoint

SIM = "snn_sac_ros.adapters.ros.sim_node"
Q_START = [0.0, 1.2]


class ControllerProbe(RobotProbe):
    """Plays the planar2 robot for one controller (see ``RobotProbe``)."""

    def __init__(self) -> None:
        super().__init__("controller_probe")


@pytest.fixture(scope="module")
def checkpoint() -> str:
    path = shipped_checkpoint("planar2")
    load_checkpoint(path)  # the shipped checkpoint exists and loads
    return str(path)


Running = tuple[NodeProcess, ControllerProbe]


@pytest.fixture(scope="module")
def controller(checkpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    save = tmp_path_factory.mktemp("controller") / "weights.npz"
    node = NodeProcess(CONTROLLER, controller_params(checkpoint=checkpoint, save_path=str(save), resume=False,
                                                     learning=False, save_period_s=0.0))
    probe = ControllerProbe()
    try:
        probe.spin_until(lambda: probe.state_pub.get_subscription_count() > 0 or node.process.poll() is not None,
                         60, "the controller's joint_states subscription")
        assert node.process.poll() is None, node.stderr
        probe.send_target(planar2_target())
        probe.spin_until(lambda: any(np.any(c != 0) for _, c in probe.received), 60, "a non-zero command")
        yield node, probe
    finally:
        probe.close()
        node.stop_cleanly()


def _all_zero(commands: list[np.ndarray]) -> bool:
    return bool(commands) and all(np.all(c == 0.0) for c in commands)


def test_valid_input_gives_torque_within_the_limits(controller: Running) -> None:
    _, probe = controller
    commands = probe.run_mode("valid")
    assert any(np.any(c != 0) for c in commands)
    for c in commands:
        assert c.shape == (2,) and np.all(np.isfinite(c)) and np.all(np.abs(c) <= [3.0, 1.5])


@pytest.mark.parametrize("bad", ["nan", "missing_joint", "stale"])
def test_bad_joint_states_give_zero_torque_then_recover(controller: Running,
                                                        bad: str) -> None:
    node, probe = controller
    assert _all_zero(probe.run_mode(bad)), f"{bad}: non-zero torque from bad input"
    assert any(np.any(c != 0) for c in probe.run_mode("valid")), f"no recovery after {bad}"
    kind = {"nan": "non_finite", "missing_joint": "missing_joint", "stale": "stale_stamp"}[bad]
    assert f"[{kind}]" in node.stderr


def test_bad_input_is_logged_once_per_kind_per_second(controller: Running) -> None:
    node, probe = controller
    before = node.stderr.count("[non_finite]")
    probe.run_mode("nan", ticks=200)  # ~0.4 s of NaN at 500 Hz
    probe.run_mode("valid")
    assert node.stderr.count("[non_finite]") - before <= 2


def test_watchdog_zeroes_within_a_few_ticks_of_the_states_stopping(
        controller: Running) -> None:
    _, probe = controller
    probe.run_mode("valid")
    # the shortest state_timeout the controller accepts: 2.5 of the state periods it measured (2 ms, more
    # when this fake robot is slowed by a loaded machine), a little over
    probe.spin_until(lambda: float(probe.diagnostics.get("joint_state_period_ms", "nan")) > 0, 10, "the period")
    timeout = max(0.005, 2.6e-3 * float(probe.diagnostics["joint_state_period_ms"]))
    assert probe.set_parameter("snn_sac_controller", "state_timeout", timeout).successful
    try:
        probe.run_mode("valid")
        probe.mode = "silent"
        stopped_ns = probe.last_state_ns

        # Ticks are counted by when the controller published them (DDS source stamps), so a probe that is slow
        # to take messages off the wire does not count stale ones as late.
        def after() -> list[np.ndarray]:
            return [c for (_, c), ns in zip(probe.received, probe.published_ns) if ns > stopped_ns]

        probe.spin_until(lambda: len(after()) >= 20 + 500 * timeout, 30, "commands after the states stopped")
        commands = after()
        nonzero = [i for i, c in enumerate(commands) if np.any(c != 0)]
        # state_timeout's ticks at 500 Hz after the last state arrives, plus the tick in flight and the last
        # state's own way through DDS (a tick or two on a loaded machine)
        bound = int(np.ceil(timeout * 500)) + 3
        assert len(nonzero) <= bound, f"{len(nonzero)} non-zero commands after the joint states stopped ({bound})"
        assert _all_zero(commands[(nonzero[-1] + 1) if nonzero else 0:])
        assert any(np.any(c != 0) for c in probe.run_mode("valid"))
    finally:
        assert probe.set_parameter("snn_sac_controller", "state_timeout", 0.05).successful


def test_estop_latches_until_reset_and_reactivation(controller: Running) -> None:
    """A true latches zero torque; false messages (a default Bool, an e-stop node reporting its state) do not
    release it, nor does a reset while the e-stop is still asserted; a reset then a re-activation does."""
    node, probe = controller
    probe.run_mode("valid")
    probe.estop_pub.publish(Bool(data=True))
    assert _all_zero(probe.run_mode("valid", ticks=100)[-40:])
    for _ in range(5):
        probe.estop_pub.publish(Bool(data=False))
        probe.estop_pub.publish(Bool())
    assert _all_zero(probe.run_mode("valid", ticks=100)), "a false message released the e-stop"
    probe.estop_pub.publish(Bool(data=True))
    probe.spin_for(0.2)
    refused = probe.call(Trigger, "/snn_sac_controller/reset_estop", Trigger.Request())
    assert not refused.success and "still asserted" in refused.message
    probe.estop_pub.publish(Bool(data=False))
    probe.spin_for(0.2)
    reset = probe.call(Trigger, "/snn_sac_controller/reset_estop", Trigger.Request())
    assert reset.success, reset.message
    assert _all_zero(probe.run_mode("valid", ticks=100)), "torque resumed without a re-activation"
    assert probe.transition("snn_sac_controller", "deactivate") and probe.transition("snn_sac_controller", "activate")
    assert any(np.any(c != 0) for c in probe.run_mode("valid", ticks=100))
    assert "E-STOP engaged" in node.stderr


def test_save_service_writes_a_loadable_checkpoint_without_stopping_the_loop(
        controller: Running, tmp_path: Path) -> None:
    node, probe = controller
    probe.run_mode("valid")
    probe.spin_until(lambda: "ticks" in probe.diagnostics, 10, "controller diagnostics")
    start = time.monotonic()
    response = probe.call(Trigger, "/snn_sac_controller/save", Trigger.Request())
    assert response.success, response.message
    probe.run_mode("valid", ticks=100)
    save = Path(response.message.removeprefix("saving to "))
    probe.spin_until(save.exists, 10, "the saved file")
    saved = load_checkpoint(save)
    assert saved.metadata["arm"] == "planar2"
    assert saved.arrays["damping/gain"].shape == (2,)  # the adaptive damping is saved with the weights
    assert len(probe.diagnostics["damping_gains"].split(",")) == 2
    published = np.array([ns for (when, _), ns in zip(probe.received, probe.published_ns) if when > start]) * 1e-9
    gaps = np.diff(published)  # by the controller's publish stamps: the probe's own hiccups do not count
    assert gaps.max() < 0.05, f"the loop paused {gaps.max() * 1e3:.0f} ms around the save"
    assert "[save_failed]" not in node.stderr


def test_recording_is_off_by_default(controller: Running) -> None:
    """No record_path: the diagnostics say so and no MCAP file appears where the node could write one."""
    node, probe = controller
    probe.spin_until(lambda: probe.diagnostics.get("cost_ticks_sampled", "0") != "0", 30,
                     "the cost of a sampled tick on /diagnostics")
    assert probe.diagnostics["recording"] == "off" and "recorder_dropped" not in probe.diagnostics
    assert float(probe.diagnostics["cost_spikes"]) > 0  # the cost of a tick is counted with recording off too
    assert not [*Path(os.environ["ROS_HOME"]).rglob("*.mcap"), *Path.cwd().glob("*.mcap")]
    assert "recording to" not in node.stderr


def test_learning_switch_service(controller: Running) -> None:
    _, probe = controller
    assert probe.call(SetBool, "/snn_sac_controller/set_learning", SetBool.Request(data=True)).success
    assert probe.get_parameter("snn_sac_controller", "learning") is True
    assert probe.call(SetBool, "/snn_sac_controller/set_learning", SetBool.Request(data=False)).success
    assert probe.get_parameter("snn_sac_controller", "learning") is False


def test_out_of_range_parameters_are_refused(controller: Running) -> None:
    _, probe = controller
    assert not probe.set_parameter("snn_sac_controller", "state_timeout", 5.0).successful
    assert probe.get_parameter("snn_sac_controller", "state_timeout") == pytest.approx(0.05)
    assert not probe.set_parameter("snn_sac_controller", "max_torque", [1.0]).successful
    assert not probe.set_parameter("snn_sac_controller", "control_rate_hz", 100.0).successful  # read-only


def test_reaches_a_target_with_the_arm_node(checkpoint: str, tmp_path: Path) -> None:
    # a namespace of their own: the module's controller and fake robot still run beside them
    ns = ["-r", "__ns:=/reach"]
    sim = NodeProcess(SIM, {"arm": "planar2", "real_time_factor": 1.0, "initial_positions": Q_START}, ns)
    ctrl = NodeProcess(CONTROLLER, controller_params(checkpoint=checkpoint, save_path=str(tmp_path / "w.npz"),
                                                     resume=False, learning=False, use_sim_time=True), ns)
    probe = Probe("reach_probe")
    poses: list[np.ndarray] = []
    probe.node.create_subscription(PoseStamped, "/reach/ee_pose", lambda m: poses.append(
        np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])), STATE_QOS)
    target_pub = probe.node.create_publisher(PointStamped, "/reach/target", 10)
    target = planar2_target()
    try:
        probe.spin_until(lambda: len(poses) > 0, 60, "ee_pose from the arm node")
        probe.wait_lifecycle("reach/snn_sac_controller", "active")  # a loaded machine builds the model slowly
        start_distance = np.linalg.norm(poses[-1] - target)
        first = len(poses)
        msg = target_msg(target)
        deadline = time.monotonic() + 60
        count = len(poses)
        while len(poses) < count + 400 and time.monotonic() < deadline:  # ~4 s of sim time at 100 Hz
            target_pub.publish(msg)
            probe.spin_for(0.05)
        distances = np.linalg.norm(np.array(poses[first:]) - target, axis=1)
        closest = distances.min()
        # The shipped policy gets within 5 cm of most targets (README); this one is an average reach. Only
        # the closest approach is asked: under heavy load the 4 ms watchdog zeroes many ticks and the
        # undamped planar arm can coast off the target afterwards.
        assert closest < 0.05 < start_distance, (f"start {start_distance:.3f} m, closest {closest:.3f} m\n"
                                                 + "\n".join(ctrl.lines[-6:]))
    finally:
        probe.close()
        assert ctrl.stop() == 0, ctrl.stderr
        assert sim.stop() == 0, sim.stderr


def test_kuka_controller_applies_joint_damping_and_refuses_targets_behind_the_base(tmp_path: Path) -> None:
    """Two kuka_iiwa controllers, alike but for ``apply_joint_damping``, fed the same moving state: their
    commands differ by exactly the checkpoint's joint damping times the joint velocities. A target behind
    the base, where the policy was not trained, is refused."""
    checkpoint = shipped_checkpoint("kuka_iiwa")
    trained = load_checkpoint(checkpoint)
    damping = np.array(trained.action_contract.joint_damping)
    assert damping.size == 7 and np.all(damping > 0)
    q = np.array([0.1, 0.4, 0.0, -1.2, 0.0, 0.8, 0.0])
    dq = np.array([0.3, -0.2, 0.25, 0.15, -0.5, 0.4, -0.6])  # enough for D * dq to stand out (2.3 Nm on joint 1)
    names = ["plain", "damped"]
    nodes = [NodeProcess(CONTROLLER, controller_params(
                 arm="kuka_iiwa", checkpoint=str(checkpoint), resume=False, save_path=str(tmp_path / f"{ns}.npz"),
                 save_period_s=0.0, learning=False, spiking=False, state_timeout=1.0,
                 apply_joint_damping=ns == "damped", max_torque=[300.0] * 7), ["-r", f"__ns:=/{ns}"])
             for ns in names]
    probe = Probe("damping_probe")
    commands: dict[str, list[np.ndarray]] = {ns: [] for ns in names}
    state_pubs, target_pubs = [], []
    for ns in names:
        probe.node.create_subscription(Float64MultiArray, f"/{ns}/effort_controller/commands",
                                       lambda m, ns=ns: commands[ns].append(np.array(m.data)), COMMAND_QOS)
        state_pubs.append(probe.node.create_publisher(JointState, f"/{ns}/joint_states", STATE_QOS))
        target_pubs.append(probe.node.create_publisher(PointStamped, f"/{ns}/target", 10))
    with PyBulletArm("kuka_iiwa") as arm:
        target = target_msg(arm.forward_kinematics(q + 0.3))

    joint_names = list(trained.observation_contract.joint_names)

    def publish() -> None:
        msg = JointState(name=joint_names, position=q.tolist(), velocity=dq.tolist())
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        for state_pub, target_pub in zip(state_pubs, target_pubs, strict=True):
            state_pub.publish(msg)
            target_pub.publish(target)

    probe.node.create_timer(0.002, publish)
    try:
        def settled() -> bool:
            for node in nodes:
                assert node.process.poll() is None, node.stderr
            return all(sum(np.any(c != 0) for c in commands[ns]) >= 300 for ns in names)

        probe.spin_until(settled, 120, "300 non-zero commands from each controller")
        plain, damped = commands["plain"][-1], commands["damped"][-1]
        # Same constant input, deterministic rate actor: both settle to the same action.
        assert np.allclose(commands["plain"][-10], plain, atol=1e-6)
        assert np.allclose(damped - plain, -damping * dq, atol=1e-6), (damped - plain, -damping * dq)
        assert any("apply_joint_damping:=true adds it here" in line for line in nodes[0].lines)
        # kuka_iiwa was trained on targets in front of its base: one behind it is refused, with the reason
        target_pubs[0].publish(target_msg([-0.5, 0.1, 0.5]))
        probe.spin_until(lambda: any("[target_outside_training]" in line for line in nodes[0].lines), 30,
                         "the refusal of a target behind the base")
    finally:
        probe.close()
        for node in nodes:
            node.stop_cleanly()
