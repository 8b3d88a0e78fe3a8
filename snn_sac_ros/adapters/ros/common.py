"""Helpers shared by the package's ROS 2 nodes (the arm simulator, the controller, the reach targets).

Kept here so that the nodes speak with the same QoS, declare parameters the same way, log bad input the
same way, survive failed publishes the same way and shut down the same way on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import faulthandler
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.client import Client
from rclpy.duration import Duration
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.service import Service
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription
from rclpy.timer import Timer

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
#: Array parameters that are "unset" hold one element, the type's unset value: rclpy types an empty list
#: as a byte array, and an array declared without a value (Parameter.Type) makes a get_parameters request
#: for all names fail (``ros2 param dump``, rqt_reconfigure). So every array gets a typed default, and the
#: default of an optional one is ``['']`` (strings), ``[.nan]`` (doubles) or ``[-1]`` (integers: CPU ids);
#: ``array_value`` reads each as None. None is ever a valid value: no joint is named '', no limit is NaN, no
#: CPU is -1.
UNSET_ARRAYS: dict[type, list[Any]] = {str: [""], float: [math.nan], int: [-1]}


def is_unset(value: Any) -> bool:
    """Whether an array parameter's value is its type's unset sentinel (see ``UNSET_ARRAYS``)."""
    if value is None:
        return True
    values = list(value)
    return len(values) == 1 and (values[0] == "" or (isinstance(values[0], float) and math.isnan(values[0]))
                                 or (isinstance(values[0], int) and values[0] == -1))


def declare(node: Node, name: str, default: Any, description: str, *, low: float | None = None,
            high: float | None = None, read_only: bool = False, array_of: type | None = None,
            choices: Sequence[str] = ()) -> Any:
    """Declare a parameter with a descriptor (type, range, read-only) and return its value.

    ``low``/``high`` become the descriptor's range, which rclpy itself enforces on every set (NaN is
    refused too). ``array_of`` declares an array parameter defaulting to ``default`` or, when that is
    None, to the unset sentinel of ``UNSET_ARRAYS`` (returned as None). ``choices`` are listed in the
    description; the node's set-parameters callback enforces them.
    """
    if choices:
        description = f"{description} (one of: {', '.join(choices)})"
    if array_of is not None:
        value = list(default) if default is not None else list(UNSET_ARRAYS[array_of])
        descriptor = ParameterDescriptor(name=name, description=description, read_only=read_only)
        declared = node.declare_parameter(name, value, descriptor).value
        return None if default is None and is_unset(declared) else declared
    descriptor = ParameterDescriptor(name=name, type=_TYPES[type(default)], description=description,
                                     read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return node.declare_parameter(name, default, descriptor).value


def array_value(node: Node, name: str) -> Any:
    """An array parameter's value, None while it holds the unset sentinel."""
    value = node.get_parameter(name).value
    return None if is_unset(value) else value


def finite_list(values: Sequence[float] | None) -> bool:
    """True when every value is a finite number (an unset array counts as finite)."""
    return is_unset(values) or all(math.isfinite(v) for v in values)


