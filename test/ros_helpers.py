"""Helpers for tests that talk to a node in another process over real DDS.

``NodeProcess`` starts a node as a subprocess (it inherits the test's ROS_DOMAIN_ID and LOCALHOST discovery
from conftest.py) and collects its stderr lines in the background. ``Probe`` is the test's own rclpy node, in
a private context, with event-driven waits: ``spin_until(predicate, timeout)`` spins until the predicate
holds and fails the test with a message when it does not in time.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray

from snn_sac_ros.adapters.ros.common import CLOCK_SUB_QOS, COMMAND_QOS, STATE_QOS, time_to_seconds

CONTROLLER = "snn_sac_ros.adapters.ros.controller_node"


def controller_params(**params: Any) -> dict[str, Any]:
    """The controller as the tests run it: the planar2 preset, configuring and activating itself, no forward
    command controller to ask for its joints (there is none here), and a state_timeout a fake robot in a
    Python thread holds on a loaded machine (its 2 ms period can stretch to 10-15 ms; the controller refuses
    a timeout under 2.5 measured periods); ``params`` add or override."""
    return {"arm": "planar2", "autostart": True, "command_controller": "", "state_timeout": 0.05, **params}


def planar2_target() -> np.ndarray:
    """A reachable planar2 target [m, base frame] some way from the arm's start, for controller tests."""
    from snn_sac_ros.core.arm import PyBulletArm

    with PyBulletArm("planar2") as arm:
        return arm.forward_kinematics(np.array([0.9, 0.5]))


def target_msg(point: Sequence[float], frame_id: str = "base_link") -> PointStamped:
    """A reach target as the controller takes it."""
    msg = PointStamped()
    msg.header.frame_id = frame_id
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in point)
    return msg


