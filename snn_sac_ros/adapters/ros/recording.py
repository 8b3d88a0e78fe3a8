"""Recording a ROS 2 node's messages into MCAP: rclpy messages serialized by rclpy, written by the core recorder.

A node holds one :class:`RosRecorder` and calls :meth:`RosRecorder.record` where it publishes or receives a
message; it costs the caller a queue put (serialization runs in the recorder's thread, by the core's own CDR
encoders for the messages of every tick, by rclpy for the others). The per-tick record has
no rclpy class (the package builds no interfaces): it goes as a dict, encoded from its schema.
:class:`ControllerRecording` is the controller's set of those calls.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rclpy.serialization import serialize_message

from snn_sac_ros.core.recording import cdr, messages, schemas
from snn_sac_ros.core.recording.cdr import JointStateView
from snn_sac_ros.core.recording.writer import Channel, McapRecorder


def type_name(message: Any) -> str:
    """``pkg/msg/Type`` of an rclpy message (as rosbag2 names it)."""
    cls = type(message)
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def _joint_state_cdr(msg: Any) -> bytes:
    stamp = msg.header.stamp
    return cdr.joint_state(stamp.sec, stamp.nanosec, frame_id=msg.header.frame_id, names=msg.name,
                           position=msg.position, velocity=msg.velocity, effort=msg.effort)


def _float64_array_cdr(msg: Any) -> bytes:
    return cdr.float64_array(msg.data) if not msg.layout.dim and not msg.layout.data_offset else \
        serialize_message(msg)


JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
#: the core's encoders of rclpy messages (the same bytes as ``serialize_message``, a tenth of its time)
FAST_ENCODERS = {JOINT_STATE_TYPE: _joint_state_cdr,
                 "std_msgs/msg/Float64MultiArray": _float64_array_cdr}


class RosRecorder:
    """An :class:`McapRecorder` that takes rclpy messages; :attr:`dropped` is what to put on ``/diagnostics``."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        self.core = McapRecorder(path, **kwargs)
        self._channels: dict[str, Channel] = {}

    def record(self, topic: str, message: Any, log_time_ns: int, qos: str | None = None,
               schema: schemas.MessageSchema | None = None) -> bool:
        """Queue ``message`` (an rclpy message, or a dict of ``schema``, by default the schema
        :data:`messages.TOPICS` gives ``topic``); never blocks."""
        channel = self._channels.get(topic)
        if channel is None:
            if isinstance(message, dict):
                schema, encode = schema or messages.TOPICS[topic], None
            else:
                name = type_name(message)
                schema, encode = schemas.schema(name), FAST_ENCODERS.get(name, serialize_message)
            channel = self._channels[topic] = self.core.channel(topic, schema, qos=qos, encode=encode)
        return self.core.write(channel, message, log_time_ns)

    def record_serialized(self, topic: str, type_name: str, data: bytes, log_time_ns: int) -> bool:
        """Queue a message of ``type_name`` (``pkg/msg/Type``) already serialized (CDR bytes); never blocks."""
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._channels[topic] = self.core.channel(topic, schemas.schema(type_name))
        return self.core.write(channel, data, log_time_ns)

    def tick(self, fields: dict[str, Any], log_time_ns: int, topic: str = "/snn_sac_controller/tick") -> bool:
        """Queue one tick record: ``fields`` are :func:`messages.tick_record`'s arguments (arrays as they are);
        the message is built and encoded in the recorder's thread, so the tick pays only the queue put."""
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._channels[topic] = self.core.channel(
                topic, schemas.TICK_RECORD, encode=lambda kwargs: cdr.tick_record(**kwargs))
        return self.core.write(channel, fields, log_time_ns)

    @property
    def dropped(self) -> int:
        return self.core.dropped

    @property
    def written(self) -> int:
        return self.core.written

    def close(self) -> None:
        self.core.close()


def unused_path(path: str | Path) -> Path:
    """``path``, or when a file is there already (an earlier run, or this node's configure before a cleanup) the first
    free ``<stem>-<n><suffix>`` beside it: a recording never overwrites another."""
    first = candidate = Path(path)
    n = 1
    while candidate.exists():
        n += 1
        candidate = first.with_name(f"{first.stem}-{n}{first.suffix}")
    return candidate


#: the writer stops this long before the next tick is due (its wake-up and the GIL's hand-over) [s]
WRITER_WAKE_MARGIN_S = 1e-4