# -- throttled logging ---------------------------------------------------------------------------------------
class ThrottledErrors:
    """Log at most once per ``period`` seconds (wall clock) for each kind of problem.

    Bad input often arrives at the control rate (500 Hz): one line per message would drown the log and
    slow the node. Each kind ("wrong_length", "non_finite") is throttled on its own, so a new kind of
    problem is always reported at once, and the next line says how many of that kind were not logged.
    ``level`` is ``error`` for what needs someone's action, ``warning`` for what the node handles by
    itself (zeroed ticks under load). A message may be a callable, built only when it is logged.
    """

    def __init__(self, logger: Any, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()  # the control loop, the watchdog and the executor all report
        #: how many times each kind happened, logged or not
        self.counts: dict[str, int] = {}

    def report(self, kind: str, message: str | Callable[[], str], level: str = "error", key: str = "") -> bool:
        """Count one ``kind`` problem; log ``message`` unless that kind (or ``key``, when one problem has several
        sources that must each be said: a failing topic) was logged within the period."""
        key = key or kind
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            suppressed = self._suppressed.pop(key, 0)
            self._last[key] = now
        text = message() if callable(message) else message
        suffix = f" ({suppressed} more like this since the last report)" if suppressed else ""
        if level == "warning":  # two calls: rclpy refuses one call site logging at two severities
            self._logger.warning(f"[{kind}] {text}{suffix}")
        else:
            self._logger.error(f"[{kind}] {text}{suffix}")
        return True


# -- publishing that never kills a node -------------------------------------------------------------------------
class SafePublisher:
    """A publisher whose failed publishes are counted and logged (throttled per topic), never raised.

    The middleware can refuse a publish: ``RCLError: Failed to publish: cannot publish data`` when a
    reliable subscriber stalls under load, a plain ``RuntimeError`` when Fast DDS throws (a writer profile
    with preallocated memory too small for the message), ``InvalidHandle`` for a publisher or context that
    is gone. All are ``RuntimeError``; a node must not die of any of them. ``failures`` counts them, and
    each topic's failures are logged under the ``publish_failed`` kind at most once a second; ``published``
    counts the publishes the middleware took (what a recording of the topic is checked against).
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, qos: QoSProfile | int, errors: ThrottledErrors) -> None:
        self.publisher = node.create_publisher(msg_type, topic, qos)
        self.topic = self.publisher.topic_name
        self._errors = errors
        self.failures = self.published = 0

    def publish(self, msg: Any) -> bool:
        """Publish ``msg``; False (counted, logged at most once a second) when DDS refused it."""
        try:
            self.publisher.publish(msg)
        except RuntimeError as error:  # RCLError, InvalidHandle and what pybind11 makes of a C++ exception
            self.failures += 1
            why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            topic = self.topic
            self._errors.report("publish_failed", lambda: f"publishing on {topic} failed ({self.failures} so far): "
                                f"{why}; skipped, the node goes on", key=f"publish_failed {topic}")
            return False
        self.published += 1
        return True

    def wait_for_all_acked(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until every reliable subscriber acknowledged what was published."""
        try:
            return self.publisher.wait_for_all_acked(Duration(nanoseconds=int(seconds * 1e9)))
        except RuntimeError:  # the middleware refused: nothing known to be acknowledged
            return False


class PolledSubscription:
    """A subscription that no executor serves: the thread that owns it waits for messages and takes them itself
    (the controller's control thread and its joint states).

    rclpy has no public API for this; the wait set and the take are those its own ``wait_for_message`` uses.
    To the graph it is an ordinary subscription of ``node`` (remappings and namespace apply), but not in
    ``node.subscriptions``: an executor that took from it too would split the messages with the owner.
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, qos: QoSProfile,
                 decode: Callable[[bytes], Any | None] | None = None) -> None:
        """``decode``: takes the message's serialized bytes instead and reads them (rclpy deserializes what it
        returns None for)."""
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
        from rclpy.type_support import check_is_valid_msg_type

        check_is_valid_msg_type(msg_type)
        with node.handle:
            self._handle = _rclpy.Subscription(node.handle, msg_type, topic, qos.get_c_qos_profile())
        self._msg_type, self._decode = msg_type, decode
        self.topic_name = self._handle.get_topic_name()
        self._wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, node.context.handle)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds (0: do not block) until a message is there to take."""
        wait_set = self._wait_set
        with self._handle:
            wait_set.clear_entities()
            wait_set.add_subscription(self._handle)
            wait_set.wait(max(0, int(timeout * 1e9)))
            return bool(wait_set.get_ready_entities("subscription"))

    def take(self) -> Any | None:
        """The next message (what ``decode`` made of it, if given), or None when there is none."""
        with self._handle:
            taken = self._handle.take_message(self._msg_type, self._decode is not None)
        if taken is None or self._decode is None:
            return None if taken is None else taken[0]
        return self._decode(taken[0]) or deserialize_message(taken[0], self._msg_type)

    def destroy(self) -> None:
        self._wait_set.destroy_when_not_in_use()
        self._handle.destroy_when_not_in_use()