class NodeProcess:
    """A node running in its own process, with its stderr lines collected as they come."""

    def __init__(self, module: str, params: dict[str, Any], extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None, command: Sequence[str] = ()) -> None:
        """Start ``python -m module --ros-args -p ...``, or ``command`` as it is when one is given."""
        args = list(command) or [sys.executable, "-m", module, "--ros-args", *ros_parameter_args(params)]
        args += list(extra_args)
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0",
                   RCUTILS_COLORIZED_OUTPUT="0", **(env or {}))
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.module = module or " ".join(args[:3])
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int | None = None, timeout: float = 15.0) -> int:
        """Send ``sig`` (default SIGTERM) and wait for the exit code; kill it if it hangs."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(sig if sig is not None else signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # the nodes dump every thread's stack on it
            time.sleep(1.0)
            self.process.kill()
            self.process.wait()
            self._reader.join(timeout=5)
            raise AssertionError(f"{self.module} did not exit {timeout} s after the signal; stderr:\n{self.stderr}"
                                 ) from None
        self._reader.join(timeout=5)
        return code

    def stop_cleanly(self) -> None:
        """SIGTERM; the node must exit with code 0 and no traceback on stderr."""
        code = self.stop()
        assert code == 0, self.stderr
        assert "Traceback" not in self.stderr, self.stderr


def stop_all_cleanly(processes: Iterable[NodeProcess]) -> None:
    """Stop every process, then check that each exited cleanly: one that did not never leaves the others running."""
    problems = []
    for process in processes:
        try:
            process.stop_cleanly()
        except AssertionError as error:
            problems.append(f"{process.module}: {error}")
    assert not problems, "\n".join(problems)


def ros_parameter_args(params: dict[str, Any]) -> list[str]:
    """``-p name:=value`` for each parameter."""
    return [arg for key, value in params.items() for arg in ("-p", f"{key}:={_ros_value(value)}")]


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
    if isinstance(value, str) and (value == "" or ":" in value):
        return "'" + value + "'"
    return str(value)


class Probe:
    """The test's side: subscribes to joint_states and /clock, publishes commands, calls services."""

    def __init__(self, name: str = "probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.states: list[JointState] = []
        self.clock: list[float] = []
        self.node.create_subscription(JointState, "joint_states", self.states.append, STATE_QOS)
        self.node.create_subscription(Clock, "/clock", lambda m: self.clock.append(time_to_seconds(m.clock)),
                                      CLOCK_SUB_QOS)
        self.commands = self.node.create_publisher(Float64MultiArray, "effort_controller/commands", COMMAND_QOS)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def every(self, period: float, publish: Callable[[], None]) -> None:
        """Call ``publish`` every ``period`` seconds (or every ``self.period``, when the probe has one: it may
        change) from a thread of its own until :meth:`close`: a fake robot keeps its rate however busy the
        test is (an executor timer would wait for the test to spin). A late call is not made up for with a
        burst, as a driver's timer skips a late cycle."""
        def run() -> None:
            next_time = time.monotonic()
            while not self._stop.is_set():
                publish()
                next_time = max(next_time + getattr(self, "period", period), time.monotonic())
                self._stop.wait(max(0.0, next_time - time.monotonic()))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def record_commands(self, topic: str = "effort_controller/commands") -> None:
        """Record every effort command: ``received`` (arrival time, values) and ``published_ns`` (DDS source stamp)."""
        self.received: list[tuple[float, np.ndarray]] = []
        self.published_ns: list[int] = []
        self._arrivals: list[float] = []

        def command(msg: Float64MultiArray, info: MessageInfo) -> None:
            now = time.monotonic()
            self.received.append((now, np.array(msg.data)))
            self._arrivals.append(now)
            self.published_ns.append(info["source_timestamp"])

        self.node.create_subscription(Float64MultiArray, topic, command, COMMAND_QOS)

    def commands_after(self, t: float) -> list[np.ndarray]:
        """Commands that arrived after monotonic time ``t`` (needs :meth:`record_commands`)."""
        return [c for _, c in self.received[bisect.bisect_right(self._arrivals, t):]]

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def spin_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Spin until ``predicate()`` is true; fail with ``what`` after ``timeout`` wall seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        """Keep receiving for ``seconds`` of wall time (only where a duration is the point)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def wait_for_node(self, process: NodeProcess, timeout: float = 30.0, need_state: bool = True) -> None:
        """Wait until the node hears our command publisher and (``need_state``) has sent joint_states."""
        def ready() -> bool:
            if process.process.poll() is not None:
                raise AssertionError(f"node exited with {process.process.returncode}:\n{process.stderr}")
            return (bool(self.states) or not need_state) and self.commands.get_subscription_count() > 0

        self.spin_until(ready, timeout, "the node's command subscription" + (" and joint_states" if need_state else ""))

    def send(self, values: Sequence[float]) -> None:
        self.commands.publish(Float64MultiArray(data=[float(v) for v in values]))

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 10.0,
             resend_after: float | None = None) -> Any:
        """Call a service and return its response.

        ``resend_after`` (idempotent requests only) sends the request again when no response came in that
        many seconds: a service is "ready" once its request topic matched, and a response sent before the
        server's reply writer matched the client is lost (seen on a loaded machine right after discovery).
        """
        client = self.node.create_client(srv_type, name)
        try:
            self.spin_until(client.service_is_ready, timeout, f"service {name}")
            futures = [client.call_async(request)]
            start = time.monotonic()
            resend_at = start + resend_after if resend_after else math.inf
            while not any(f.done() for f in futures):
                now = time.monotonic()
                if now > start + timeout:
                    raise AssertionError(f"timed out after {timeout} s waiting for the response of {name}")
                if now >= resend_at:
                    futures.append(client.call_async(request))
                    resend_at = now + resend_after
                self.executor.spin_once(timeout_sec=0.02)
            return next(f for f in futures if f.done()).result()
        finally:
            self.node.destroy_client(client)

    def set_parameter(self, node_name: str, name: str, value: Any) -> Any:
        """Set one parameter of another node; returns its SetParametersResult."""
        from rcl_interfaces.srv import SetParameters

        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(SetParameters, f"/{node_name}/set_parameters", request).results[0]

    def get_parameter(self, node_name: str, name: str) -> Any:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        response = self.call(GetParameters, f"/{node_name}/get_parameters", GetParameters.Request(names=[name]),
                             resend_after=2.0)
        return parameter_value_to_python(response.values[0])

    def transition(self, node_name: str, transition: str) -> bool:
        """Ask a lifecycle node for a transition by label (configure, cleanup, activate, deactivate, shutdown)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {"configure": Transition.TRANSITION_CONFIGURE, "cleanup": Transition.TRANSITION_CLEANUP,
               "activate": Transition.TRANSITION_ACTIVATE, "deactivate": Transition.TRANSITION_DEACTIVATE}
        if transition == "shutdown":
            state = self.lifecycle_state(node_name)
            ids["shutdown"] = {"unconfigured": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
                               "inactive": Transition.TRANSITION_INACTIVE_SHUTDOWN,
                               "active": Transition.TRANSITION_ACTIVE_SHUTDOWN}[state]
        request = ChangeState.Request(transition=Transition(id=ids[transition]))
        return self.call(ChangeState, f"/{node_name}/change_state", request, timeout=60.0).success

    def wait_lifecycle(self, node_name: str, state: str = "unconfigured", timeout: float = 90.0) -> None:
        """Spin until ``node_name``'s lifecycle services answer and it is in ``state``."""
        from lifecycle_msgs.srv import GetState

        client = self.node.create_client(GetState, f"/{node_name}/get_state")
        try:
            self.spin_until(client.service_is_ready, timeout, f"{node_name}'s lifecycle services")
        finally:
            self.node.destroy_client(client)
        self.spin_until(lambda: self.lifecycle_state(node_name) == state, timeout, f"{node_name} {state}")

    def lifecycle_state(self, node_name: str) -> str:
        """A lifecycle node's current state label (unconfigured, inactive, active, finalized)."""
        from lifecycle_msgs.srv import GetState

        return self.call(GetState, f"/{node_name}/get_state", GetState.Request(),
                         resend_after=2.0).current_state.label


class RobotProbe(Probe):
    """Plays a robot for a controller: joint states every ``period`` from a thread (valid, or broken in the way
    ``mode`` says), the target every 50 ms, e-stops on demand; keeps the last diagnostics of the controller
    node named ``controller``.

    Modes: valid, silent (no states), nan, missing_joint, stale (stamped 2 s ago), jumping (a fake robot whose
    states teleport: they cycle through 15 configurations within the planar2 joint limits, each 1 rad or
    more from the 14 before it, farther than the arm moves in the 30 ms the cycle takes).
    """

    def __init__(self, name: str = "robot_probe", *, joints: Sequence[str] = ("shoulder", "elbow"),
                 q: Sequence[float] = (0.0, 1.2), period: float = 0.002, namespace: str = "",
                 controller: str = "snn_sac_controller") -> None:
        super().__init__(name)
        self.controller = controller
        node = self.node
        self.joints, self.q, self.dq = list(joints), list(q), [0.0] * len(q)
        prefix = f"/{namespace}/" if namespace else ""
        self.record_commands(f"{prefix}effort_controller/commands")
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.state_pub = node.create_publisher(JointState, f"{prefix}joint_states", STATE_QOS)
        self.target_pub = node.create_publisher(PointStamped, f"{prefix}target", 10)
        self.estop_pub = node.create_publisher(Bool, f"{prefix}estop", 10)
        self.mode = "valid"
        self.period = period
        self.last_state_sent = 0.0
        self.last_state_ns = 0
        self.target: np.ndarray | None = None
        self._jumps = 0
        self.every(period, self._publish_state)
        node.create_timer(0.05, self._publish_target)  # repeated, so a late subscription gets it too

    def _diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.controller}:"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                level = status.level  # a byte in Python
                self.diagnostics["_level"] = str(level[0] if isinstance(level, bytes) else int(level))
                self.diagnostics["_message"] = status.message

    def _publish_state(self) -> None:
        if self.mode == "silent":
            return
        msg = JointState(name=list(self.joints), position=list(self.q), velocity=list(self.dq))
        msg.header.stamp = self.node.get_clock().now().to_msg()
        if self.mode == "nan":
            msg.position = [float("nan"), *self.q[1:]]
        elif self.mode == "missing_joint":
            msg.name, msg.position, msg.velocity = self.joints[:1], self.q[:1], [0.0]
        elif self.mode == "stale":
            msg.header.stamp.sec -= 2
        elif self.mode == "jumping":
            self._jumps += 1
            msg.position = [(-2.5, 0.0, 2.5)[self._jumps % 3], (-2.0, -1.0, 0.0, 1.0, 2.0)[self._jumps % 5]]
        self.state_pub.publish(msg)
        self.last_state_sent = time.monotonic()
        self.last_state_ns = time.time_ns()

    def send_target(self, point: np.ndarray) -> None:
        self.target = point
        self._publish_target()

    def _publish_target(self) -> None:
        if self.target is not None:
            self.target_pub.publish(target_msg(self.target))

    def run_mode(self, mode: str, ticks: int = 60, timeout: float = 30.0) -> list[np.ndarray]:
        """Publish in ``mode`` until ``ticks`` more commands arrived; return the last half of them."""
        self.mode = mode
        start = time.monotonic()
        self.spin_until(lambda: len(self.commands_after(start)) >= ticks, timeout, f"{ticks} commands in mode {mode}")
        return self.commands_after(start)[ticks // 2:]

    def wait_torque(self, what: str, timeout: float = 60.0) -> None:
        """Spin until a non-zero command arrives (after now)."""
        start = time.monotonic()
        self.spin_until(lambda: any(np.any(c != 0) for c in self.commands_after(start)), timeout, what)



@contextlib.contextmanager
def controlling(node: NodeProcess, probe: RobotProbe) -> Iterator[tuple[NodeProcess, RobotProbe]]:
    """A planar2 controller ``node`` fed by ``probe`` until it commands torque; closed (the node must exit
    cleanly) at the end."""
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("a first non-zero command", timeout=90)
        yield node, probe
    finally:
        probe.close()
        node.stop_cleanly()


class StoppableSubscriber:
    """``slow_subscriber.py`` in a process of its own: a reliable subscriber of every topic, which a test SIGSTOPs
    and resumes; :meth:`count` and :meth:`last_command` read what it wrote (it writes ten times a second)."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "subscriber_counts.txt"
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("slow_subscriber.py")),
                                         str(self.file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def _lines(self) -> list[str]:
        try:
            return self.file.read_text().split("\n")
        except OSError:
            return []

    def count(self) -> int:
        """Messages received so far."""
        lines = self._lines()
        return int(lines[0]) if lines and lines[0].isdigit() else 0

    def last_command(self) -> dict[str, Any]:
        """The last effort command received: ``values`` and ``received_ns`` (wall clock); {} before the first."""
        lines = self._lines()
        try:
            return json.loads(lines[1]) if len(lines) > 1 else {}
        except json.JSONDecodeError:
            return {}

    def alive(self) -> None:
        assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        self.process.terminate()
        self.process.wait(15)


def set_thread_priority_allowed() -> str | None:
    """None when this process may take SCHED_FIFO (checked in a thread of its own, then dropped), else why not."""
    import threading

    from snn_sac_ros.core.control.realtime import set_thread_priority

    why: list[str] = []
    worker = threading.Thread(target=lambda: why.append(set_thread_priority(1)))
    worker.start()
    worker.join()
    return why[0] or None
