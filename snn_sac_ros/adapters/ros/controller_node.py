"""``snn_sac_controller``: the spiking SAC policy as a real-time ROS 2 torque controller.

A managed (lifecycle) node; the control logic is the core's (:class:`~snn_sac_ros.core.control.tick.ReachTick`
and :class:`~snn_sac_ros.core.safety.TorqueGuard`), this module does ROS I/O, lifecycle and threads:

- configure: loads the robot model (:mod:`~snn_sac_ros.adapters.ros.robot_model`), the checkpoint and the
  Nengo model, and creates the topics, services and timers; cleanup destroys every one of them;
- activate: refused while the e-stop is latched or when the forward command controller's ``joints``
  differ from our command order; starts the control thread (or, with ``control_thread`` false, an executor
  timer), both on the steady clock, and the stall watchdog; torque flows once the first ticks measured the
  joint-state period and only while ``state_timeout`` covers 2.5 of those periods (else zero torque and an
  error until it is raised);
- deactivate: stops and joins the control thread, then commands zero torque once; shutdown also waits for
  that zero to be acknowledged.

The control thread (:class:`~snn_sac_ros.core.control.realtime.ControlLoop`) takes the joint states itself
between ticks (:class:`~snn_sac_ros.adapters.ros.common.PolledSubscription`), keeps the newest as one tuple,
ticks and publishes; the executor keeps the rest (targets, e-stop, services, diagnostics; the states too with
``control_thread`` false) in the main thread. What both threads change is guarded:
the tick and the callbacks that change what it uses (targets, parameters) hold ``_tick_lock``; a command is
published under ``_publish_lock``, and a tick's command is replaced by zero there when the e-stop latched or
the node deactivated meanwhile, so nothing but zero follows the e-stop's zero or the final one.

The e-stop subscription (volatile and transient_local, so a latched ``true`` published before start is
seen), ``~/reset_estop`` and ``~/set_learning`` live as long as the node, so the latch survives every
transition. ``autostart`` configures and activates at start-up, for setups without a lifecycle manager.
"""

from __future__ import annotations

import gc
import sys
import time
from array import array

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.adapters.ros import controller_params as params
from snn_sac_ros.adapters.ros.common import (
    ThrottledErrors,
    destroy_entities,
    remote_parameter,
    spin_node,
    time_to_seconds,
)
from snn_sac_ros.adapters.ros.controller_diagnostics import diagnostics_message
from snn_sac_ros.adapters.ros.controller_setup import ControllerSetup
from snn_sac_ros.adapters.ros.controller_threads import ControllerThreads
from snn_sac_ros.core.control.realtime import STATE_FALLBACK_PERIODS
from snn_sac_ros.core.control.tick import target_problem, tick_problem
from snn_sac_ros.core.joint_input import JointInputError
from snn_sac_ros.core.safety import STALL_REASON, EStop, state_timeout_problem