def destroy_entities(node: Node, entities: Sequence[Any]) -> None:
    """Destroy publishers, subscriptions, services, clients and timers made by ``node`` (newest first)."""
    for item in reversed(list(entities)):
        if isinstance(item, PolledSubscription):
            item.destroy()
            continue
        entity = getattr(item, "publisher", item)  # a SafePublisher
        for kind, destroy in ((Publisher, node.destroy_publisher), (Subscription, node.destroy_subscription),
                              (Service, node.destroy_service), (Client, node.destroy_client),
                              (Timer, node.destroy_timer)):
            if isinstance(entity, kind):
                destroy(entity)
                break


# -- main ------------------------------------------------------------------------------------------------------
#: Longest wait in the executor before the stop flag is looked at again [s]: the shutdown latency.
_SPIN_TIMEOUT_S = 0.1


def _wants_help(args: Sequence[str] | None) -> bool:
    """``-h``/``--help`` before any ``--ros-args``: ROS nodes have no help of their own, ours print one."""
    words = list(sys.argv[1:] if args is None else args)
    if "--ros-args" in words:
        words = words[: words.index("--ros-args")]
    return "-h" in words or "--help" in words


def spin_node(make_node: Callable[[], Node], args: Sequence[str] | None = None, name: str = "node",
              events_executor: bool = False) -> int:
    """Run one node on a SingleThreadedExecutor (``events_executor``: rclpy's EventsExecutor, less CPU per
    callback) until Ctrl-C or SIGTERM; return the exit code.

    rclpy's own signal handlers shut the context down at once, in the middle of whatever callback runs:
    a publish there raises, and nothing can be published or logged to /rosout on the way out (a
    controller could not send its zero torque). So rclpy is told to install none; SIGINT and SIGTERM set
    a flag instead, the executor finishes the callback it is in, and the node's ``close()`` (if it has
    one) runs while the context is still valid. A second signal during ``close()`` ends it at once; signals
    after that (a launch's SIGINT to a node that has just finished by itself) are ignored: it is exiting.
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

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack, to stderr
    rclpy.init(args=list(args) if args is not None else None, signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    node: Node | None = None
    code = 0
    try:
        node = make_node()
        if events_executor:
            from rclpy.experimental import EventsExecutor

            executor = EventsExecutor()
        else:
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
            for sig in (signal.SIGINT, signal.SIGTERM):  # done: a late Ctrl-C must not kill the exit (-2)
                signal.signal(sig, signal.SIG_IGN)
    return code


# -- asking other nodes from inside a callback ---------------------------------------------------------------
def remote_parameter(node: Node, target: str, name: str, timeout: float) -> tuple[bool, Any]:
    """``(reachable, value)`` of parameter ``name`` of node ``target`` (resolved in ``node``'s namespace).

    Safe inside a callback of ``node``'s executor: the request goes through a helper node spun by an
    executor of its own. ``value`` is None when the node answers but does not have the parameter.
    """
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    helper = Node(f"{node.get_name()}_probe_{os.getpid()}", namespace=node.get_namespace(), context=node.context,
                  start_parameter_services=False, enable_rosout=False)
    executor = SingleThreadedExecutor(context=node.context)
    try:
        client = helper.create_client(GetParameters, f"{target}/get_parameters")
        if not client.wait_for_service(timeout_sec=timeout):
            return False, None
        future = client.call_async(GetParameters.Request(names=[name]))
        executor.add_node(helper)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done() or future.result() is None:
            return False, None
        values = future.result().values
        if not values or values[0].type == ParameterType.PARAMETER_NOT_SET:
            return True, None
        return True, parameter_value_to_python(values[0])
    finally:
        executor.shutdown(timeout_sec=0.1)
        helper.destroy_node()