class ControllerRecording:
    """What ``snn_sac_controller`` records, one call per place it receives or publishes (``record_path`` empty: a
    recording that records nothing, so the node calls the same hooks either way).

    Each hook is a queue put: joint states as received (before they are checked: a bad state is recorded too),
    targets as received, commands as published, the node's own ``/diagnostics``, and one tick record per tick
    whose policy step ran. The controller computes the end effector's position, not its pose: the position is in
    the tick record, and no ``/ee_pose`` is recorded. Log times are wall-clock receive times [ns], as rosbag2's;
    header stamps are the messages' own (sim time under ``use_sim_time``). While :attr:`paused` (rosbag2's pause) the
    hooks record nothing and the file stays open.
    """

    def __init__(self, path: str | Path = "", *, topics: dict[str, str] | None = None,
                 metadata: dict[str, object] | None = None, **options: Any) -> None:
        self.path = str(path)
        self.recorder = RosRecorder(path, metadata={"snn_sac_ros": {k: str(v) for k, v in (metadata or {}).items()}},
                                    **options) if path else None
        names = {"joint_states": "/joint_states", "commands": "/effort_controller/commands", "target": "/target",
                 "diagnostics": "/diagnostics", "tick": "/snn_sac_controller/tick", **(topics or {})}
        self._joint_states, self._commands = names["joint_states"], names["commands"]
        self._target, self._diagnostics, self._tick = names["target"], names["diagnostics"], names["tick"]
        self._episode, self._last_target = -1, None
        self.paused = False
        self._live: RosRecorder | None = self.recorder  # the recorder while not paused, else None

    @property
    def on(self) -> bool:
        return self.recorder is not None

    @property
    def live(self) -> bool:
        """Recording now: on and not paused."""
        return self._live is not None

    def pause(self, paused: bool) -> None:
        self.paused = bool(paused)
        self._live = None if self.paused else self.recorder

    def joint_state(self, msg: Any) -> None:
        """A joint state as received: an rclpy message, or a :class:`~snn_sac_ros.core.recording.cdr.JointStateView`
        (its bytes are recorded as they came)."""
        recorder = self._live
        if recorder is not None:
            if isinstance(msg, JointStateView):
                recorder.record_serialized(self._joint_states, JOINT_STATE_TYPE, msg.serialized, time.time_ns())
            else:
                recorder.record(self._joint_states, msg, time.time_ns())

    def target(self, msg: Any) -> None:
        recorder = self._live
        if recorder is not None:
            recorder.record(self._target, msg, time.time_ns())

    def command(self, msg: Any, published: bool = True) -> None:
        """A command, if it went out (a publish DDS refused is not recorded)."""
        recorder = self._live
        if recorder is not None and published:
            recorder.record(self._commands, msg, time.time_ns())

    def diagnostics(self, msg: Any) -> Any:
        """Record ``msg`` and hand it back (so the node records what it publishes in the same expression)."""
        recorder = self._live
        if recorder is not None:
            recorder.record(self._diagnostics, msg, time.time_ns())
        return msg

    def tick(self, node: Any, result: Any, torque: Any, commanded: bool, state: tuple[Any, Any, float]) -> None:
        """The tick record of a tick whose policy step gave ``result`` (a ``TickResult``; None: no step, nothing
        recorded) from ``state`` (q, dq, its stamp), with the ``torque`` that went out; the message is built in the
        writer thread."""
        recorder = self._live
        if recorder is None or result is None:
            return
        target = node.reach.target
        if target is not self._last_target:  # ReachTick keeps a new array per new target: a new reach
            self._last_target, self._episode = target, self._episode + 1
        recorder.tick({
            "t": state[2], "joint_names": node.driver_names, "q": state[0], "dq": state[1],
            "ee": result.ee if result.ee is not None else (math.nan,) * 3, "target": target,
            "observation": result.observation, "action": result.action, "torque": torque, "reward": result.reward,
            "learning": node.learning_on, "commanded": commanded, "episode": self._episode}, time.time_ns(),
            self._tick)

    def hold(self) -> None:
        """A tick starts: the writer stops after the message it is writing."""
        if self.recorder is not None:
            self.recorder.core.hold()

    def pace(self, next_tick: float) -> None:
        """The tick is done and the next starts at ``next_tick`` (monotonic s): the writer may work till shortly
        before."""
        if self.recorder is not None:
            self.recorder.core.pace(next_tick - WRITER_WAKE_MARGIN_S)

    def status(self) -> dict[str, str]:
        """The recorder's keys on ``/diagnostics``: its state, what it wrote and what it dropped."""
        if self.recorder is None:
            return {"recording": "off"}
        core = self.recorder.core
        state = (f"failed: {core.error}" if core.error else "closed" if core.closed
                 else "paused" if self.paused else "recording")
        return {"recording": state, "record_path": self.path, "recorder_written": str(core.written),
                "recorder_dropped": str(core.dropped), "recorder_pending": str(core.pending)}

    def close(self) -> str:
        """Write what is queued and the file's summary; returns a line for the log ('' when off)."""
        if self.recorder is None:
            return ""
        self.recorder.close()
        core = self.recorder.core
        return (f"recording closed: {core.written} messages written to {self.path}, {core.dropped} dropped"
                + (f"; the writer failed: {core.error}" if core.error else ""))