NODE_NAME = params.NODE_NAME
#: joint-state intervals measured before torque flows, and the depth of the subscription that measures them
PERIOD_SAMPLES = 20
PERIOD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
#: the e-stop's latched QoS: a transient_local publisher's last "true" reaches a subscriber that starts later
ESTOP_LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SnnSacController(LifecycleNode, ControllerSetup, ControllerThreads, params.ParameterHandling):
    """Lifecycle node running the online spiking SAC agent at a fixed rate; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.errors = ThrottledErrors(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        params.declare_controller_parameters(self)
        self.learning_on = bool(self.get_parameter("learning").value)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.estop = EStop(self.get_parameter("estop_heartbeat_timeout").value)
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)  # volatile ones: the other sub
        self.create_subscription(Bool, "estop", self._estop_callback, ESTOP_LATCHED_QOS, event_callbacks=quiet)
        self.create_subscription(Bool, "estop", self._estop_callback, 10)  # volatile publishers match only this
        self.create_service(Trigger, "~/reset_estop", self._reset_estop_callback)
        self.create_service(SetBool, "~/set_learning", self._set_learning_callback)
        self._reset_runtime_state()
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            if self.agent is None:
                raise ValueError(f"configure failed: {self._configure_error}")
            self.trigger_activate()

    @property
    def sim_time(self) -> bool:
        return bool(self.get_parameter("use_sim_time").value)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.build()
        except Exception as error:  # rclpy would swallow it silently: say what went wrong, undo what was made
            why = f"{type(error).__name__}: {error}"
            self.get_logger().error(f"configure failed: {why}")
            self._teardown()
            self._configure_error = why
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        problem = self._activation_problem()
        if problem:
            self.get_logger().error(f"activation refused: {problem}")
            return TransitionCallbackReturn.FAILURE
        now = time.monotonic()
        # the period of every state (the control subscription keeps only the newest), on a deep subscription
        # of its own while it is measured, in the first ticks
        self.state_period.clear()
        self._period_sub = self.create_subscription(JointState, "joint_states", self._period_callback,
                                                    PERIOD_QOS)
        self.guard.restart()
        self.guard.active = True
        self.estop.start_heartbeat(now)
        # what configure built lives until cleanup: out of the collector's reach, so that no full collection
        # (tens of ms over Nengo's objects) stops a tick
        gc.collect()
        gc.freeze()
        self._start_loop()
        self._start_save_timer(self.get_parameter("save_period_s").value)
        self.get_logger().info("active: commanding torques")
        return TransitionCallbackReturn.SUCCESS

    def _activation_problem(self) -> str:
        if self.estop.latched:
            return f"e-stop latched ({self.estop.reason}): call ~/reset_estop once it is released"
        controller = self.get_parameter("command_controller").value
        if not controller:
            return ""
        reachable, joints = remote_parameter(self, controller, "joints",
                                             self.get_parameter("command_controller_timeout").value)
        if not reachable or not joints:
            self.get_logger().info(f"command controller {controller!r} not reachable or without 'joints': the "
                                   "command order is not checked against it")
            return ""
        if list(joints) != list(self.driver_names):
            return (f"command order mismatch: {controller!r} commands joints {list(joints)}, this controller "
                    f"sends {list(self.driver_names)} (set joints / joint_name_map / joint_prefix, or the "
                    "controller's joints, so both orders agree)")
        return ""

    def _start_save_timer(self, period: float) -> None:
        """(Re)start the periodic saves, so that a run-time change of save_period_s takes effect at once."""
        if self._save_timer is not None:
            self.destroy_timer(self._save_timer)
            self._save_timer = None
        if period > 0:
            self._save_timer = self.create_timer(period, lambda: self.save("periodic"), clock=self._steady)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_loop()
        self.state_period.clear()  # measured again at the next activation
        self.get_logger().info("inactive: zero torque commanded, control stopped")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _stop_loop(self) -> None:
        self._end_period_measurement()
        if self.guard is not None:
            self.guard.active = False
        if self._loop is not None:  # joined before the final zero, so no tick's command follows it
            if not self._loop.stop(timeout=max(1.0, 3 * self._period)):
                self.get_logger().error("the control thread did not end within its timeout: a tick is stuck")
            self._loop = None
        gc.unfreeze()  # what activation froze may be garbage after a cleanup: collectable again
        for timer in (self._timer, self._save_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._save_timer = None
        self._watchdog_stop.set()
        if self._watchdog_thread is not None:
            self._watchdog_thread.join(timeout=1.0)
            self._watchdog_thread = None
        if self.guard is not None:
            self._publish(np.zeros(self.guard.n_joints))

    def close(self) -> None:
        """On the way out (Ctrl-C, SIGTERM, shutdown): zero torque, acknowledged; save what was learned."""
        if self.guard is not None and self.guard.active:
            self._stop_loop()
            if not self.command_pub.wait_for_all_acked(self.get_parameter("shutdown_ack_timeout").value):
                self.get_logger().warning("the final zero command was not acknowledged by every subscriber in "
                                          "shutdown_ack_timeout: the driver's own timeout must stop the arm")
        if self.agent is not None:
            if self.learning_on:
                self.save("shutdown", wait=True)
            self._write_spike_log()
        if self._trace is not None:
            try:
                self._trace.save(self.get_parameter("tick_trace").value)
            except OSError as error:
                self.get_logger().error(f"cannot write tick trace: {error}")
        self._teardown()

    # -- input -------------------------------------------------------------------------------------------
    # The EventsExecutor may still run a callback that was queued before its subscription or timer
    # was destroyed (cleanup, the end of the period measurement): such a callback returns at once.
    def _joint_state_callback(self, msg: JointState) -> None:
        if self._handle_joint_state(msg) and self._tick_on_state:
            self._tick(from_state=True)

    def _handle_joint_state(self, msg: JointState) -> bool:
        """Read, check and keep ``msg`` as the newest state; True when it is a valid state while active."""
        if self.agent is None:  # destroyed meanwhile: see the note above
            return False
        self.recording.joint_state(msg)
        try:
            q, dq = self._read_state(msg.name, msg.position, msg.velocity)
            effort = self._read_state.effort(msg.effort) if self.adaptation is not None else None
            stamp = time_to_seconds(msg.header.stamp)
            self._check_stamp(stamp)
        except JointInputError as error:
            self.errors.report(error.kind, str(error))
            q, dq, stamp, arrival, _, effort = self._latest
            self._latest = (q, dq, stamp, arrival, (error.kind, str(error)), effort)  # one swap: all or none
            return False
        now = time.monotonic()
        self._latest = (q, dq, stamp, now, None, effort)
        self.guard.state_received(now)
        return self.guard.active

    @property
    def input_error(self) -> tuple[str, str] | None:
        """``(kind, message)`` of the newest joint state when it was refused, else None."""
        return self._latest[4]

    def _period_callback(self, msg: JointState) -> None:
        if self._period_sub is None:  # destroyed meanwhile: see the note above
            return
        if self.state_period.fixed is not None:  # measured (by a tick): this deep subscription is done
            self._end_period_measurement()
        elif set(self.driver_names) <= set(msg.name):
            self.state_period.arrived(time_to_seconds(msg.header.stamp), time.monotonic())

    def _end_period_measurement(self) -> None:
        if self._period_sub is not None:
            self.destroy_subscription(self._period_sub)
            self._period_sub = None

    def _check_stamp(self, stamp: float) -> None:
        max_age, lead = self._stamp_limits
        if max_age <= 0:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if stamp < now - max_age:
            raise JointInputError("stale_stamp", f"joint_states stamped {now - stamp:.3f} s in the past")
        if stamp > now + lead:
            raise JointInputError("future_stamp", f"joint_states stamped {stamp - now:.3f} s in the future")

    def _target_callback(self, msg: PointStamped) -> None:
        if self.agent is None:  # destroyed meanwhile: see the note above
            return
        self.recording.target(msg)
        point = np.array([msg.point.x, msg.point.y, msg.point.z], dtype=float)
        base = self.get_parameter("base_frame").value
        if msg.header.frame_id not in ("", base):
            self.errors.report("target_frame", f"target in frame {msg.header.frame_id!r} refused: only the "
                               f"base frame {base!r} is accepted (publish targets in {base!r})")
            return
        problem = target_problem(point, self.agent.observation_contract, self.arm.spec.target_max_azimuth)
        if problem:
            self.errors.report(*problem)
            return
        with self._tick_lock:
            ended = self.reach.set_target(point)
        if ended is not None:
            self.reach_results.append(ended)

    def _estop_callback(self, msg: Bool) -> None:
        if self.estop.message(msg.data, time.monotonic()):
            self.get_logger().error("E-STOP engaged: zero torque, latched until ~/reset_estop and re-activation")
            if self.guard is not None and self.guard.active:
                self._publish(np.zeros(self.guard.n_joints))
        elif not msg.data and self.estop.latched:
            self.errors.report("estop_false_ignored", "estop false received: the latch stays until ~/reset_estop "
                               "and re-activation", level="warning")

    def _reset_estop_callback(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.estop.reset(time.monotonic())
        if response.success:
            self.get_logger().warning(response.message)
        else:
            self.get_logger().error(f"e-stop reset refused: {response.message}")
        return response

    def gate_problem(self) -> str:
        """Why torque may not flow although active: the joint-state period is not measured yet (it is, in
        the first ticks, before the policy runs), or state_timeout does not cover 2.5 of those periods."""
        period = self.state_period
        if period.fixed is None:
            if period.samples < PERIOD_SAMPLES or not self.guard.active:
                return f"measuring the joint-state period ({period.samples} of {PERIOD_SAMPLES} states)"
            period.fix()  # the measuring subscription ends at its next state, in the executor's thread
        return state_timeout_problem(self.guard.state_timeout, period.fixed)

    # -- control -----------------------------------------------------------------------------------------
    def _tick(self, from_state: bool = False) -> None:
        start = time.monotonic()
        if self._tick_on_state and self._loop is None:  # ticks follow the joint states, held to the rate;
            if from_state and not self._state_ticks.take(start):  # the timer only fills in when they stop
                return
            if not from_state:
                if start - self._last_tick_start < STATE_FALLBACK_PERIODS * self._period:
                    return
                self._state_ticks.take(start, force=True)
        self._last_tick_start = start
        with self._tick_lock:
            self._tick_locked(start)

    def _tick_locked(self, start: float) -> None:
        self.recording.hold()
        guard = self.guard
        if self.estop.check_heartbeat(start):
            self.get_logger().error(f"E-STOP latched: {self.estop.reason}")
        q, dq, stamp, arrival, input_error, effort = self._latest  # the newest state, read once
        if input_error is not None:
            self.reach.forget_state()  # the sequence broke: the next valid state is not learned from
        gate = self.gate_problem()
        if gate and not gate.startswith("measuring"):
            self.errors.report("state_timeout_too_short", f"{gate}: zero torque until it is raised")
        problem = tick_problem(q is not None, input_error, gate, self.reach.target is not None)
        torque = result = None
        policy_time = np.nan
        if problem is None and guard.active and not guard.estop_latched and not guard.watchdog_reasons(start):
            policy_start = time.monotonic()
            result = self.reach.step(q, dq, *self._since_stepped(stamp, arrival), effort=effort, finish=False)
            policy_time = time.monotonic() - policy_start
            torque = result.torque
            if result.problem:
                self.errors.report("policy_output", result.problem)
        decision = guard.filter(torque, start, problem, dq=dq)
        if not self._publish(decision.torque, computed_at=start):
            # stopped mid-tick (SIGSTOP, swapped out) after the guard's checks: the command was computed from a
            # state that is now old, so zero went out instead
            guard.zero_sent()
            decision.reasons.append(f"{STALL_REASON} inside a tick ({(time.monotonic() - start) * 1e3:.1f} ms)")
        learning_problem = self.reach.finish()  # the agent's learning, once its command is out
        if learning_problem:
            self.errors.report("policy_output", learning_problem)
        self._after_tick(result, decision, (q, dq, stamp))
        self._ticks_window += 1
        if decision.zeroed:
            self.reach.command_dropped()  # the arm did not get the policy's action: no reward for it
            if guard.active:
                self._report_stop(decision.reasons)
        compute = time.monotonic() - start
        self.stats.record(start, compute)
        loop = self._loop  # (read once: stopping the loop clears it from another thread)
        self.recording.pace((loop.due if loop is not None else start) + self._period)
        if self._trace is not None:
            answered = torque is not None and not decision.zeroed  # a stopped command answers no state
            self._trace.record(start, compute, stamp if answered else np.nan, self._last_publish, policy_time,
                               recorded=self.recording.live)

    def _since_stepped(self, stamp: float, arrival: float) -> tuple[float, bool]:
        """Seconds from the state the last step used to the newest, stamped ``stamp`` and arrived at ``arrival``
        (by stamps, else arrivals), and whether the newest is a new one: what the tick needs to tell a jump from
        a move."""
        last_stamp, last_arrival = self._stepped_times
        self._stepped_times = (stamp, arrival)
        elapsed = stamp - last_stamp if stamp > last_stamp > 0 else arrival - last_arrival
        return elapsed, (stamp, arrival) != (last_stamp, last_arrival)

    def _report_stop(self, reasons: list[str]) -> None:
        """Waiting for the first joint states or target is normal at start-up: said once, as info. Other
        stops are counted and reported as a warning at most once a second, with their share of the ticks."""
        self.stopped_ticks += 1
        self._stopped_window += 1
        if all(r in ("no joint states", "no target received yet") or r.startswith("measuring") for r in reasons):
            if not self._said_waiting:
                self.get_logger().info(f"waiting ({'; '.join(reasons)}): zero torque until both arrive")
                self._said_waiting = True
            return
        stalled = any(r.startswith(STALL_REASON) for r in reasons)  # under its own kind: never hidden by stale states

        def message() -> str:
            share = self._stopped_window / max(self._ticks_window, 1)
            return (f"{self._stopped_window} of {self._ticks_window} ticks ({share:.1%}) stopped since the last "
                    f"report; now: {'; '.join(reasons)}")

        if self.errors.report("loop_stall" if stalled else "zero_torque", message, level="warning"):
            self._stopped_window = self._ticks_window = 0

    def _publish(self, torque: np.ndarray, computed_at: float | None = None) -> bool:
        """Publish ``torque``, or zero if it was computed more than ``stall_timeout`` ago; False if zeroed.

        A tick's command (``computed_at`` given) is zero too when the e-stop latched or the node deactivated
        after the tick's guard looked: under the lock their own zero is published with, so it is never
        followed by anything but zero. One message and its buffer are reused: no allocation per command.
        """
        with self._publish_lock:
            fresh = computed_at is None or time.monotonic() - computed_at <= self.guard.stall_timeout
            stopped = computed_at is not None and (self.estop.latched or not self.guard.active)
            values = self._command_values
            if fresh and not stopped:
                values[:] = torque
            else:
                values[:] = 0.0
            self._command_msg.data = self._command_buffer
            published = self.command_pub.publish(self._command_msg)
            if self.recording.on:  # the message is reused: the recorder, which encodes later, gets a copy
                self.recording.command(Float64MultiArray(data=array("d", self._command_buffer)), published)
            self._last_publish = time.monotonic()
        return fresh

    # -- learning and saving -----------------------------------------------------------------------------
    def _set_learning_callback(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        (result,) = self.set_parameters([Parameter("learning", Parameter.Type.BOOL, bool(request.data))])
        response.success = result.successful
        response.message = f"learning {'on' if request.data else 'off'}" if result.successful else result.reason
        return response

    def _save_callback(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.agent is None:  # destroyed meanwhile: see the note above _joint_state_callback
            response.success, response.message = False, "not configured"
            return response
        response.success, response.message = self.save("request")
        return response

    def _publish_diagnostics(self) -> None:
        if self.agent is not None:  # destroyed meanwhile: see the note above
            self.diag_pub.publish(self.recording.diagnostics(diagnostics_message(self)))

    def _teardown(self) -> None:
        """Destroy what configure made and forget the run-time state: exactly what ``__init__`` made remains."""
        destroy_entities(self, self._entities)
        self._close_model()
        self._reset_runtime_state()


def main(args: list[str] | None = None) -> int:
    # The saver and watchdog threads share the GIL with the control loop: let them hold it for at most
    # 0.5 ms at a time (Python's default is 5 ms, two and a half ticks at 500 Hz).
    sys.setswitchinterval(0.0005)
    return spin_node(SnnSacController, args, name=NODE_NAME, events_executor=True)


if __name__ == "__main__":
    raise SystemExit(main())
