"""``arm_sim``: the PyBullet arm as a torque-controlled ROS 2 robot with a sim clock.

To a controller it looks like a real arm under ros2_control: joint states on ``joint_states``
(sensor_msgs/JointState, stamped with sim time), effort commands on ``effort_controller/commands``
(std_msgs/Float64MultiArray, RELIABLE, ``data[i]`` for ``joints[i]``; remap the topic with
``-r effort_controller/commands:=/other``), plus ``/clock`` and the end-effector pose on ``ee_pose``
(at ``clock_rate`` and ``ee_pose_rate``, 100 Hz by default: each message to another process costs tens to
hundreds of microseconds in Fast DDS, and every ``use_sim_time`` node runs a Python callback per /clock),
and each reach target heard on ``target`` as a sphere on ``target_marker`` (visualization_msgs/Marker, for
RViz). A publish DDS refuses (a stalled subscriber) is counted and logged, never fatal.
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
(Trigger; RGB PNG by TinyRenderer to ``snapshot_path``; ``snapshot_targets`` has the node take them itself as
chosen targets arrive). ``payload_kg`` can be set at run time to change the end-effector mass. Timing of the
physics versus the ROS messaging is published on ``/diagnostics`` and logged at shutdown; ``snn-sac-ros bench
sim`` reads it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import Marker

from snn_sac_ros.adapters.ros.common import (
    CLOCK_PUB_QOS,
    COMMAND_QOS,
    STATE_QOS,
    SafePublisher,
    ThrottledErrors,
    seconds_to_time,
    spin_node,
)
from snn_sac_ros.adapters.ros.sim_parameters import SimParameters
from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm
from snn_sac_ros.core.arm.randomization import load_profile
from snn_sac_ros.core.control.realtime import take_thread_priority
from snn_sac_ros.core.timing import StepTiming

#: Longest wall time one timer call spends stepping before it lets the executor serve commands.
_TICK_BUDGET_S = 0.002
#: Falling further than this (wall seconds' worth of sim time) behind the pace gives up on catching up.
_MAX_LAG_WALL_S = 0.1
#: Timer period bounds [s]: short enough to pace 1 kHz, long enough not to spin the executor for nothing.
_MIN_TIMER_S, _MAX_TIMER_S, _UNPACED_TIMER_S = 5e-4, 0.01, 1e-4


class ArmSimNode(Node, SimParameters):
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
        self._target_marker: int | None = None
        self._last_target: np.ndarray | None = None
        self._targets_heard = 0  # distinct targets, for snapshot_targets
        if p["payload_kg"] > 0:
            self.arm.set_payload(p["payload_kg"])
        self._reset_arm()

        self._joint_state = JointState(name=list(self.arm.joint_names))
        self._pub_state = SafePublisher(self, JointState, "joint_states", STATE_QOS, self._errors)
        self._pub_clock = SafePublisher(self, Clock, "/clock", CLOCK_PUB_QOS, self._errors)
        self._pub_pose = SafePublisher(self, PoseStamped, "ee_pose", STATE_QOS, self._errors)
        self._pub_diag = SafePublisher(self, DiagnosticArray, "/diagnostics", 10, self._errors)
        self._pub_marker = SafePublisher(self, Marker, "target_marker", 10, self._errors)
        self.create_subscription(Float64MultiArray, "effort_controller/commands", self.command_callback,
                                 COMMAND_QOS)
        self.create_subscription(PointStamped, "target", self.target_callback, 10)
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
        if p["thread_priority"] > 0:
            self._take_priority(p["thread_priority"])

    def _take_priority(self, priority: int) -> None:
        """SCHED_FIFO for this thread: the one that builds the node spins its executor (``arm_sim``'s main
        thread), so its timer steps the arm and publishes under it. A refusal is logged; the arm runs on."""
        refusal, throttling = take_thread_priority(priority)
        if refusal:
            self.get_logger().warning(f"{refusal}; the arm runs with normal scheduling")
            return
        self.get_logger().info(f"thread_priority {priority}: applied")
        if throttling:
            self.get_logger().warning(throttling)

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
    def target_callback(self, msg: PointStamped) -> None:
        """Show a reach target: a sphere on ``target_marker`` (RViz) and in the arm's own rendered snapshots."""
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        if not np.all(np.isfinite(point)):
            self._errors.report("target_non_finite", f"target {point.tolist()} not shown: non-finite")
            return
        if self._target_marker is None:
            self._target_marker = self.arm.add_marker()  # visual only: no mass, no collision
        self.arm.move_marker(self._target_marker, point)
        if self._last_target is None or not np.array_equal(point, self._last_target):
            self._last_target = point
            self._targets_heard += 1
            if self._targets_heard - 1 in (self._params["snapshot_targets"] or ()):
                written, message = self._snapshot()
                if not written:
                    self._errors.report("snapshot", message)
        marker = Marker(ns="reach_target", id=0, type=Marker.SPHERE, action=Marker.ADD)
        marker.header.frame_id = msg.header.frame_id or self._params["frame_id"]
        marker.header.stamp = msg.header.stamp
        marker.pose.position = msg.point
        marker.pose.orientation.w = 1.0
        marker.scale.x = marker.scale.y = marker.scale.z = 0.04  # the 2 cm success radius
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.1, 0.8, 0.1, 0.8
        self._pub_marker.publish(marker)

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
        response.success, response.message = self._snapshot()
        return response

    def _snapshot(self) -> tuple[bool, str]:
        """Write a rendered PNG to ``snapshot_path``: (written, its path or why not)."""
        from matplotlib import image

        path = Path(self._params["snapshot_path"].replace("{n}", str(self._snapshots))).expanduser()
        try:
            rgb = self.arm.render(self._params["snapshot_width"], self._params["snapshot_height"])
            image.imsave(path, rgb)
        except (OSError, ValueError) as error:
            return False, f"snapshot failed: {error}"
        self._snapshots += 1
        return True, str(path.resolve())

    # -- diagnostics and shutdown ---------------------------------------------------------------------------------
    def timing(self, whole_run: bool = False) -> dict[str, float]:
        """Timing figures of the last diagnostics window (or the whole run) plus command counters."""
        stats = self._run_stats if whole_run else self._window_stats
        figures = stats.summary(time.perf_counter(), self.sim_time)
        figures.update({"sim_time": self.sim_time, "requested_real_time_factor": self._params["real_time_factor"],
                        "lockstep": float(self._params["lockstep"]), "paused": float(self._paused),
                        "commands_received": self._commands_received, "stale_events": self._stale_events,
                        "publish_failures": sum(pub.failures for pub in (self._pub_state, self._pub_clock,
                                                                          self._pub_pose, self._pub_diag,
                                                                          self._pub_marker)),
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
