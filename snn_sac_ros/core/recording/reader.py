"""Reading MCAP recordings, whole or cut short by a crash, into messages and NumPy series.

:func:`read_messages` walks the file from its start (no summary needed) and stops, without an error, at a tail
that a killed writer left unfinished: everything up to the last complete chunk is read. :func:`load_ticks` turns
the controller's per-tick records into arrays, what training from a recording and the plots read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import McapError
from mcap.reader import NonSeekingReader
from mcap_ros2.decoder import DecoderFactory

TICK_TOPIC = "/snn_sac_controller/tick"


@dataclass(frozen=True)
class RecordedMessage:
    """One decoded message: its topic, type name, log time [ns] and the message (attributes as in rclpy);
    ``asked_as``: the topic it was asked for (:func:`read_messages`), which a namespaced topic ends with."""

    topic: str
    type_name: str
    log_time_ns: int
    message: Any
    asked_as: str = ""


def matching_topic(recorded: str, wanted: Iterable[str]) -> str | None:
    """The topic of ``wanted`` that ``recorded`` is, or is under a namespace (``/arm1/joint_states`` is
    ``/joint_states``), else None."""
    for topic in wanted:
        name = topic.lstrip("/")
        if recorded.lstrip("/") == name or recorded.endswith("/" + name):
            return topic
    return None


@dataclass
class ReadResult:
    """What :func:`read_messages` found besides the messages: whether the file ended cleanly, its metadata."""

    complete: bool = True
    tail_error: str = ""
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)


def read_messages(path: str | Path, topics: Iterable[str] | None = None,
                  result: ReadResult | None = None) -> Iterator[RecordedMessage]:
    """The messages of ``path`` in file order (``topics``: only these, also under a namespace, as a node in a
    namespace records them); a truncated tail ends the iteration.

    Pass a :class:`ReadResult` to learn whether the file was complete (``complete``) and its metadata records.
    """
    wanted = None if topics is None else list(topics)
    result = result if result is not None else ReadResult()
    factory, decoders, asked = DecoderFactory(), {}, {}
    with open(path, "rb") as handle:
        reader = NonSeekingReader(handle)
        try:
            for schema, channel, message in reader.iter_messages(log_time_order=False):
                if channel.id not in asked:  # a channel's verdict, once
                    asked[channel.id] = channel.topic if wanted is None else matching_topic(channel.topic, wanted)
                if asked[channel.id] is None:
                    continue
                decode = decoders.get(channel.id)
                if decode is None:
                    decode = decoders[channel.id] = factory.decoder_for(channel.message_encoding, schema)
                    if decode is None:  # not CDR with a ROS 2 schema: not ours to read
                        asked[channel.id] = None
                        continue
                yield RecordedMessage(channel.topic, schema.name if schema else "", message.log_time,
                                      decode(message.data), asked[channel.id])
        except (McapError, struct.error, EOFError, ValueError) as error:  # a killed writer's unfinished tail
            result.complete = False
            result.tail_error = f"{type(error).__name__}: {error}"
        else:
            handle.seek(0)
            result.metadata.update(_metadata(handle))


def _metadata(handle: Any) -> dict[str, dict[str, str]]:
    reader = NonSeekingReader(handle)
    try:
        return {m.name: dict(m.metadata) for m in reader.iter_metadata()}
    except (McapError, struct.error, EOFError, ValueError):
        return {}


def stamp_seconds(header: Any) -> float:
    """A message header's stamp [s]."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _point(p: Any) -> list[float]:
    return [p.x, p.y, p.z]


@dataclass
class Ticks:
    """The controller's per-tick records as arrays (one row per tick, in recording order)."""

    t: np.ndarray
    joint_names: tuple[str, ...]
    q: np.ndarray
    dq: np.ndarray
    ee: np.ndarray
    target: np.ndarray
    observation: np.ndarray
    action: np.ndarray  # NaN rows: the policy did not run
    torque: np.ndarray
    reward: np.ndarray  # NaN: none given
    learning: np.ndarray
    commanded: np.ndarray
    episode: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


def load_ticks(path: str | Path, topic: str = TICK_TOPIC) -> Ticks:
    """Every tick record on ``topic`` in ``path`` (a truncated file: those before the cut). Raises ``ValueError``
    when there are none."""
    rows = [m.message for m in read_messages(path, [topic])]
    if not rows:
        raise ValueError(f"{path}: no tick records on {topic}")
    n_act = max(len(r.action) for r in rows)
    n_obs = max(len(r.observation) for r in rows)

    def padded(values: Any, n: int) -> list[float]:
        return list(values) if len(values) == n else [np.nan] * n

    return Ticks(
        t=np.array([stamp_seconds(r.header) for r in rows]), joint_names=tuple(rows[0].joint_names),
        q=np.array([r.position for r in rows], float), dq=np.array([r.velocity for r in rows], float),
        ee=np.array([_point(r.ee_position) for r in rows]), target=np.array([_point(r.target) for r in rows]),
        observation=np.array([padded(r.observation, n_obs) for r in rows], np.float32),
        action=np.array([padded(r.action, n_act) for r in rows], float),
        torque=np.array([padded(r.torque, n_act) for r in rows], float),
        reward=np.array([r.reward for r in rows], float), learning=np.array([r.learning for r in rows], bool),
        commanded=np.array([r.commanded for r in rows], bool), episode=np.array([r.episode for r in rows], int))
