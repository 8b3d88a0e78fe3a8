"""``snn_sac_controller``: the spiking SAC policy as a real-time ROS 2 torque controller.

A managed (lifecycle) node, thin over the core:

- configure: loads the robot model (``robot_description`` URDF text, else the ``arm`` preset or URDF
  path) for forward kinematics and limits, loads the checkpoint and builds the Nengo model;
- activate: starts the control timer (steady clock, ``control_rate_hz``) and the stall watchdog;
- deactivate: commands zero torque once and stops.

Every tick: the freshest valid joint state and target -> :class:`ObservationContract` -> one (or
``nengo_steps_per_tick``) Nengo step of the online agent, whose local learning rules adapt the networks
inside that step -> :class:`ActionContract` -> :class:`TorqueGuard` (clamp, e-stop, watchdog, non-finite)
-> ``effort_controller/commands``. The contracts come from the checkpoint, so the policy that runs is the
policy that was trained. ``autostart`` (default true) configures and activates the node at start-up,
for setups without a lifecycle manager.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.adapters.ros.common import (
    COMMAND_QOS,
    LATEST_STATE_QOS,
    ThrottledErrors,
    declare,
    spin_node,
    time_to_seconds,
)
from snn_sac_ros.core.agent.checkpoint import remove_stale_temporaries, save_checkpoint
from snn_sac_ros.core.arm import PRESETS, ArmSpec, PyBulletArm, resolve_arm
from snn_sac_ros.core.joint_input import JointInputError, order_joint_state
from snn_sac_ros.core.resources import shipped_checkpoint
from snn_sac_ros.core.safety import STALL_REASON, TorqueGuard
from snn_sac_ros.core.task import ReachTask
from snn_sac_ros.core.tick_trace import TickTrace
from snn_sac_ros.core.timing import TickStats

NODE_NAME = "snn_sac_controller"


def default_save_path(arm: str) -> str:
    """Where online-learned weights are saved: ``$ROS_HOME/snn_sac_ros/`` (default ``~/.ros``)."""
    home = Path(os.environ.get("ROS_HOME", Path.home() / ".ros"))
    return str(home / "snn_sac_ros" / f"{NODE_NAME}_{Path(arm).stem}.npz")


def robot_spec(arm: str, urdf_file: str | None, joints: list[str] | None, ee_link: str | None) -> ArmSpec:
    """The robot model: a preset as is, or a URDF (from robot_description or a path) with chosen joints."""
    if urdf_file is None and not joints and not ee_link:
        return resolve_arm(arm)
    preset = resolve_arm(arm) if urdf_file is None and arm in PRESETS else None
    path = urdf_file or (str(preset.urdf_path()) if preset else arm)
    return resolve_arm(path, joints or (preset.joints if preset else None),
                       ee_link or (preset.ee_link if preset else None))


class SnnSacController(LifecycleNode):
    """Lifecycle node running the online spiking SAC agent at a fixed rate; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.errors = ThrottledErrors(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._declare_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._reset_runtime_state()
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            if not self._configured:
                raise ValueError(f"configure failed: {self._configure_error}")
            self.trigger_activate()

    # -- parameters --------------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        p = self.get_parameter
        declare(self, "autostart", True, "configure and activate at start-up (no lifecycle manager needed)",
                read_only=True)
        declare(self, "arm", "planar2", "arm preset or URDF path, used when robot_description is empty",
                read_only=True)
        declare(self, "robot_description", "", "URDF text (as robot_state_publisher holds it); wins over arm",
                read_only=True)
        declare(self, "joints", None, "controlled joints in command order (default: the checkpoint's)",
                array_of=str, read_only=True)
        declare(self, "ee_link", "", "end-effector link (default: the arm preset's)", read_only=True)
        declare(self, "base_frame", "base_link", "frame targets are expressed in", read_only=True)
        declare(self, "checkpoint", "", "checkpoint .npz to load (default: the shipped one for the arm)",
                read_only=True)
        declare(self, "resume", True, "start from the online weights saved at save_path if learned from checkpoint",
                read_only=True)
        declare(self, "save_path", "", "where online weights are saved (default $ROS_HOME/snn_sac_ros/...)",
                read_only=True)
        declare(self, "save_period_s", 60.0, "seconds between periodic saves (0: only on request)",
                low=0.0, high=86400.0)
        declare(self, "control_rate_hz", 500.0, "control ticks per second (steady clock)", low=1.0, high=1000.0,
                read_only=True)
        declare(self, "tick_on_state", False, "also tick the moment a valid joint state arrives, so the command "
                "answers it without waiting for the timer (latency); the timer then ticks only when no state came "
                "for 1.5 periods. Set the arm's state rate to control_rate_hz", read_only=True)
        declare(self, "nengo_steps_per_tick", 1, "Nengo simulator steps per control tick", low=1, high=20,
                read_only=True)
        declare(self, "spiking", True, "run the actor as spiking LIF neurons (false: rate neurons)",
                read_only=True)
        declare(self, "learning", True, "online learning on (also: ~/set_learning service)")
        declare(self, "learning_rate", 1e-5, "step size of the online learning rules (per tick)", low=0.0,
                high=1e-2, read_only=True)
        declare(self, "anchor_tau", 30.0, "time constant [s] of the pull of learning weights back toward the "
                "trained checkpoint's (0: none; online learning may then drift without bound)", low=0.0,
                high=1e6, read_only=True)
        declare(self, "apply_joint_damping", False, "subtract the checkpoint's joint damping times each joint's "
                "velocity from every command, for a robot that does not damp by itself (false in simulation: the "
                "arm node damps)", read_only=True)
        declare(self, "damping_learning", True, "with learning on, also adapt each joint's damping gain by "
                "perturbation trials (one per reach): what recovers the reach error after a payload change",
                read_only=True)
        declare(self, "damping_sigma", 0.3, "perturbation of each damping gain per trial [Nm s/rad]", low=0.0,
                high=10.0, read_only=True)
        declare(self, "damping_rate", 0.17, "damping gain step per trial pair, in units of damping_sigma",
                low=0.0, high=1.0, read_only=True)
        declare(self, "damping_max_gain", 3.0, "upper bound of each learned damping gain [Nm s/rad]", low=0.0,
                high=100.0, read_only=True)
        declare(self, "damping_cost_tau", 1.0, "a reach is scored by its last this many seconds of distance to "
                "the target (low-pass filtered; 0: the whole reach)", low=0.0, high=60.0, read_only=True)
        declare(self, "max_torque", None, "per-joint torque limits tighter than the URDF [Nm] (<=0: URDF)",
                array_of=float)
        declare(self, "state_timeout", 0.004, "joint states older than this give zero torque [s]",
                low=0.0005, high=1.0)
        declare(self, "stall_timeout", 0.02, "a control loop gap longer than this gives zero torque [s]",
                low=0.001, high=1.0)
        declare(self, "max_stamp_age", 0.1, "joint states stamped further in the past are stale [s] (0: off)",
                low=0.0, high=10.0)
        declare(self, "max_stamp_lead", 0.05, "joint states stamped further in the future are refused [s]",
                low=0.0, high=10.0)
        declare(self, "success_threshold", 0.02, "reach success radius for diagnostics [m]", low=0.001, high=1.0)
        declare(self, "spike_log", "", "at shutdown, write the actor's recent spikes here (.npz; empty: no)",
                read_only=True)
        declare(self, "tick_trace", "", "at shutdown, write every tick's start, compute time, publish time and "
                "the stamp of the joint state it used here (.npz; empty: no); bench realtime reads it",
                read_only=True)
        declare(self, "diagnostics_period_s", 1.0, "seconds between /diagnostics messages", low=0.05,
                high=60.0, read_only=True)
        self._learning_on = bool(p("learning").value)

    def _optional(self, name: str) -> Any:
        """An array parameter declared without a default: None while unset."""
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:
            return None

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Run-time changes: refused with a reason (previous value kept) unless valid and applicable."""
        for param in parameters:
            if param.name == "max_torque" and param.value is not None:
                values = np.asarray(param.value, dtype=float)
                if self.guard is not None and values.shape != self.guard.effort_limits.shape:
                    return SetParametersResult(successful=False, reason=(
                        f"max_torque needs {self.guard.effort_limits.size} values, got {values.size}"))
                if not np.all(np.isfinite(values)):
                    return SetParametersResult(successful=False, reason="max_torque must be finite")
        for param in parameters:  # all valid: apply
            if param.name == "max_torque" and self.guard is not None:
                self.guard.set_max_torque(None if param.value is None else np.asarray(param.value, dtype=float))
            elif param.name == "learning":
                self._set_learning(bool(param.value))
            elif param.name in ("state_timeout", "stall_timeout") and self.guard is not None:
                setattr(self.guard, param.name, float(param.value))
            elif param.name == "save_period_s" and self._timer is not None:  # active: new period from now
                self._start_save_timer(float(param.value))
            elif param.name == "success_threshold":
                self.task = dataclasses.replace(self.task, success_threshold=float(param.value))
        return SetParametersResult(successful=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    def _reset_runtime_state(self) -> None:
        self.arm: PyBulletArm | None = None
        self.agent: Any = None
        self.guard: TorqueGuard | None = None
        self.stats: TickStats | None = None
        self.task = ReachTask()
        self._configured = False
        self._configure_error = ""
        self._said_waiting = False
        self._q: np.ndarray | None = None
        self._dq: np.ndarray | None = None
        self._input_error: tuple[str, str] | None = None
        self._target: np.ndarray | None = None
        self._last_action: np.ndarray | None = None
        self._last_distance = np.nan
        self._reach_results: deque[float] = deque(maxlen=20)
        self._last_publish = time.monotonic()
        self._publish_lock = threading.Lock()
        self._save_thread: threading.Thread | None = None
        self.last_save = "none yet"
        self._watchdog_stop = threading.Event()
        self._watchdog_thread: threading.Thread | None = None
        self._timer = self._save_timer = self._diag_timer = None
        self.watchdog_zeroed = 0
        self._trace: TickTrace | None = None
        self._tick_on_state, self._period, self._last_tick_start = False, 1.0, -1.0
        self._state_stamp = float("nan")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as error:  # rclpy would swallow it silently: say what went wrong
            self._configure_error = f"{type(error).__name__}: {error}"
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._close_arm()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from snn_sac_ros.core.agent.online import DampingLearning, OnlineAgent, resume_source

        p = self.get_parameter
        arm_name = p("arm").value
        urdf_text = p("robot_description").value
        joints = self._optional("joints")
        ee_link = p("ee_link").value or None
        urdf_file = None
        if urdf_text:
            with tempfile.NamedTemporaryFile("w", suffix=".urdf", delete=False) as handle:
                handle.write(urdf_text)
            urdf_file = handle.name
        spec = robot_spec(arm_name, urdf_file, joints, ee_link)
        checkpoint = p("checkpoint").value or str(shipped_checkpoint(arm_name))
        self.save_path = p("save_path").value or default_save_path(arm_name)
        stale = remove_stale_temporaries(self.save_path)  # partial writes of saves a crash interrupted
        if stale:
            self.get_logger().warning(f"removed {len(stale)} partial save(s) a crash left beside {self.save_path}")
        source, aside = (resume_source(self.save_path, checkpoint) if p("resume").value
                         else (Path(checkpoint), None))
        if aside is not None:
            self.get_logger().warning(
                f"the online weights saved at {self.save_path} were learned from another checkpoint than "
                f"{checkpoint}: starting from {checkpoint}; the saved weights are kept as {aside}")
        elif source != Path(checkpoint):
            self.get_logger().info(f"resuming from the online weights saved at {source} "
                                   "(resume:=false starts from the checkpoint instead)")
        rate = p("control_rate_hz").value
        steps = p("nengo_steps_per_tick").value
        damping = DampingLearning(sigma=p("damping_sigma").value, rate=p("damping_rate").value,
                                  max_gain=p("damping_max_gain").value, cost_tau=p("damping_cost_tau").value,
                                  ) if p("damping_learning").value else None
        self.agent = OnlineAgent.from_checkpoint(source, spiking=p("spiking").value, learning=self._learning_on,
                                                 dt=1.0 / (rate * steps), steps_per_tick=steps,
                                                 online_lr=p("learning_rate").value,
                                                 anchor_tau=p("anchor_tau").value, damping=damping)
        obs_contract = self.agent.observation_contract
        self._apply_damping = p("apply_joint_damping").value
        if self.agent.action_contract.joint_damping and not self._apply_damping:
            self.get_logger().info(
                f"the checkpoint was trained on an arm that damps its joints by "
                f"{list(self.agent.action_contract.joint_damping)} Nm s/rad: the arm must do so "
                "(apply_joint_damping:=true adds it here instead)")
        self.joint_names = tuple(joints) if joints else obs_contract.joint_names
        if tuple(self.joint_names) != tuple(obs_contract.joint_names):
            raise ValueError(f"joints {list(self.joint_names)} differ from the checkpoint's "
                             f"{list(obs_contract.joint_names)}")
        self.arm = PyBulletArm(spec, joints=None, gravity_compensation=False)
        if self.arm.joint_names != tuple(self.joint_names):
            raise ValueError(f"robot model joints {list(self.arm.joint_names)} differ from the checkpoint's "
                             f"{list(self.joint_names)}")
        self.guard = TorqueGuard(self.arm.effort_limits, state_timeout=p("state_timeout").value,
                                 stall_timeout=p("stall_timeout").value)
        max_torque = self._optional("max_torque")
        if max_torque is not None:
            self.guard.set_max_torque(np.asarray(max_torque, dtype=float))
        self.stats = TickStats(1.0 / rate)
        self._tick_on_state, self._period = bool(p("tick_on_state").value), 1.0 / rate
        if p("tick_trace").value:
            self._trace = TickTrace()
        self.task = ReachTask(success_threshold=p("success_threshold").value)
        self.command_pub = self.create_publisher(Float64MultiArray, "effort_controller/commands", COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._joint_state_callback, LATEST_STATE_QOS)
        self.create_subscription(PointStamped, "target", self._target_callback, 10)
        self.create_subscription(Bool, "estop", self._estop_callback, 10)
        self.create_service(SetBool, "~/set_learning", self._set_learning_callback)
        self.create_service(Trigger, "~/save", self._save_callback)
        self._diag_timer = self.create_timer(p("diagnostics_period_s").value, self._publish_diagnostics,
                                             clock=self._steady)
        self.get_logger().info(
            f"configured: {spec.name} joints {list(self.joint_names)}, checkpoint {source}, "
            f"{rate:g} Hz x {steps} Nengo step(s), learning {'on' if self._learning_on else 'off'}, "
            f"effort limits {np.round(self.guard.limits, 3).tolist()} Nm")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.guard.active = True
        rate = self.get_parameter("control_rate_hz").value
        self._timer = self.create_timer(1.0 / rate, self._tick, clock=self._steady)
        self._start_save_timer(self.get_parameter("save_period_s").value)
        self._watchdog_stop.clear()
        self._watchdog_thread = threading.Thread(target=self._stall_watchdog, name="stall_watchdog", daemon=True)
        self._watchdog_thread.start()
        self.get_logger().info("active: commanding torques")
        return TransitionCallbackReturn.SUCCESS

    def _start_save_timer(self, period: float) -> None:
        """(Re)start the periodic saves, so that a run-time change of save_period_s takes effect at once."""
        if self._save_timer is not None:
            self.destroy_timer(self._save_timer)
            self._save_timer = None
        if period > 0:
            self._save_timer = self.create_timer(period, lambda: self.save("periodic"), clock=self._steady)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_loop()
        self.get_logger().info("inactive: zero torque commanded, control stopped")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_arm()
        self._reset_runtime_state()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _stop_loop(self) -> None:
        if self.guard is not None:
            self.guard.active = False
        for timer in (self._timer, self._save_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._save_timer = None
        self._watchdog_stop.set()
        if self._watchdog_thread is not None:
            self._watchdog_thread.join(timeout=1.0)
            self._watchdog_thread = None
        if self.guard is not None:
            self._publish(np.zeros(len(self.joint_names)))

    def _close_arm(self) -> None:
        if self.arm is not None:
            self.arm.close()
            self.arm = None

    def close(self) -> None:
        """On the way out (Ctrl-C, SIGTERM): zero torque, save what was learned, release PyBullet."""
        if self.guard is not None and self.guard.active:
            self._stop_loop()
        if self.agent is not None:
            if self._learning_on:
                self.save("shutdown", wait=True)
            self._write_spike_log()
        if self._trace is not None:
            try:
                self._trace.save(self.get_parameter("tick_trace").value)
            except OSError as error:
                self.get_logger().error(f"cannot write tick trace: {error}")
        self._close_arm()

    # -- input -----------------------------------------------------------------------------------------
    def _joint_state_callback(self, msg: JointState) -> None:
        if self.arm is None:
            return
        try:
            q, dq = order_joint_state(msg.name, msg.position, msg.velocity, self.joint_names,
                                      lower=self.arm.lower, upper=self.arm.upper,
                                      velocity_limits=self.arm.velocity_limits)
            stamp = time_to_seconds(msg.header.stamp)
            self._check_stamp(stamp)
        except JointInputError as error:
            self._input_error = (error.kind, str(error))
            self.errors.report(error.kind, str(error))
            return
        self._q, self._dq = q, dq
        self._state_stamp = stamp
        self._input_error = None
        self.guard.state_received(time.monotonic())
        if self._tick_on_state and self.guard.active:
            self._tick(from_state=True)

    def _check_stamp(self, stamp: float) -> None:
        max_age = self.get_parameter("max_stamp_age").value
        if max_age <= 0:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if stamp < now - max_age:
            raise JointInputError("stale_stamp", f"joint_states stamped {now - stamp:.3f} s in the past")
        lead = self.get_parameter("max_stamp_lead").value
        if stamp > now + lead:
            raise JointInputError("future_stamp", f"joint_states stamped {stamp - now:.3f} s in the future")

    def _target_callback(self, msg: PointStamped) -> None:
        if self.arm is None:
            return
        point = np.array([msg.point.x, msg.point.y, msg.point.z], dtype=float)
        base = self.get_parameter("base_frame").value
        if msg.header.frame_id not in ("", base):
            self.errors.report("target_frame", f"target in frame {msg.header.frame_id!r} refused: only the "
                               f"base frame {base!r} is accepted (publish targets in {base!r})")
            return
        if not np.all(np.isfinite(point)):
            self.errors.report("target_non_finite", f"target has non-finite coordinates {point.tolist()}")
            return
        contract = self.agent.observation_contract
        axes = contract.axis_indices
        offset = np.linalg.norm(point[axes] - np.asarray(contract.workspace_center)[axes])
        if offset > 1.5 * contract.workspace_reach:
            self.errors.report("target_out_of_reach", f"target {np.round(point, 3).tolist()} is {offset:.2f} m "
                               f"from the workspace centre, beyond the arm's reach")
            return
        azimuth, trained = math.atan2(point[1], point[0]), self.arm.spec.target_max_azimuth
        if abs(azimuth) > trained:
            self.errors.report("target_outside_training", f"target {np.round(point, 3).tolist()} lies "
                               f"{math.degrees(azimuth):.0f} deg from the base's +x axis; the policy was trained "
                               f"within {math.degrees(trained):.0f} deg of it")
            return
        if self._target is not None and not np.array_equal(point, self._target):
            self._reach_results.append(self._last_distance)
            self.agent.end_episode()
        self._target = point

    def _estop_callback(self, msg: Bool) -> None:
        if msg.data and not self.guard.estop_latched:
            self.guard.engage_estop()
            self.get_logger().error("E-STOP engaged: zero torque latched until a false message on estop")
        elif not msg.data and self.guard.estop_latched:
            self.guard.release_estop()
            self.get_logger().warning("e-stop released: torque output resumes")

    # -- control ---------------------------------------------------------------------------------------
    def _tick(self, from_state: bool = False) -> None:
        start = time.monotonic()
        if self._tick_on_state and not from_state and start - self._last_tick_start < 1.5 * self._period:
            return  # ticks follow the joint states; the timer only fills in when they stop
        self._last_tick_start = start
        guard = self.guard
        input_error = self._input_error[1] if self._input_error else None
        if input_error is None and self._target is None:
            input_error = "no target received yet"
        torque = None
        if input_error is None and not guard.estop_latched and not guard.watchdog_reasons(start):
            torque = self._policy_torque()
        decision = guard.filter(torque, start, input_error)
        if not self._publish(decision.torque, computed_at=start):
            # stopped mid-tick (SIGSTOP, swapped out) after the guard's checks: the command was computed from a
            # state that is now old, so zero went out instead
            decision.reasons.append(f"{STALL_REASON} inside a tick ({(time.monotonic() - start) * 1e3:.1f} ms)")
        if decision.zeroed:
            # The arm did not get the policy's action: the next policy tick must not be rewarded (TD-learned)
            # as if it had, across the gap; under load (stale states) this happens on many ticks.
            self._last_action = None
            if guard.active:
                self._report_zero(decision.reasons)
        compute = time.monotonic() - start
        self.stats.record(start, compute)
        if self._trace is not None:
            answered = torque is not None and not decision.zeroed  # a zeroed command answers no state
            self._trace.record(start, compute, self._state_stamp if answered else np.nan, self._last_publish)

    def _report_zero(self, reasons: list[str]) -> None:
        """Waiting for the first joint state or target is normal at start-up: said once, as info."""
        waiting = {"no joint states", "no target received yet"}
        if set(reasons) <= waiting:
            if not self._said_waiting:
                self.get_logger().info(f"waiting ({'; '.join(reasons)}): zero torque until both arrive")
                self._said_waiting = True
            return
        # a stall is reported under its own kind: stale-state zeroing, frequent under load, must not hide it
        stalled = any(r.startswith(STALL_REASON) for r in reasons)
        self.errors.report("loop_stall" if stalled else "zero_torque", "zero torque: " + "; ".join(reasons))

    def _policy_torque(self) -> np.ndarray | None:
        ee = self.arm.forward_kinematics(self._q)
        distance = self.task.distance(ee, self._target)
        self._last_distance = distance
        reward = None if self._last_action is None else self.task.reward(distance, self._last_action)
        obs = self.agent.observation_contract.encode(self._q, self._dq, ee, self._target)
        try:
            action = self.agent.step(obs, reward)
            torque = self.agent.action_contract.to_torque(action, dq=self._dq if self._apply_damping else None)
        except (ValueError, FloatingPointError) as error:  # non-finite in the network or its output
            self.errors.report("policy_output", f"policy output refused: {error}")
            self._last_action = None
            return None
        self._last_action = np.clip(action, -1.0, 1.0)
        return torque

    def _publish(self, torque: np.ndarray, computed_at: float | None = None) -> bool:
        """Publish ``torque``, or zero if it was computed more than ``stall_timeout`` ago; False if zeroed."""
        with self._publish_lock:
            fresh = computed_at is None or time.monotonic() - computed_at <= self.guard.stall_timeout
            values = torque if fresh else np.zeros(len(torque))
            self.command_pub.publish(Float64MultiArray(data=[float(t) for t in values]))
            self._last_publish = time.monotonic()
        return fresh

    def _stall_watchdog(self) -> None:
        """A thread that commands zero torque when the control loop stops publishing (a stall)."""
        timeout = self.guard.stall_timeout
        while not self._watchdog_stop.wait(timeout / 2):
            if time.monotonic() - self._last_publish > timeout and self.guard.active:
                self._publish(np.zeros(len(self.joint_names)))
                self.watchdog_zeroed += 1
                self.errors.report("loop_stall", f"control loop published nothing for {timeout * 1e3:.0f} ms: "
                                   "zero torque commanded by the watchdog")

    # -- learning and saving -----------------------------------------------------------------------------
    def _set_learning(self, on: bool) -> None:
        self._learning_on = on
        if self.agent is not None:
            self.agent.learning = on
        self.get_logger().info(f"online learning {'on' if on else 'off'}")

    def _set_learning_callback(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.set_parameters([Parameter("learning", Parameter.Type.BOOL, bool(request.data))])
        response.success, response.message = True, f"learning {'on' if request.data else 'off'}"
        return response

    def _save_callback(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.save("request")
        return response

    def save(self, why: str, wait: bool = False) -> tuple[bool, str]:
        """Save the current weights atomically to ``save_path`` without delaying the control loop.

        A thread beside the loop copies the weights (array by array: each copy is one NumPy call, so no
        array is torn, though layers may come from ticks a few milliseconds apart) and writes the file.
        Errors (disk full, read-only folder) are reported and shown on /diagnostics, never raised:
        control goes on.
        """
        if self._save_thread is not None and self._save_thread.is_alive():
            if not wait:
                return False, "a save is still being written; try again"
            self._save_thread.join()
        self._save_thread = threading.Thread(target=self._write_save, args=(why,), daemon=True)
        self._save_thread.start()
        if wait:
            self._save_thread.join()
            return self.last_save.startswith("ok"), self.last_save
        return True, f"saving to {self.save_path}"

    def _write_save(self, why: str) -> None:
        try:
            save_checkpoint(self.save_path, *self.agent.snapshot())
        except OSError as error:
            self.last_save = f"failed ({why}): {error}"
            self.errors.report("save_failed", f"saving weights to {self.save_path} failed ({why}): {error}; "
                               "control goes on")
            return
        self.last_save = f"ok ({why})"
        self.get_logger().info(f"weights saved to {self.save_path} ({why})")

    def _write_spike_log(self) -> None:
        path = self.get_parameter("spike_log").value
        if not path:
            return
        try:
            np.savez_compressed(path, spikes=self.agent.spike_raster(64), dt=self.agent.dt)
        except OSError as error:
            self.get_logger().error(f"cannot write spike log {path}: {error}")


    # -- diagnostics ---------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if self.stats is None:
            return
        summary = self.stats.summary()
        now = time.monotonic()
        reasons = self.guard.watchdog_reasons(now) if self.guard.active else []
        recent = [d for d in self._reach_results if np.isfinite(d)]
        success = float(np.mean([d <= self.task.success_threshold for d in recent])) if recent else float("nan")
        values = {
            "control_rate_hz": f"{summary['rate_hz']:.1f}", "tick_p50_ms": f"{summary['tick_p50_ms']:.3f}",
            "tick_p99_ms": f"{summary['tick_p99_ms']:.3f}", "tick_max_ms": f"{summary['tick_max_ms']:.3f}",
            "deadline_misses": str(summary["deadline_misses"]), "ticks": str(summary["ticks"]),
            "watchdog": "; ".join(reasons) or "ok", "stall_watchdog_zeroed": str(self.watchdog_zeroed),
            "estop": "latched" if self.guard.estop_latched else "released",
            "learning": "on" if self._learning_on else "off", "last_save": self.last_save,
            "damping_gains": ",".join(f"{g:.3f}" for g in self.agent.damping_gains()),
            "active": str(self.guard.active).lower(),
            "recent_success_rate": f"{success:.3f}", "reaches": str(len(self._reach_results)),
            "distance_m": f"{self._last_distance:.4f}",
            "input_errors": ",".join(f"{k}={v}" for k, v in sorted(self.errors.counts.items())) or "none",
        }
        level = DiagnosticStatus.OK
        message = "controlling"
        if self.guard.estop_latched:
            level, message = DiagnosticStatus.ERROR, "e-stop latched"
        elif reasons or self._input_error:
            level, message = DiagnosticStatus.WARN, "; ".join(reasons) or self._input_error[1]
        elif not self.guard.active:
            level, message = DiagnosticStatus.WARN, "inactive"
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: control loop", message=message,
                                  hardware_id=",".join(self.joint_names),
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    # The saver and watchdog threads share the GIL with the control loop: let them hold it for at most
    # 0.5 ms at a time (Python's default is 5 ms, two and a half ticks at 500 Hz).
    sys.setswitchinterval(0.0005)
    return spin_node(SnnSacController, args, name=NODE_NAME)


if __name__ == "__main__":
    raise SystemExit(main())
