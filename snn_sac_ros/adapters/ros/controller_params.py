"""The controller's parameters: every one declared with a type, a default, a range and a description.

``config/snn_sac_controller.yaml`` documents each at length; the defaults here are for a physical arm
(nothing starts on its own, nothing learns, every run saves to a file of its own), and the simulated demo
sets what differs. Arrays that may be unset hold ``UNSET_ARRAYS``' sentinel (see ``common.declare``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from snn_sac_ros.adapters.ros.common import declare, is_unset
from snn_sac_ros.core.agent.adaptation import CONTROLLER_CONFIG as CONTROLLER_PES
from snn_sac_ros.core.safety import StopBehaviour, StopMode, check_max_torque, state_timeout_problem

NODE_NAME = "snn_sac_controller"
#: parameters whose value must be one of these
CHOICES: dict[str, tuple[str, ...]] = {"stop_behavior": tuple(m.value for m in StopMode)}


def declare_controller_parameters(node: Node) -> None:
    """Declare every parameter of ``snn_sac_controller`` on ``node``."""
    def d(name: str, default: Any, description: str, **kwargs: Any) -> None:
        declare(node, name, default, description, **kwargs)

    ro = {"read_only": True}
    d("autostart", False, "configure at start-up and activate once joint states arrive (for setups without a "
      "lifecycle manager); false: wait for lifecycle transitions", **ro)
    # the robot
    d("arm", "", "arm preset or URDF path (simulation); empty: the URDF on robot_description_topic, else the "
      "robot_description parameter", **ro)
    d("robot_description", "", "URDF text: the fallback when nothing arrives on robot_description_topic", **ro)
    d("robot_description_topic", "robot_description", "topic robot_state_publisher publishes the URDF on", **ro)
    d("robot_description_timeout", 10.0, "seconds configure waits for the URDF on robot_description_topic "
      "(0: do not read it)", low=0.0, high=600.0, **ro)
    d("joints", None, "controlled joints as joint_states names them, in command order; when set it must equal "
      "the checkpoint's joints after joint_name_map / joint_prefix", array_of=str, **ro)
    d("joint_prefix", "", "prefix of the driver's joint names: joint_states, the URDF and the command controller "
      "name joint j as prefix + j", **ro)
    d("joint_name_map", None, "'checkpoint_name:driver_name' entries, for drivers that name joints otherwise "
      "(wins over joint_prefix)", array_of=str, **ro)
    d("command_controller", "effort_controller", "forward command controller node whose 'joints' parameter must "
      "equal our command order at activation ('': not checked)", **ro)
    d("command_controller_timeout", 2.0, "seconds activation waits for the command controller's parameters "
      "(unreachable: not checked, said in the log)", low=0.0, high=60.0, **ro)
    d("ee_link", "", "end-effector link (default: the arm preset's, or the checkpoint's arm's)", **ro)
    d("base_frame", "base_link", "frame targets are expressed in", **ro)
    # the policy and what it learns
    d("checkpoint", "", "checkpoint .npz to load (default: the shipped one for arm)", **ro)
    d("resume", True, "start from the online weights saved at save_path if learned from checkpoint", **ro)
    d("save_path", "", "where online weights are saved (default: a new file per run under "
      "$ROS_HOME/snn_sac_ros/sim or .../hardware)", **ro)
    d("save_period_s", 60.0, "seconds between periodic saves (0: only on request)", low=0.0, high=86400.0)
    d("control_rate_hz", 500.0, "control ticks per second (steady clock)", low=1.0, high=1000.0, **ro)
    d("tick_on_state", False, "also tick the moment a valid joint state arrives, so the command answers it "
      "without waiting for the timer (latency); the timer then ticks only when no state came for 1.5 periods. "
      "The ticks are held to control_rate_hz (states that come faster, or at once, wait for the next tick): "
      "set the arm's state rate to control_rate_hz", **ro)
    d("control_thread", True, "run the tick in a thread of its own, on absolute deadlines on the steady clock, "
      "taking the joint states itself between ticks (false: an executor timer, and the states in an executor "
      "callback, sharing the executor with every other callback)", **ro)
    d("thread_priority", 0, "SCHED_FIFO priority of the control thread (1-99; 0: normal scheduling); refused "
      "with a logged reason where the OS does not allow it (needs CAP_SYS_NICE)", low=0, high=99, **ro)
    d("cpu_affinity", None, "CPU ids the control thread is pinned to, also outside the mask the node was started "
      "with (taskset -c 0 keeps the rest of the node off core 1; unset: any)", array_of=int, **ro)
    d("lock_memory", False, "mlockall the process at activation, so no page fault stalls a tick; refused with a "
      "logged reason where RLIMIT_MEMLOCK does not allow it", **ro)
    d("nengo_steps_per_tick", 1, "Nengo simulator steps per control tick", low=1, high=20, **ro)
    d("spiking", True, "run the actor as spiking LIF neurons (false: rate neurons)", **ro)
    d("learning", False, "online learning on (also: ~/set_learning); refused off sim time without anchor_tau")
    d("learning_rate", 1e-5, "step size of the online learning rules (per tick)", low=0.0, high=1e-2, **ro)
    d("anchor_tau", 30.0, "time constant [s] of the pull of learning weights back toward the trained "
      "checkpoint's (0: none, only on sim time: online learning may then drift without bound)", low=0.0,
      high=1e6, **ro)
    d("apply_joint_damping", False, "subtract the checkpoint's joint damping times each joint's velocity from "
      "every command, for a robot that does not damp by itself (false in simulation: the arm node damps)", **ro)
    d("damping_learning", True, "with learning on, also adapt each joint's damping gain by perturbation trials "
      "(one per reach): what recovers the reach error after a payload change", **ro)
    d("damping_sigma", 0.3, "perturbation of each damping gain per trial [Nm s/rad]", low=0.0, high=10.0, **ro)
    d("damping_rate", 0.17, "damping gain step per trial pair, in units of damping_sigma", low=0.0, high=1.0,
      **ro)
    d("damping_max_gain", 3.0, "upper bound of each learned damping gain [Nm s/rad]", low=0.0, high=100.0, **ro)
    d("damping_cost_tau", 1.0, "a reach is scored by its last this many seconds of distance to the target "
      "(low-pass filtered; 0: the whole reach)", low=0.0, high=60.0, **ro)
    d("adaptation", False, "add abr_control's adaptive dynamics pathway: a LIF ensemble over the joint state whose "
      "PES-learned decoders add torque for what the robot model does not explain (a payload); it learns while "
      "learning is on, adds what it learned either way, and is saved with the weights", **ro)
    d("adaptation_rate", CONTROLLER_PES.learning_rate, "PES learning rate of the adaptation pathway", low=0.0,
      high=1.0, **ro)
    d("adaptation_neurons", CONTROLLER_PES.neurons, "neurons of the adaptation pathway's ensemble", low=10,
      high=100_000, **ro)
    d("adaptation_max_torque", [float(CONTROLLER_PES.limit)], "bound of the adaptation's torque [Nm], one value for "
      "every joint or one per joint; with max_torque unset the command's clamp is the checkpoint's torque scale "
      "plus this (within the URDF's), so what a payload needs beyond the policy's range can be added; with "
      "max_torque set, max_torque", array_of=float, **ro)
    d("adaptation_sees_torque", CONTROLLER_PES.sees_torque, "the adaptation's ensemble also represents the "
      "policy's torque (what a payload's inertial torque depends on; false: the joint state alone, as abr_control)",
      **ro)
    d("adaptation_sees_velocity", CONTROLLER_PES.sees_velocity, "the adaptation's ensemble also represents the "
      "joint velocities (as abr_control's); false: the joint angles (and the torque), on which a payload's weight "
      "depends", **ro)
    d("adaptation_while_frozen", False, "the adaptation pathway learns while learning is off too (the policy "
      "frozen, the payload learned); false: it learns while learning is on", **ro)
    d("adaptation_seed", 0, "seed of the adaptation ensemble's encoders (a saved pathway needs the same)", low=0,
      high=2**31 - 1, **ro)
    # safety
    d("max_torque", None, "per-joint torque limits [Nm], each > 0, within the URDF's (unset: the checkpoint's "
      "torque scale)", array_of=float)
    d("max_torque_rate", 0.0, "largest change of each joint's command per second, in units of its torque limit "
      "[1/s] (20: the whole range in 50 ms; 0: no limit)", low=0.0, high=1e5)
    d("stop_behavior", StopMode.ZERO.value, "how torque is taken away when joint states are late or invalid or "
      "the policy gives nothing: zero at once; ramp to zero over stop_ramp_s; damping only (-Kd dq) while "
      "states are fresh. The e-stop, deactivation and loop stalls always give zero", choices=CHOICES["stop_behavior"])
    d("stop_ramp_s", 0.1, "seconds the ramp stop takes from the last command to zero", low=0.001, high=10.0)
    d("stop_damping", None, "per-joint gains [Nm s/rad] of the damping stop (unset: the checkpoint's joint "
      "damping)", array_of=float, **ro)
    d("state_timeout", 0.01, "joint states older than this stop the arm [s]; refused under 2.5 measured "
      "joint-state periods", low=0.0005, high=1.0)
    d("stall_timeout", 0.02, "a control loop gap longer than this gives zero torque [s]", low=0.001, high=1.0)
    d("max_stamp_age", 0.1, "joint states stamped further in the past are stale [s] (0: off)", low=0.0, high=10.0)
    d("max_stamp_lead", 0.05, "joint states stamped further in the future are refused [s]", low=0.0, high=10.0)
    d("estop_heartbeat_timeout", 0.0, "silence on estop for longer than this [s] latches the e-stop (0: off)",
      low=0.0, high=60.0, **ro)
    d("shutdown_ack_timeout", 1.0, "seconds shutdown waits for the final zero command to be acknowledged",
      low=0.0, high=10.0, **ro)
    # reporting
    d("success_threshold", 0.02, "reach success radius for diagnostics [m]", low=0.001, high=1.0)
    d("spike_log", "", "at shutdown, write the actor's recent spikes here (.npz; empty: no)", **ro)
    d("tick_trace", "", "at shutdown, write every tick's start, compute time, policy step time, publish time and "
      "the stamp of the joint state it used here (.npz; empty: no); bench realtime reads it", **ro)
    d("diagnostics_period_s", 1.0, "seconds between /diagnostics messages", low=0.05, high=60.0, **ro)
    # recording
    d("record_path", "", "record the run into this MCAP file (rosbag2's storage): joint states received, commands "
      "published, targets, /diagnostics and a record per tick (empty: no recording)", **ro)
    d("record_queue_size", 20000, "records that may wait for the recorder's writer thread; beyond it they are "
      "dropped and counted on /diagnostics (the tick never waits)", low=1, high=10_000_000, **ro)
    d("record_paused", False, "while true the recorder takes nothing and its file stays open (rosbag2's pause); "
      "settable at run time")
    d("record_flush_s", 0.5, "a chunk of the recording goes to disk once its first message is this old [s]: at "
      "most what a crash loses", low=0.01, high=60.0, **ro)


def default_save_path(node_name: str, checkpoint: str, sim_time: bool) -> Path:
    """A file of this run's own: ``$ROS_HOME/snn_sac_ros/<sim|hardware>/<node>-<checkpoint>-<time>-<pid>.npz``.

    Runs never share weights by default, and simulation never shares them with hardware: resuming needs
    an explicit ``save_path``.
    """
    home = Path(os.environ.get("ROS_HOME", Path.home() / ".ros"))
    run = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return home / "snn_sac_ros" / ("sim" if sim_time else "hardware") / f"{node_name}-{Path(checkpoint).stem}-{run}.npz"


def driver_joint_names(joints: tuple[str, ...], prefix: str, name_map: list[str] | None) -> tuple[str, ...]:
    """The checkpoint's joint names as the driver names them: ``name_map`` entries, else ``prefix + name``."""
    mapping: dict[str, str] = {}
    for entry in name_map or []:
        source, sep, target = entry.partition(":")
        if not sep or not source or not target:
            raise ValueError(f"joint_name_map entry {entry!r} is not 'checkpoint_name:driver_name'")
        if source not in joints:
            raise ValueError(f"joint_name_map names {source!r}, which is not a checkpoint joint {list(joints)}")
        mapping[source] = target
    names = tuple(mapping.get(j, prefix + j) for j in joints)
    if len(set(names)) != len(names):
        raise ValueError(f"joint_name_map / joint_prefix give duplicate driver names {list(names)}")
    return names


