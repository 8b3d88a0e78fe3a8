"""``arm_sim``: the PyBullet arm as a torque-controlled ROS 2 robot with a sim clock.

To a controller it looks like a real arm under ros2_control: joint states on ``joint_states``
(sensor_msgs/JointState, stamped with sim time), effort commands on ``effort_controller/commands``
(std_msgs/Float64MultiArray, RELIABLE, ``data[i]`` for ``joints[i]``; remap the topic with
``-r effort_controller/commands:=/other``), plus ``/clock`` and the end-effector pose on ``ee_pose``
(at ``clock_rate`` and ``ee_pose_rate``, 100 Hz by default: each message to another process costs tens to
hundreds of microseconds in Fast DDS, and every ``use_sim_time`` node runs a Python callback per /clock).
The node is a thin adapter: the physics, clamping and gravity compensation live in
:class:`~snn_sac_ros.core.arm.pybullet_arm.PyBulletArm`.

Timing. One *control step* is one publish period (``publish_rate``): the latest valid command is applied
for ``1 / (publish_rate * physics_dt)`` physics steps, then the state is published. A timer on a
SingleThreadedExecutor drives the control steps and paces sim time against the wall clock at
``real_time_factor``: each timer call runs the control steps that sim time owes the wall clock, within a
short wall budget so that commands and services are still served when the node cannot keep up. If it
falls more than ``_MAX_LAG_WALL_S`` behind, it stops trying to catch up (a *slip*, counted in
diagnostics) instead of running a burst. ``real_time_factor: 0.0`` runs as fast as it can. In
``lockstep`` mode the timer does nothing: each command received (valid or not) runs one control step,
and ``~/step`` runs one with the latest command, so a test or a controller sets the pace. While paused
nothing is published. Why a timer and no physics thread: measured, the timer holds a factor of 1.000 with
no slips, and the executor costs about 11 % of the wall time when unpaced; a thread would only fight the
executor for the GIL, while the real cost is publishing (see ``snn-sac-ros bench sim``).

Safety. A command of the wrong length or with NaN/inf values is refused with an error throttled per kind
(once a second) and the arm gets zero torque (plus gravity compensation if on); so does a command older
than ``command_timeout`` seconds of sim time. PyBulletArm clamps every torque to the URDF effort limits.

Sim time never goes backwards: ``~/reset`` puts the arm back at its initial configuration but the clock
keeps counting, so timers on ``use_sim_time`` nodes and stamps stay monotonic.

Services: ``~/reset`` (Trigger), ``~/set_paused`` (SetBool), ``~/step`` (Trigger), ``~/snapshot``
(Trigger; RGB PNG by TinyRenderer to ``snapshot_path``). ``payload_kg`` can be set at run time to change
the end-effector mass. Timing of the physics versus the ROS messaging is published on ``/diagnostics``
and logged at shutdown; ``snn-sac-ros bench sim`` reads it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.adapters.ros.common import (
    CLOCK_PUB_QOS,
    COMMAND_QOS,
    STATE_QOS,
    ThrottledErrors,
    declare,
    finite_list,
    seconds_to_time,
    spin_node,
)
from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm
from snn_sac_ros.core.arm.randomization import load_profile
from snn_sac_ros.core.arm.specs import PRESETS, ArmSpec, resolve_arm

#: Longest wall time one timer call spends stepping before it lets the executor serve commands.
_TICK_BUDGET_S = 0.002
#: Falling further than this (wall seconds' worth of sim time) behind the pace gives up on catching up.
_MAX_LAG_WALL_S = 0.1
#: Timer period bounds [s]: short enough to pace 1 kHz, long enough not to spin the executor for nothing.
_MIN_TIMER_S, _MAX_TIMER_S, _UNPACED_TIMER_S = 5e-4, 0.01, 1e-4
#: Parameters that shape the arm model or the clock: fixed once the node runs.
_READ_ONLY = ("arm", "joints", "ee_link", "physics_dt", "publish_rate", "gui", "seed", "frame_id")


@dataclasses.dataclass
class StepTiming:
    """Wall-time accounting of control steps since ``start``, for diagnostics and the benchmark.

    ``physics`` is time inside PyBullet's stepSimulation, ``arm`` the whole of ``apply_torque`` (physics
    plus gravity compensation and state read-out), ``ros`` building and publishing the messages.
    Everything else in ``wall`` is the executor, the command callbacks and idle time.
    """

    start: float
    sim_start: float
    steps: int = 0
    physics: float = 0.0
    arm: float = 0.0
    ros: float = 0.0
    slips: int = 0

    def summary(self, now: float, sim_now: float) -> dict[str, float]:
        wall = max(now - self.start, 1e-9)
        per_step = 1e6 / max(self.steps, 1)
        return {
            "wall_s": wall, "sim_s": sim_now - self.sim_start, "real_time_factor": (sim_now - self.sim_start) / wall,
            "control_steps": self.steps, "slips": self.slips,
            "pybullet_share": self.physics / wall, "arm_wrapper_share": (self.arm - self.physics) / wall,
            "ros_share": self.ros / wall, "other_share": max(0.0, 1.0 - (self.arm + self.ros) / wall),
            "pybullet_us_per_step": self.physics * per_step, "arm_us_per_step": self.arm * per_step,
            "ros_us_per_step": self.ros * per_step,
        }


class ArmSimNode(Node):
    """The simulated arm; see the module docstring for topics, services and timing."""

    def __init__(self, node_name: str = "arm_sim") -> None:
        super().__init__(node_name)
        self._declare_parameters()
        p = self._params
        self.arm = PyBulletArm(self._spec(p["arm"], p["joints"], p["ee_link"]), physics_dt=p["physics_dt"],
                               substeps=self._substeps(p["physics_dt"], p["publish_rate"]),
                               gravity_compensation=p["gravity_compensation"], gui=p["gui"])
        why = self._check_initial(p["initial_positions"])
        if why:
            raise ValueError(why)
        # randomisation: the env's core code, drawn again at every reset from the seed; joint_states carry the
        # sensors' readings, ee_pose the true end effector
        self.arm.perturb(load_profile(p["randomize"]), seed=p["seed"])
        self.control_dt = self.arm.control_dt
        # Every message to another process costs 50-350 us here (Fast DDS, per reader): /clock and ee_pose go
        # out every few control steps only, joint_states every step.
        self._clock_every = self._every(p["clock_rate"])
        self._pose_every = self._every(p["ee_pose_rate"])
        self._rng = np.random.default_rng(p["seed"])
        self._physics_steps = 0  # since start: sim time = steps * physics_dt, exact and monotonic
        self._command: np.ndarray | None = None
        self._command_time = -math.inf
        self._paused = False
        self._errors = ThrottledErrors(self.get_logger())
        self._stale_events = 0
        self._commands_received = 0
        self._was_stale = False
        self._snapshots = 0
        if p["payload_kg"] > 0:
            self.arm.set_payload(p["payload_kg"])
        self._reset_arm()

        self._joint_state = JointState(name=list(self.arm.joint_names))
        self._pub_state = self.create_publisher(JointState, "joint_states", STATE_QOS)
        self._pub_clock = self.create_publisher(Clock, "/clock", CLOCK_PUB_QOS)
        self._pub_pose = self.create_publisher(PoseStamped, "ee_pose", STATE_QOS)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Float64MultiArray, "effort_controller/commands", self.command_callback,
                                 COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self.reset_callback)
        self.create_service(SetBool, "~/set_paused", self.set_paused_callback)
        self.create_service(Trigger, "~/step", self.step_callback)
        self.create_service(Trigger, "~/snapshot", self.snapshot_callback)
        self.add_on_set_parameters_callback(self.validate_parameters_callback)
        self.add_post_set_parameters_callback(self.apply_parameters_callback)

        self._run_stats = self._new_stats()
        self._window_stats = self._new_stats()
        # The pacing runs on the steady clock: this node is the source of sim time, so its own timers must
        # not wait for /clock even if someone sets use_sim_time on it.
        steady = RosClock(clock_type=ClockType.STEADY_TIME)
        self._timer = self.create_timer(self._timer_period(), self.tick_callback, clock=steady)
        if p["diagnostics_period"] > 0:
            self.create_timer(p["diagnostics_period"], self.diagnostics_callback, clock=steady)
        self._anchor()
        self._publish(self.arm.state(), everything=True)
        mode = "lockstep" if p["lockstep"] else (
            "unpaced" if p["real_time_factor"] == 0 else f"real-time factor {p['real_time_factor']:g}")
        self.get_logger().info(
            f"{self.arm.spec.name}: joints {list(self.arm.joint_names)}, physics {1 / self.arm.physics_dt:g} Hz, "
            f"state {1 / self.control_dt:g} Hz, {mode}, gravity compensation "
            f"{'on' if self.arm.gravity_compensation else 'off'}, joint damping "
            f"{self.arm.joint_damping.round(3).tolist() if self.arm.joint_damping.any() else 'off'} Nm s/rad, "
            f"command timeout {p['command_timeout']:g} s, randomisation "
            f"{self.arm.perturbation.profile.name if self.arm.perturbation else 'off'}")

    # -- parameters ------------------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        d = declare
        self._params = {
            "arm": d(self, "arm", "planar2", f"preset ({', '.join(PRESETS)}) or a URDF file path", read_only=True),
            "joints": d(self, "joints", None, "controlled joints in command order; unset: the arm's joints. "
                        "For a preset, a reordering of its joints", read_only=True, array_of=str),
            "ee_link": d(self, "ee_link", "", "end-effector link of a URDF; empty: the preset's or the last link",
                         read_only=True),
            "physics_dt": d(self, "physics_dt", 0.001, "physics step [s]", low=1e-5, high=0.05, read_only=True),
            "publish_rate": d(self, "publish_rate", 500.0, "joint state rate and command update rate [Hz, sim "
                              "time]; a whole number of physics steps per period", low=1.0, high=10000.0,
                              read_only=True),
            "clock_rate": d(self, "clock_rate", 100.0, "/clock rate [Hz, sim time], rounded to whole control "
                            "steps; 0: every control step", low=0.0, high=10000.0, read_only=True),
            "ee_pose_rate": d(self, "ee_pose_rate", 100.0, "ee_pose rate [Hz, sim time], rounded to whole "
                              "control steps; 0: every control step", low=0.0, high=10000.0, read_only=True),
            "real_time_factor": d(self, "real_time_factor", 1.0, "sim seconds per wall second; 0: as fast as "
                                  "possible", low=0.0, high=1000.0),
            "lockstep": d(self, "lockstep", False, "advance only on a command or a ~/step call (one control "
                          "step each); real_time_factor is then ignored"),
            "initial_positions": d(self, "initial_positions", None, "joint positions [rad] at start and on "
                                   "~/reset, in joints order; unset: the arm's home", array_of=float),
            "reset_noise": d(self, "reset_noise", 0.0, "uniform noise [rad] added to each initial position on "
                             "every reset, drawn from seed", low=0.0, high=1.0),
            "gravity_compensation": d(self, "gravity_compensation", True, "add the model's gravity torque to "
                                      "every command, as a torque-controlled arm's firmware does"),
            "gui": d(self, "gui", False, "open PyBullet's GUI (needs a display)", read_only=True),
            "command_timeout": d(self, "command_timeout", 0.1, "sim seconds after which a command is stale "
                                 "and the arm gets zero torque; 0: never", low=0.0, high=3600.0),
            "seed": d(self, "seed", 0, "seed of the reset noise", low=0, high=2**31 - 1, read_only=True),
            "payload_kg": d(self, "payload_kg", 0.0, "extra mass at the end-effector link [kg]", low=0.0,
                            high=100.0),
            "frame_id": d(self, "frame_id", "base_link", "frame of ee_pose: the arm's base", read_only=True),
            "randomize": d(self, "randomize", "", "randomisation profile (a name under config/randomization or a "
                           "YAML path), drawn at every reset from seed; empty: the nominal arm", read_only=True),
            "snapshot_path": d(self, "snapshot_path", "arm_sim_snapshot.png", "PNG written by ~/snapshot; "
                               "'{n}' is replaced by a counter"),
            "snapshot_width": d(self, "snapshot_width", 640, "snapshot width [px]", low=16, high=4096),
            "snapshot_height": d(self, "snapshot_height", 480, "snapshot height [px]", low=16, high=4096),
            "diagnostics_period": d(self, "diagnostics_period", 1.0, "wall seconds between /diagnostics "
                                    "timing reports; 0: none", low=0.0, high=3600.0, read_only=True),
        }

    @staticmethod
    def _spec(arm: str, joints: Sequence[str] | None, ee_link: str) -> ArmSpec:
        """The arm spec; for a preset, ``joints`` may reorder its joints (home is reordered with them)."""
        if arm not in PRESETS:
            return resolve_arm(arm, list(joints) if joints else None, ee_link or None)
        spec = resolve_arm(arm)
        if ee_link:
            raise ValueError(f"preset {arm!r} fixes its end-effector link; give a URDF path to choose one")
        if not joints:
            return spec
        if sorted(joints) != sorted(spec.joints):
            raise ValueError(f"joints {list(joints)} must be an ordering of preset {arm!r}'s joints "
                             f"{list(spec.joints)}; give a URDF path to control other joints")
        home = dict(zip(spec.joints, spec.home or (0.0,) * len(spec.joints)))
        return dataclasses.replace(spec, joints=tuple(joints), home=tuple(home[j] for j in joints))

    def _every(self, rate: float) -> int:
        """Control steps between two messages at ``rate`` Hz (0: every step)."""
        return 1 if rate <= 0 else max(1, round(1.0 / (rate * self.control_dt)))

    @staticmethod
    def _substeps(physics_dt: float, publish_rate: float) -> int:
        steps = 1.0 / (physics_dt * publish_rate)
        if steps < 1.0 - 1e-9 or abs(steps - round(steps)) > 1e-6 * steps:
            raise ValueError(f"publish_rate {publish_rate:g} Hz must be the physics rate {1 / physics_dt:g} Hz "
                             f"divided by a whole number")
        return round(steps)

    def _check_initial(self, values: Sequence[float] | None) -> str:
        """Why ``values`` cannot be the initial joint configuration ('' when they can)."""
        if values is None:
            return ""
        q = np.asarray(values, dtype=float)
        if q.shape != (self.arm.n_joints,):
            return (f"initial_positions needs {self.arm.n_joints} values (joints {list(self.arm.joint_names)}), "
                    f"got {q.size}")
        if not finite_list(values):
            return "initial_positions has non-finite values"
        outside = [n for n, v, lo, hi in zip(self.arm.joint_names, q, self.arm.lower, self.arm.upper)
                   if not lo - 1e-9 <= v <= hi + 1e-9]
        return f"initial_positions outside the joint limits for {outside}" if outside else ""

    def validate_parameters_callback(self, params: list[Parameter]) -> SetParametersResult:
        """Refuse values the descriptors cannot express; the previous values stay."""
        for param in params:
            why = ""
            if param.name == "initial_positions":
                why = self._check_initial(param.value)
            elif param.name == "snapshot_path":
                folder = Path(str(param.value).replace("{n}", "0")).expanduser().resolve().parent
                why = "" if folder.is_dir() else f"snapshot_path folder {folder} does not exist"
            if why:
                return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    def apply_parameters_callback(self, params: list[Parameter]) -> None:
        """Apply accepted run-time changes to the arm and the pacing."""
        for param in params:
            self._params[param.name] = param.value
            if param.name == "payload_kg":
                self.arm.set_payload(float(param.value))
                self.get_logger().info(f"payload set to {param.value:g} kg")
            elif param.name == "gravity_compensation":
                self.arm.gravity_compensation = bool(param.value)
            elif param.name in ("real_time_factor", "lockstep"):
                self._timer.timer_period_ns = round(self._timer_period() * 1e9)
                self._anchor()
        if any(p.name in ("real_time_factor", "lockstep") for p in params):
            self._window_stats = self._new_stats()

    # -- clock and pacing ---------------------------------------------------------------------------------
    @property
    def sim_time(self) -> float:
        """Seconds of sim time since the node started (not reset by ``~/reset``)."""
        return self._physics_steps * self.arm.physics_dt

    def _new_stats(self) -> StepTiming:
        return StepTiming(start=time.perf_counter(), sim_start=self.sim_time)

    def _timer_period(self) -> float:
        rtf = self._params["real_time_factor"]
        if self._params["lockstep"]:
            return _MAX_TIMER_S
        if rtf == 0:
            return _UNPACED_TIMER_S
        return min(max(self.control_dt / rtf, _MIN_TIMER_S), _MAX_TIMER_S)

    def _anchor(self) -> None:
        """Restart pacing from now: sim time owed is measured from here."""
        self._anchor_wall = time.perf_counter()
        self._anchor_sim = self.sim_time

    def tick_callback(self) -> None:
        """Run the control steps sim time owes the wall clock (paced) or as many as fit the budget."""
        if self._paused or self._params["lockstep"]:
            return
        rtf = self._params["real_time_factor"]
        start = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now - start > _TICK_BUDGET_S:
                break
            if rtf > 0:
                target = self._anchor_sim + (now - self._anchor_wall) * rtf
                if self.sim_time + 0.5 * self.control_dt > target:
                    break
            self._control_step()
        if rtf > 0:
            lag = self._anchor_sim + (time.perf_counter() - self._anchor_wall) * rtf - self.sim_time
            if lag > _MAX_LAG_WALL_S * rtf:
                self._run_stats.slips += 1
                self._window_stats.slips += 1
                self._anchor()

    # -- the control step --------------------------------------------------------------------------------------
    def _torque(self) -> np.ndarray:
        """The latest valid command, or zero when there is none or it is older than the timeout."""
        timeout = self._params["command_timeout"]
        if self._command is None:
            return np.zeros(self.arm.n_joints)
        if timeout > 0 and self.sim_time - self._command_time > timeout:
            if not self._was_stale:
                self._stale_events += 1
                self.get_logger().warning(
                    f"last command is {self.sim_time - self._command_time:.3f} s old (command_timeout "
                    f"{timeout:g} s): applying zero torque until a new one arrives")
                self._was_stale = True
            return np.zeros(self.arm.n_joints)
        return self._command

    def _control_step(self, everything: bool = False) -> None:
        """Apply the current torque for one publish period, then publish the state."""
        torque = self._torque()
        t0 = time.perf_counter()
        physics0, steps0 = self.arm.physics_seconds, self.arm.physics_steps
        state = self.arm.apply_torque(torque)
        self._physics_steps += self.arm.physics_steps - steps0  # a randomised control period may vary
        t1 = time.perf_counter()
        self._publish(state, everything)
        t2 = time.perf_counter()
        physics = self.arm.physics_seconds - physics0
        for stats in (self._run_stats, self._window_stats):
            stats.steps += 1
            stats.physics += physics
            stats.arm += t1 - t0
            stats.ros += t2 - t1

    def _publish(self, state: ArmState, everything: bool = False) -> None:
        """joint_states always; /clock and ee_pose on their own steps, or ``everything`` now."""
        stamp = seconds_to_time(self.sim_time)
        msg = self._joint_state
        msg.header.stamp = stamp
        reading = self.arm.measure(state)
        msg.position = reading.q.tolist()
        msg.velocity = reading.dq.tolist()
        msg.effort = state.effort.tolist()
        self._pub_state.publish(msg)
        step = self._physics_steps // self.arm.substeps
        if everything or step % self._clock_every == 0:
            self._pub_clock.publish(Clock(clock=stamp))
        if not (everything or step % self._pose_every == 0):
            return
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self._params["frame_id"]
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = state.ee_position.tolist()
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = self.arm.ee_orientation().tolist()
        self._pub_pose.publish(pose)

    # -- topics and services -----------------------------------------------------------------------------------
    def command_callback(self, msg: Float64MultiArray) -> None:
        """Take a torque command [Nm, joints order]; refuse a bad one and fall back to zero torque."""
        self._commands_received += 1
        data = np.asarray(msg.data, dtype=float)
        if data.shape != (self.arm.n_joints,):
            self._errors.report("wrong_length", f"command has {data.size} values, expected {self.arm.n_joints} "
                                f"for joints {list(self.arm.joint_names)}: refused, applying zero torque")
            self._command = None
        elif not np.all(np.isfinite(data)):
            self._errors.report("non_finite", f"command has NaN or infinite values {data.tolist()}: refused, "
                                "applying zero torque")
            self._command = None
        else:
            self._command = data
            self._command_time = self.sim_time
            self._was_stale = False
        if self._params["lockstep"] and not self._paused:
            self._control_step()

    def _reset_arm(self) -> None:
        q = self._params["initial_positions"]
        q = self.arm.home.copy() if q is None else np.asarray(q, dtype=float)
        noise = self._params["reset_noise"]
        if noise > 0:
            q = np.clip(q + self._rng.uniform(-noise, noise, q.shape), self.arm.lower, self.arm.upper)
        self.arm.reset(q)
        self._command = None
        self._command_time = -math.inf

    def reset_callback(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Put the arm back at its initial configuration at rest and forget the last command."""
        self._reset_arm()
        self._publish(self.arm.state(), everything=True)
        self._anchor()
        response.success = True
        response.message = f"reset to {np.round(self.arm.state().q, 4).tolist()} at sim time {self.sim_time:.3f} s"
        return response

    def set_paused_callback(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """Pause (sim time stops; ~/step still advances) or resume the simulation."""
        self._paused = bool(request.data)
        self._anchor()
        response.success = True
        response.message = f"{'paused' if self._paused else 'running'} at sim time {self.sim_time:.3f} s"
        return response

    def step_callback(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Run one control step with the latest command; meant for lockstep or paused runs."""
        self._control_step(everything=True)
        self._anchor()
        response.success = True
        response.message = f"sim time {self.sim_time:.6f} s"
        return response

    def snapshot_callback(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Render the arm with TinyRenderer and write an RGB PNG to ``snapshot_path``."""
        from matplotlib import image

        path = Path(self._params["snapshot_path"].replace("{n}", str(self._snapshots))).expanduser()
        try:
            rgb = self.arm.render(self._params["snapshot_width"], self._params["snapshot_height"])
            image.imsave(path, rgb)
        except (OSError, ValueError) as error:
            response.success = False
            response.message = f"snapshot failed: {error}"
            return response
        self._snapshots += 1
        response.success = True
        response.message = str(path.resolve())
        return response

    # -- diagnostics and shutdown ---------------------------------------------------------------------------------
    def timing(self, whole_run: bool = False) -> dict[str, float]:
        """Timing figures of the last diagnostics window (or the whole run) plus command counters."""
        stats = self._run_stats if whole_run else self._window_stats
        figures = stats.summary(time.perf_counter(), self.sim_time)
        figures.update({"sim_time": self.sim_time, "requested_real_time_factor": self._params["real_time_factor"],
                        "lockstep": float(self._params["lockstep"]), "paused": float(self._paused),
                        "commands_received": self._commands_received, "stale_events": self._stale_events,
                        **{f"rejected_{kind}": n for kind, n in self._errors.counts.items()}})
        return figures

    def diagnostics_callback(self) -> None:
        """Publish the timing of the last window on /diagnostics, then start a new window."""
        figures = self.timing()
        self._window_stats = self._new_stats()
        status = DiagnosticStatus(name=f"{self.get_name()}: physics loop", hardware_id=self.arm.spec.name)
        rtf = self._params["real_time_factor"]
        behind = (not self._paused and not self._params["lockstep"] and rtf > 0
                  and figures["real_time_factor"] < 0.9 * rtf)
        status.level = DiagnosticStatus.WARN if behind else DiagnosticStatus.OK
        status.message = (f"{figures['real_time_factor']:.2f}x real time"
                          + (f", below the requested {rtf:g}x" if behind else ""))
        status.values = [KeyValue(key=k, value=f"{v:.6g}") for k, v in figures.items()]
        self._pub_diag.publish(DiagnosticArray(header=self._joint_state.header, status=[status]))

    def close(self) -> None:
        """Log the run's timing summary and release PyBullet."""
        f = self.timing(whole_run=True)
        self.get_logger().info(
            f"ran {f['sim_s']:.2f} s sim in {f['wall_s']:.2f} s wall ({f['real_time_factor']:.2f}x), "
            f"{f['control_steps']} control steps: PyBullet {f['pybullet_share']:.0%}, arm wrapper "
            f"{f['arm_wrapper_share']:.0%}, ROS publishing {f['ros_share']:.0%}, executor and idle "
            f"{f['other_share']:.0%}; {f['slips']} slips, {self._commands_received} commands, "
            f"rejected {self._errors.counts or 'none'}, {self._stale_events} stale")
        self.arm.close()


def main(args: Sequence[str] | None = None) -> None:
    """Console script ``arm_sim``: run the node until Ctrl-C or SIGTERM."""
    sys.exit(spin_node(ArmSimNode, args, name="arm_sim"))


if __name__ == "__main__":
    main()
