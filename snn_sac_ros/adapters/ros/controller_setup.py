"""What ``snn_sac_controller``'s configure builds, and how its learned weights are saved.

Kept apart from the node's lifecycle and control loop (``controller_node.py``): the checkpoint and the
driver's joint names, the robot model, the resumed weights (said loudly), the Nengo agent, the torque
guard and the one tick, the recording and the cost meter, and every topic, service and timer configure
makes, listed so that cleanup destroys exactly those. Saving runs in a thread beside the loop.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from array import array
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.wait_for_message import wait_for_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from snn_sac_ros.adapters.ros import controller_params as params
from snn_sac_ros.adapters.ros.common import (
    COMMAND_QOS,
    LATEST_STATE_QOS,
    PolledSubscription,
    SafePublisher,
    array_value,
)
from snn_sac_ros.adapters.ros.recording import ControllerRecording, unused_path
from snn_sac_ros.adapters.ros.robot_model import load_arm, robot_description_qos
from snn_sac_ros.core.agent.adaptation import (
    CONTROLLER_CONFIG,
    DECODERS_KEY,
    LAYOUT_KEY,
    PESAdaptation,
    torque_bounds,
)
from snn_sac_ros.core.agent.checkpoint import load_checkpoint, remove_stale_temporaries, save_checkpoint
from snn_sac_ros.core.arm import PRESETS
from snn_sac_ros.core.control.realtime import ControlLoop, TickBudget
from snn_sac_ros.core.control.tick import ReachTick, TickResult
from snn_sac_ros.core.cost import CostMeter
from snn_sac_ros.core.joint_input import JointStateReader
from snn_sac_ros.core.recording.cdr import JointStateDecoder
from snn_sac_ros.core.resources import shipped_checkpoint
from snn_sac_ros.core.safety import JointStatePeriod, StopBehaviour, StopMode, TorqueGuard
from snn_sac_ros.core.task import ReachTask
from snn_sac_ros.core.tick_trace import TickTrace
from snn_sac_ros.core.timing import TickStats

#: the cost meter counts every this many policy ticks: its count takes 25-50 us, a sample of 20 ticks a second at
#: 500 Hz gives the run's mean without adding that to every tick
COST_SAMPLE_EVERY = 25


class ControllerSetup:
    """Configure-time building and saving for :class:`~snn_sac_ros.adapters.ros.controller_node.SnnSacController`."""

    def _reset_runtime_state(self) -> None:
        self.arm: Any = None
        self.agent: Any = None
        self.adaptation: PESAdaptation | None = None
        self.guard: TorqueGuard | None = None
        self.stats: TickStats | None = None
        self.reach: ReachTick | None = None
        self.command_pub = self.diag_pub = None
        self.driver_names: tuple[str, ...] = ()
        self._entities: list[Any] = []
        self._state_sub: Any = None  # joint states: a PolledSubscription (control thread) or the executor's
        self._configure_error = ""
        #: the newest joint state as the subscription left it for the tick, swapped whole: positions,
        #: velocities, its stamp and arrival, and (kind, message) when it was refused
        self._latest: tuple[Any, Any, float, float, tuple[str, str] | None, Any] = (None, None, 0.0, -np.inf, None,
                                                                                   None)
        self._stepped_times = (0.0, -np.inf)  # the stamp and arrival of the state the last step used
        self._read_state: JointStateReader | None = None
        self._stamp_limits = (self._p("max_stamp_age"), self._p("max_stamp_lead"))
        self._tick_lock = threading.Lock()  # the tick, and what changes what it uses (targets, parameters)
        self._loop: ControlLoop | None = None
        self.realtime: dict[str, str] = {}  # real-time settings asked: applied, or refused and why
        self._command_buffer = array("d")
        self._command_values = np.zeros(0)
        self._command_msg = Float64MultiArray()
        self.state_period = JointStatePeriod()
        self.reach_results: deque[float] = deque(maxlen=20)
        self._last_publish = time.monotonic()
        self._publish_lock = threading.Lock()
        self._save_thread: threading.Thread | None = None
        self.save_path: Path | str = ""
        self.last_save = "none yet"
        self._watchdog_stop = threading.Event()
        self._watchdog_thread: threading.Thread | None = None
        self._timer = self._save_timer = self._period_sub = None
        self.watchdog_zeroed = self.stopped_ticks = self._stopped_window = self._ticks_window = 0
        self._trace: TickTrace | None = None
        self._tick_on_state, self._period, self._last_tick_start = False, 1.0, -1.0
        self._state_ticks = TickBudget(self._period)
        self._said_waiting = False
        self.recording = ControllerRecording()
        self.cost = CostMeter()
        self._cost_countdown = 0

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def build(self) -> None:
        """Load everything configure needs and create its topics, services and timers."""
        from snn_sac_ros.core.agent.online import DampingLearning, OnlineAgent, resume_source

        p, log = self._p, self.get_logger()
        arm_name = p("arm")
        checkpoint = p("checkpoint") or (str(shipped_checkpoint(arm_name)) if arm_name in PRESETS else "")
        if not checkpoint:
            raise ValueError("no checkpoint: set checkpoint (arm names no preset with a shipped one)")
        trained = load_checkpoint(checkpoint)
        why = params.learning_refusal(self.learning_on, p("anchor_tau"), self.sim_time)
        if why:
            raise ValueError(why)
        names = trained.observation_contract.joint_names
        self.driver_names = params.driver_joint_names(names, p("joint_prefix"), array_value(self, "joint_name_map"))
        joints = array_value(self, "joints")
        if joints is not None and tuple(joints) != self.driver_names:
            raise ValueError(f"joints {list(joints)} differ from the checkpoint's joints as the driver names them "
                             f"{list(self.driver_names)} (joint_name_map / joint_prefix)")
        urdf_text, source = self._robot_description(arm_name)
        model_joints = None if urdf_text is None and arm_name in PRESETS else list(self.driver_names)
        self.arm, dropped = load_arm(arm_name, urdf_text, model_joints, p("ee_link") or None,
                                     trained.metadata.get("arm"))
        if dropped:
            log.warning(f"robot model: {len(dropped)} mesh(es) not found ({', '.join(sorted(set(dropped))[:3])}...): "
                        "loaded without them (the controller needs no meshes)")
        expected = names if model_joints is None else self.driver_names
        if self.arm.joint_names != tuple(expected):
            raise ValueError(f"robot model joints {list(self.arm.joint_names)} differ from {list(expected)}")
        self.save_path = Path(p("save_path")) if p("save_path") else params.default_save_path(
            self.get_name(), checkpoint, self.sim_time)
        stale = remove_stale_temporaries(self.save_path)  # partial writes of saves a crash interrupted
        if stale:
            log.warning(f"removed {len(stale)} partial save(s) a crash left beside {self.save_path}")
        start, aside = resume_source(self.save_path, checkpoint) if p("resume") else (Path(checkpoint), None)
        if aside is not None:
            log.warning(f"the online weights saved at {self.save_path} were learned from another checkpoint than "
                        f"{checkpoint}: starting from {checkpoint}; the saved weights are kept as {aside}")
        elif start != Path(checkpoint):
            saved = load_checkpoint(start).metadata
            log.warning(f"RESUMING the online weights saved at {start} ({saved.get('online_updates', 0)} online "
                        f"updates, written {time.ctime(start.stat().st_mtime)}): the policy that runs is not the "
                        f"checkpoint's; resume:=false starts from {checkpoint}")
        rate, steps = p("control_rate_hz"), p("nengo_steps_per_tick")
        damping = DampingLearning(sigma=p("damping_sigma"), rate=p("damping_rate"), max_gain=p("damping_max_gain"),
                                  cost_tau=p("damping_cost_tau")) if p("damping_learning") else None
        self.agent = OnlineAgent.from_checkpoint(
            start, spiking=p("spiking"), learning=self.learning_on, dt=1.0 / (rate * steps), steps_per_tick=steps,
            online_lr=p("learning_rate"), anchor_tau=p("anchor_tau"), damping=damping,
            expected_observation=trained.observation_contract, expected_action=trained.action_contract)
        contract = self.agent.action_contract
        if contract.joint_damping and not p("apply_joint_damping"):
            log.info(f"the checkpoint was trained on an arm that damps its joints by {list(contract.joint_damping)} "
                     "Nm s/rad: the arm must do so (apply_joint_damping:=true adds it here instead)")
        gains = array_value(self, "stop_damping")
        self._stop_damping = tuple(gains) if gains is not None else tuple(contract.joint_damping)
        # The policy's range is its torque scale; the adaptation adds what a payload needs beyond it (a tool's
        # weight on a wrist can exceed the wrist's scale several times), so the default clamp leaves it room.
        adaptation_bound = (torque_bounds(array_value(self, "adaptation_max_torque"), self.arm.n_joints)
                            if p("adaptation") else np.zeros(self.arm.n_joints))
        self.guard = TorqueGuard(self.arm.effort_limits, np.array(contract.torque_scale) + adaptation_bound,
                                 state_timeout=p("state_timeout"), stall_timeout=p("stall_timeout"),
                                 stop=self.stop_behaviour(p("stop_behavior"), p("stop_ramp_s")), estop=self.estop)
        max_torque = array_value(self, "max_torque")
        if max_torque is not None:
            self.guard.set_max_torque(np.asarray(max_torque, dtype=float))
        self._set_rate_limit()
        self.stats = TickStats(1.0 / rate)
        self._tick_on_state, self._period = bool(p("tick_on_state")), 1.0 / rate
        self._state_ticks = TickBudget(self._period)
        self._trace = TickTrace() if p("tick_trace") else None
        arm = self.arm
        self._read_state = JointStateReader(self.driver_names, lower=arm.lower, upper=arm.upper,
                                            velocity_limits=arm.velocity_limits, continuous=arm.continuous)
        self._command_buffer = array("d", bytes(8 * self.guard.n_joints))
        self._command_values = np.frombuffer(self._command_buffer, dtype=float)  # a view: written in place

        forward_kinematics = arm.kinematic_chain().position  # compiled: no PyBullet call per tick
        self.adaptation = self._adaptation(rate, adaptation_bound)
        self.reach = ReachTick(self.agent, forward_kinematics, self.arm.velocity_limits, self._period,
                               continuous=self.arm.continuous, apply_damping=p("apply_joint_damping"),
                               task=ReachTask(success_threshold=p("success_threshold")), adaptation=self.adaptation,
                               adaptation_learning=True if p("adaptation_while_frozen") else None)
        self.recording = self._start_recording(start, rate)
        self._create_entities()
        log.info(f"configured: {self.arm.spec.name} from {source}, joints {list(self.driver_names)}, checkpoint "
                 f"{start}, {rate:g} Hz x {steps} Nengo step(s), learning {'on' if self.learning_on else 'off'}, "
                 f"torque limits {np.round(self.guard.limits, 4).tolist()} Nm, saving to {self.save_path}")

    def _adaptation(self, rate: float, bound: np.ndarray) -> PESAdaptation | None:
        """The PES pathway (``adaptation``), on the robot model, continuing from the decoders the weights it
        started from hold (a save of an earlier run), else from zero."""
        p = self._p
        if not p("adaptation"):
            return None
        config = dataclasses.replace(CONTROLLER_CONFIG, neurons=p("adaptation_neurons"),
                                     learning_rate=p("adaptation_rate"), limit=np.minimum(bound, self.guard.limits),
                                     sees_torque=p("adaptation_sees_torque"),
                                     sees_velocity=p("adaptation_sees_velocity"))
        pathway = PESAdaptation(self.arm, 1.0 / rate, config, seed=p("adaptation_seed"))
        saved = self.agent.checkpoint.arrays.get(DECODERS_KEY)
        if saved is not None:
            try:
                pathway.load_decoders(saved, self.agent.checkpoint.arrays.get(LAYOUT_KEY))
                self.get_logger().info("adaptation: continuing from the saved decoders")
            except ValueError as error:
                self.get_logger().warning(f"adaptation: the saved decoders do not fit ({error}): starting from zero")
        return pathway

    def _start_recording(self, checkpoint: Path | str, rate: float) -> ControllerRecording:
        """The run's recording (off when ``record_path`` is empty), under the node's resolved topic names."""
        path = self._p("record_path")
        if not path:
            return ControllerRecording()
        resolve = self.resolve_topic_name
        free = unused_path(Path(path).expanduser())
        if free != Path(path).expanduser():
            self.get_logger().warning(f"record_path {path} exists: recording to {free} instead")
        recording = ControllerRecording(
            free, queue_size=self._p("record_queue_size"), flush_seconds=self._p("record_flush_s"),
            topics={"joint_states": resolve("joint_states"), "commands": resolve("effort_controller/commands"),
                    "target": resolve("target"), "diagnostics": "/diagnostics", "tick": resolve("~/tick")},
            metadata={"node": self.get_fully_qualified_name(), "arm": self.arm.spec.name, "checkpoint": checkpoint,
                      "control_dt": 1.0 / rate, "joint_names": ",".join(self.driver_names),
                      "use_sim_time": self.sim_time})
        recording.pause(self._p("record_paused"))
        self.get_logger().info(f"recording to {recording.path}{' (paused)' if recording.paused else ''}")
        return recording

    def _after_tick(self, result: TickResult | None, decision: Any, state: tuple[Any, Any, float]) -> None:
        """What follows a tick's publish: its record (a queue put) and, on a sample of ticks, its cost."""
        if result is None:
            return
        self.recording.tick(self, result, decision.torque, not decision.zeroed, state)
        self._cost_countdown -= 1
        if self._cost_countdown <= 0:
            self._cost_countdown = COST_SAMPLE_EVERY
            self.cost.add(self.agent)

    def read_robot_description(self, topic: str, timeout: float) -> str | None:
        """The URDF on ``topic`` (transient_local: a running robot_state_publisher's), None after ``timeout``."""
        ok, msg = wait_for_message(String, self, topic, qos_profile=robot_description_qos(), time_to_wait=timeout)
        return msg.data if ok and msg.data else None

    def _robot_description(self, arm_name: str) -> tuple[str | None, str]:
        """The URDF text (None: the ``arm`` parameter names the robot) and where it came from."""
        if arm_name:
            return None, f"arm {arm_name!r}"
        topic = self.resolve_topic_name(self._p("robot_description_topic"))
        timeout = self._p("robot_description_timeout")
        if timeout > 0:
            text = self.read_robot_description(topic, timeout)
            if text:
                return text, f"topic {topic}"
        if self._p("robot_description"):
            self.get_logger().info(f"no URDF on {topic}: using the robot_description parameter")
            return self._p("robot_description"), "the robot_description parameter"
        raise ValueError(f"no robot model: nothing on {topic} within {timeout:g} s (is robot_state_publisher "
                         "running?), and the robot_description and arm parameters are empty")

    def _create_entities(self) -> None:
        self.command_pub = SafePublisher(self, Float64MultiArray, "effort_controller/commands", COMMAND_QOS,
                                         self.errors)
        self.diag_pub = SafePublisher(self, DiagnosticArray, "/diagnostics", 10, self.errors)
        # with a control thread, the thread takes the joint states itself (see PolledSubscription)
        self._state_sub = (PolledSubscription(self, JointState, "joint_states", LATEST_STATE_QOS,
                                              decode=JointStateDecoder())
                           if self._p("control_thread") else
                           self.create_subscription(JointState, "joint_states", self._joint_state_callback,
                                                    LATEST_STATE_QOS))
        self._entities = [
            self.command_pub, self.diag_pub, self._state_sub,
            self.create_subscription(PointStamped, "target", self._target_callback, 10),
            self.create_service(Trigger, "~/save", self._save_callback),
            self.create_timer(self._p("diagnostics_period_s"), self._publish_diagnostics, clock=self._steady),
        ]

    def stop_behaviour(self, mode: str, ramp_seconds: float) -> StopBehaviour:
        """The soft stop for ``stop_behavior`` / ``stop_ramp_s``; ValueError when it cannot be (no damping gains)."""
        return StopBehaviour(StopMode(mode), ramp_seconds, self._stop_damping)

    def _set_rate_limit(self, relative: float | None = None) -> None:
        rate = self._p("max_torque_rate") if relative is None else relative
        self.guard.set_max_torque_rate(params.relative_rate(rate, self.guard.limits))

    def _close_model(self) -> None:
        if self._save_thread is not None:
            self._save_thread.join()
        closed = self.recording.close()
        if closed:
            published = self.command_pub.published if self.command_pub is not None else 0
            self.get_logger().info(f"{closed}; {published} commands published")
        if self.agent is not None:
            self.agent.close()
        if self.adaptation is not None:
            self.adaptation.close()
        if self.arm is not None:
            self.arm.close()

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
            Path(self.save_path).parent.mkdir(parents=True, exist_ok=True)
            arrays, metadata = self.agent.snapshot()
            if self.adaptation is not None:
                arrays[DECODERS_KEY] = self.adaptation.decoders()
                arrays[LAYOUT_KEY] = self.adaptation.layout()
            save_checkpoint(self.save_path, arrays, metadata)
        except OSError as error:
            self.last_save = f"failed ({why}): {error}"
            self.errors.report("save_failed", f"saving weights to {self.save_path} failed ({why}): {error}; "
                               "control goes on")
            return
        self.last_save = f"ok ({why})"
        self.get_logger().info(f"weights saved to {self.save_path} ({why})")

    def _write_spike_log(self) -> None:
        path = self._p("spike_log")
        if not path:
            return
        try:
            np.savez_compressed(path, spikes=self.agent.spike_raster(64), dt=self.agent.dt)
        except OSError as error:
            self.get_logger().error(f"cannot write spike log {path}: {error}")