def learning_refusal(on: bool, anchor_tau: float, sim_time: bool) -> str:
    """Why learning cannot be switched on ('' when it can)."""
    if on and anchor_tau <= 0 and not sim_time:
        return ("learning refused: anchor_tau is 0, so online learning could drift without bound; that is only "
                "allowed on sim time (use_sim_time). Set anchor_tau > 0 to learn on hardware")
    return ""


def choice_refusal(name: str, value: Any) -> str:
    """Why ``value`` is no choice for ``name`` ('' when it is)."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"{name} must be one of {list(CHOICES[name])}, got {value!r}"
    return ""


def relative_rate(rate: float, limits: Any) -> Any:
    """``max_torque_rate`` [1/s] as per-joint rates [Nm/s] for torque limits ``limits`` (0: none)."""
    return 0.0 if rate <= 0 or not math.isfinite(rate) else rate * limits


class ParameterHandling:
    """Run-time parameter changes of the controller node: each checked, then applied, or refused with a reason."""

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Run-time changes: refused with a reason (previous value kept) unless valid and applicable."""
        for param in parameters:
            why = choice_refusal(param.name, param.value)
            if param.name == "max_torque" and array_value_of(param) is not None:
                try:
                    check_max_torque(param.value, self.guard.n_joints if self.guard else len(param.value))
                except ValueError as error:
                    why = str(error)
            elif param.name == "learning":
                why = learning_refusal(bool(param.value), self.get_parameter("anchor_tau").value, self.sim_time)
            elif param.name == "state_timeout" and self.guard is not None:
                why = state_timeout_problem(float(param.value), self.state_period.period())
            elif param.name in ("stop_behavior", "stop_ramp_s") and self.guard is not None and not why:
                why = self._stop_refusal(param)
            if why:
                return SetParametersResult(successful=False, reason=why)
        with self._tick_lock:  # all valid: applied between two ticks
            for param in parameters:
                self._apply_parameter(param)
        return SetParametersResult(successful=True)

    def _apply_parameter(self, param: Parameter) -> None:
        if param.name == "learning":
            self.learning_on = bool(param.value)
            if self.agent is not None:
                self.agent.learning = self.learning_on
            self.get_logger().info(f"online learning {'on' if self.learning_on else 'off'}")
        if param.name == "record_paused":
            self.recording.pause(bool(param.value))
            if self.recording.on:
                self.get_logger().info(f"recording {'paused' if param.value else 'resumed'}")
        if param.name == "max_stamp_age":
            self._stamp_limits = (float(param.value), self._stamp_limits[1])
        elif param.name == "max_stamp_lead":
            self._stamp_limits = (self._stamp_limits[0], float(param.value))
        if self.guard is None:
            return
        if param.name == "max_torque":
            self.guard.set_max_torque(array_value_of(param))
            self._set_rate_limit()
        elif param.name == "max_torque_rate":
            self._set_rate_limit(float(param.value))
        elif param.name in ("state_timeout", "stall_timeout"):
            setattr(self.guard, param.name, float(param.value))
        elif param.name in ("stop_behavior", "stop_ramp_s"):
            self.guard.stop = self._changed_stop(param)
        elif param.name == "save_period_s" and self.guard.active:  # new period from now
            self._start_save_timer(float(param.value))
        elif param.name == "success_threshold":
            self.reach.task = dataclasses.replace(self.reach.task, success_threshold=float(param.value))

    def _changed_stop(self, param: Parameter) -> StopBehaviour:
        values = {"stop_behavior": self.guard.stop.mode.value, "stop_ramp_s": self.guard.stop.ramp_seconds,
                  param.name: param.value}
        return self.stop_behaviour(values["stop_behavior"], values["stop_ramp_s"])

    def _stop_refusal(self, param: Parameter) -> str:
        try:
            self._changed_stop(param)
        except ValueError as error:
            return f"{param.name} = {param.value!r} refused: {error} (set stop_damping at start-up)"
        return ""


def array_value_of(param: Parameter) -> Any:
    """An array parameter's new value, None for the unset sentinel."""
    return None if is_unset(param.value) else param.value
