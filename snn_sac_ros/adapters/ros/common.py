"""Helpers shared by the package's ROS 2 nodes (the arm simulator and the controller).

Kept here so that both nodes speak with the same QoS, declare parameters the same way, log bad input the
same way and shut down the same way on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

# -- QoS ---------------------------------------------------------------------------------------------
#: Effort commands: what ros2_control's forward command controller subscribes with (system default:
#: RELIABLE, KEEP_LAST, VOLATILE). A BEST_EFFORT publisher would never connect to it.
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
#: Joint states: as joint_state_broadcaster publishes them (system default, RELIABLE).
STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
#: A controller's joint-state subscription: RELIABLE (it matches joint_state_broadcaster) but only the
#: newest state is kept. A controller that falls behind must act on the latest state, never work through
#: a queue of old ones: each would look fresh on arrival and hide a dead publisher from the watchdog.
LATEST_STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
#: /clock publisher: RELIABLE with depth 1. rclpy's TimeSource (time_source.py) and rclcpp's ClockQoS
#: subscribe BEST_EFFORT depth 1, which a RELIABLE writer serves; a BEST_EFFORT writer would not match a
#: RELIABLE reader (``ros2 topic echo`` with defaults, for example). With KEEP_LAST 1 a slow reader never
#: blocks the simulator: it only ever gets the newest time.
CLOCK_PUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE)
#: /clock subscriber, as rclpy's own TimeSource reads it.
CLOCK_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE)


# -- time ----------------------------------------------------------------------------------------------
def seconds_to_time(seconds: float) -> Time:
    """A ``builtin_interfaces/Time`` for ``seconds`` >= 0 (sim time), exact to the nanosecond."""
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def time_to_seconds(stamp: Time) -> float:
    """Seconds in a ``builtin_interfaces/Time`` (or a header stamp)."""
    return stamp.sec + stamp.nanosec * 1e-9


# -- parameters --------------------------------------------------------------------------------------------
_TYPES = {
    bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    float: (ParameterType.PARAMETER_DOUBLE_ARRAY, Parameter.Type.DOUBLE_ARRAY),
    str: (ParameterType.PARAMETER_STRING_ARRAY, Parameter.Type.STRING_ARRAY),
    int: (ParameterType.PARAMETER_INTEGER_ARRAY, Parameter.Type.INTEGER_ARRAY),
}


def declare(node: Node, name: str, default: Any, description: str, *, low: float | None = None,
            high: float | None = None, read_only: bool = False, array_of: type | None = None) -> Any:
    """Declare a parameter with a descriptor (type, range, read-only) and return its value.

    ``low``/``high`` become the descriptor's range, which rclpy itself enforces on every set (NaN is
    refused too). ``array_of`` declares an array parameter with no default: rclpy would type an empty
    list default as a byte array, so an unset array returns ``None`` and the caller picks the default.
    """
    if array_of is not None:
        ros_type, rclpy_type = _ARRAY_TYPES[array_of]
        descriptor = ParameterDescriptor(name=name, type=ros_type, description=description, read_only=read_only)
        return node.declare_parameter(name, rclpy_type, descriptor).value
    descriptor = ParameterDescriptor(name=name, type=_TYPES[type(default)], description=description,
                                     read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return node.declare_parameter(name, default, descriptor).value


def finite_list(values: Sequence[float] | None) -> bool:
    """True when every value is a finite number (an unset array counts as finite)."""
    return values is None or all(math.isfinite(v) for v in values)


# -- throttled errors ------------------------------------------------------------------------------------------
class ThrottledErrors:
    """Log an error at most once per ``period`` seconds (wall clock) for each kind of problem.

    Bad input often arrives at the control rate (500 Hz): one line per message would drown the log and
    slow the node. Each kind ("wrong_length", "non_finite") is throttled on its own, so a new kind of
    problem is always reported at once, and the next line says how many of that kind were not logged.
    """

    def __init__(self, logger: Any, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        #: how many times each kind happened, logged or not
        self.counts: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Count one ``kind`` problem; log ``message`` unless that kind was logged within the period."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._period:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        suppressed = self._suppressed.pop(kind, 0)
        suffix = f" ({suppressed} more like this since the last report)" if suppressed else ""
        self._logger.error(f"[{kind}] {message}{suffix}")
        self._last[kind] = now
        return True


# -- main ------------------------------------------------------------------------------------------------------
#: Longest wait in the executor before the stop flag is looked at again [s]: the shutdown latency.
_SPIN_TIMEOUT_S = 0.1


def _wants_help(args: Sequence[str] | None) -> bool:
    """``-h``/``--help`` before any ``--ros-args``: ROS nodes have no help of their own, ours print one."""
    words = list(sys.argv[1:] if args is None else args)
    if "--ros-args" in words:
        words = words[: words.index("--ros-args")]
    return "-h" in words or "--help" in words


def spin_node(make_node: Callable[[], Node], args: Sequence[str] | None = None, name: str = "node") -> int:
    """Run one node on a SingleThreadedExecutor until Ctrl-C or SIGTERM; return the exit code.

    rclpy's own signal handlers shut the context down at once, in the middle of whatever callback runs:
    a publish there raises, and nothing can be published or logged to /rosout on the way out (a
    controller could not send its zero torque). So rclpy is told to install none; SIGINT and SIGTERM set
    a flag instead, the executor finishes the callback it is in, and the node's ``close()`` (if it has
    one) runs while the context is still valid. A second signal during ``close()`` ends it at once.
    A node that cannot start because of its configuration (a bad parameter override, an unknown arm)
    raises; that is printed as one line, prefixed with ``name``, with exit code 2. Code 0 otherwise.
    """
    if _wants_help(args):
        doc = sys.modules[make_node.__module__].__doc__ or ""
        print(f"usage: {name} [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r FROM:=TO] ...]\n\n"
              f"{doc.strip()}\n\nParameters: see config/{name}.yaml in the package's share folder.")
        return 0
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    rclpy.init(args=list(args) if args is not None else None, signal_handler_options=SignalHandlerOptions.NO)
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    node: Node | None = None
    code = 0
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=_SPIN_TIMEOUT_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError, ParameterException, InvalidTopicNameException) as error:
        print(f"[{name}] cannot start: {error}", file=sys.stderr)
        code = 2
    finally:
        try:
            if node is not None:
                close = getattr(node, "close", None)
                if close is not None:
                    close()
                node.destroy_node()
        except KeyboardInterrupt:
            pass
        finally:
            rclpy.try_shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return code
