"""Recording a ROS 2 node's messages into MCAP: rclpy messages serialized by rclpy, written by the core recorder.

A node holds one :class:`RosRecorder` and calls :meth:`RosRecorder.record` where it publishes or receives a
message; it costs the caller a queue put (serialization runs in the recorder's thread). The per-tick record has
no rclpy class (the package builds no interfaces): it goes as a dict, encoded from its schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rclpy.serialization import serialize_message

from snn_sac_ros.core.recording import messages, schemas
from snn_sac_ros.core.recording.writer import Channel, McapRecorder


def type_name(message: Any) -> str:
    """``pkg/msg/Type`` of an rclpy message (as rosbag2 names it)."""
    cls = type(message)
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


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
                schema, encode = schemas.schema(type_name(message)), serialize_message
            channel = self._channels[topic] = self.core.channel(topic, schema, qos=qos, encode=encode)
        return self.core.write(channel, message, log_time_ns)

    def tick(self, fields: dict[str, Any], log_time_ns: int, topic: str = "/snn_sac_controller/tick") -> bool:
        """Queue one tick record: ``fields`` are :func:`messages.tick_record`'s arguments (arrays as they are);
        the message is built and encoded in the recorder's thread, so the tick pays only the queue put."""
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._channels[topic] = self.core.channel(
                topic, schemas.TICK_RECORD, build=lambda kwargs: messages.tick_record(**kwargs))
        return self.core.write(channel, fields, log_time_ns)

    @property
    def dropped(self) -> int:
        return self.core.dropped

    @property
    def written(self) -> int:
        return self.core.written

    def close(self) -> None:
        self.core.close()
