"""Helpers for tests that talk to a node in another process over real DDS.

``NodeProcess`` starts a node as a subprocess (it inherits the test's ROS_DOMAIN_ID and LOCALHOST discovery
from conftest.py) and collects its stderr lines in the background. ``Probe`` is the test's own rclpy node, in
a private context, with event-driven waits: ``spin_until(predicate, timeout)`` spins until the predicate
holds and fails the test with a message when it does not in time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PointStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from snn_sac_ros.adapters.ros.common import CLOCK_SUB_QOS, COMMAND_QOS, STATE_QOS, time_to_seconds


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

    def __init__(self, module: str, params: dict[str, Any], extra_args: Sequence[str] = ()) -> None:
        args = [sys.executable, "-m", module, "--ros-args"]
        for key, value in params.items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        args += list(extra_args)
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0",
                   RCUTILS_COLORIZED_OUTPUT="0")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
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
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"node did not exit {timeout} s after the signal; stderr:\n{self.stderr}") from None
        self._reader.join(timeout=5)
        return code

    def stop_cleanly(self) -> None:
        """SIGTERM; the node must exit with code 0 and no traceback on stderr."""
        code = self.stop()
        assert code == 0, self.stderr
        assert "Traceback" not in self.stderr


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
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

    def record_commands(self) -> None:
        """Record every effort command: ``received`` (arrival time, values) and ``published_ns`` (DDS source stamp)."""
        self.received: list[tuple[float, np.ndarray]] = []
        self.published_ns: list[int] = []

        def command(msg: Float64MultiArray, info: MessageInfo) -> None:
            self.received.append((time.monotonic(), np.array(msg.data)))
            self.published_ns.append(info["source_timestamp"])

        self.node.create_subscription(Float64MultiArray, "effort_controller/commands", command, COMMAND_QOS)

    def commands_after(self, t: float) -> list[np.ndarray]:
        """Commands that arrived after monotonic time ``t`` (needs :meth:`record_commands`)."""
        return [c for when, c in self.received if when > t]

    def close(self) -> None:
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

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 10.0) -> Any:
        """Call a service and return its response."""
        client = self.node.create_client(srv_type, name)
        try:
            self.spin_until(client.service_is_ready, timeout, f"service {name}")
            future = client.call_async(request)
            self.spin_until(future.done, timeout, f"the response of {name}")
            return future.result()
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

        response = self.call(GetParameters, f"/{node_name}/get_parameters", GetParameters.Request(names=[name]))
        return parameter_value_to_python(response.values[0])
