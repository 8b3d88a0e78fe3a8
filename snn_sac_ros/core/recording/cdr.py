"""CDR encoders for the messages a controller records on every tick: joint states, effort commands, tick records.

The recorder's writer thread shares the GIL with the control loop, so what it spends per message is time the loop
may wait for. rclpy's ``serialize_message`` (about 40 us for a JointState: it converts the Python message to a C
one first) and mcap-ros2-support's generic encoder (about 50 us for a tick record) cost 10 times what packing the
few fields directly costs. These write plain CDR, little endian, as ROS 2 puts on the wire, for these types only: rclpy
deserializes what they write into the messages they came from (rclpy's own bytes differ only in the padding, which
it leaves unset), and tick records are byte for byte the generic encoder's.

:class:`JointStateDecoder` goes the other way for the controller's input: rclpy's deserialization builds a Python
message (about 45 us for a JointState, at every state); the decoder reads the fields the controller uses straight
from the bytes (the values as NumPy views on them, the names decoded once for as long as they repeat).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

_HEADER = b"\x00\x01\x00\x00"  # CDR little endian encapsulation
_U32, _STAMP = struct.Struct("<I"), struct.Struct("<iI")


def _aligned(offset: int, n: int) -> int:
    return offset + (-(offset - 4) % n)  # alignment counts from after the encapsulation header


class _Buffer:
    """A CDR byte stream; alignment is counted from after the encapsulation header."""

    def __init__(self) -> None:
        self.buf = bytearray(_HEADER)

    def align(self, n: int) -> None:
        pad = _aligned(len(self.buf), n) - len(self.buf)
        if pad:
            self.buf += b"\x00" * pad

    def u32(self, value: int) -> None:
        self.align(4)
        self.buf += _U32.pack(value)

    def stamp(self, sec: int, nanosec: int) -> None:
        self.align(4)
        self.buf += _STAMP.pack(sec, nanosec)

    def string(self, text: str) -> None:
        data = text.encode()
        self.u32(len(data) + 1)
        self.buf += data
        self.buf += b"\x00"

    def strings(self, texts: Sequence[str]) -> None:
        self.u32(len(texts))
        for text in texts:
            self.string(text)

    def doubles(self, values: Any, sequence: bool = True) -> None:
        values = values.tolist() if isinstance(values, np.ndarray) else values  # struct packs lists fastest
        n = len(values)
        if sequence:
            self.u32(n)
        if n:
            self.align(8)
            self.buf += struct.pack(f"<{n}d", *values)

    def floats(self, values: Any) -> None:
        values = values.tolist() if isinstance(values, np.ndarray) else values
        n = len(values)
        self.u32(n)
        if n:
            self.buf += struct.pack(f"<{n}f", *values)  # 4-aligned after the count

    def raw(self, fmt: str, *values: Any, alignment: int = 1) -> None:
        self.align(alignment)
        self.buf += struct.pack("<" + fmt, *values)

    def bytes(self) -> bytes:
        return bytes(self.buf)


def split_stamp(t: float) -> tuple[int, int]:
    """``t`` seconds as ``(sec, nanosec)``."""
    ns = round(t * 1e9)
    return ns // 1_000_000_000, ns % 1_000_000_000


def joint_state(sec: int, nanosec: int, *, frame_id: str, names: Sequence[str], position: Any, velocity: Any,
                effort: Any) -> bytes:
    """A ``sensor_msgs/msg/JointState``."""
    b = _Buffer()
    b.stamp(sec, nanosec)
    b.string(frame_id)
    b.strings(names)
    for values in (position, velocity, effort):
        b.doubles(values)
    return b.bytes()


def float64_array(data: Any) -> bytes:
    """A ``std_msgs/msg/Float64MultiArray`` with an empty layout (no dimensions, data_offset 0)."""
    b = _Buffer()
    b.u32(0)  # layout.dim: none
    b.u32(0)  # layout.data_offset
    b.doubles(data)
    return b.bytes()


def tick_record(t: float, *, joint_names: Sequence[str], q: Any, dq: Any, ee: Any, target: Any, observation: Any,
                action: Any | None, torque: Any, reward: float | None, learning: bool, commanded: bool,
                episode: int) -> bytes:
    """A ``snn_sac_ros/msg/TickRecord`` from :func:`~.messages.tick_record`'s arguments."""
    b = _Buffer()
    b.stamp(*split_stamp(t))
    b.string("")
    b.strings(joint_names)
    b.doubles(q)
    b.doubles(dq)
    b.doubles(ee, sequence=False)
    b.doubles(target, sequence=False)
    b.floats(observation)
    b.doubles([] if action is None else action)
    b.doubles(torque)
    b.raw("d", float("nan") if reward is None else float(reward), alignment=8)
    b.raw("??", bool(learning), bool(commanded))
    b.raw("I", int(episode), alignment=4)
    return b.bytes()


class Stamp(NamedTuple):
    sec: int
    nanosec: int


class Header(NamedTuple):
    stamp: Stamp
    frame_id: str


class JointStateView(NamedTuple):
    """A ``sensor_msgs/msg/JointState`` read from its CDR bytes (``serialized``): the message's fields, the values
    as read-only float64 arrays on those bytes."""

    header: Header
    name: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    serialized: bytes


class JointStateDecoder:
    """Reads JointState CDR bytes into a :class:`JointStateView`; None for bytes it does not read (not plain
    little-endian CDR, or malformed): the caller then deserializes them the usual way, whose error says why."""

    def __init__(self) -> None:
        self._names_bytes = b""
        self._names: tuple[str, ...] = ()

    def __call__(self, data: bytes) -> JointStateView | None:
        if data[:2] != _HEADER[:2]:
            return None
        try:
            sec, nanosec = _STAMP.unpack_from(data, 4)
            (length,) = _U32.unpack_from(data, 12)
            frame_id = data[16:15 + length].decode() if length else ""
            offset, names = self._read_names(data, _aligned(16 + length, 4))
            arrays = []
            for _ in range(3):  # position, velocity, effort
                offset = _aligned(offset, 4)
                (count,) = _U32.unpack_from(data, offset)
                offset += 4
                if count:
                    offset = _aligned(offset, 8)
                arrays.append(np.frombuffer(data, "<f8", count, offset))
                offset += 8 * count
        except (struct.error, ValueError, UnicodeDecodeError):
            return None
        return JointStateView(Header(Stamp(sec, nanosec), frame_id), names, *arrays, data)

    def _read_names(self, data: bytes, start: int) -> tuple[int, tuple[str, ...]]:
        """The offset after the names (their count and strings) at ``start``, and the names: the last ones again,
        not decoded, when their bytes are the same."""
        if self._names_bytes and data.startswith(self._names_bytes, start):
            return start + len(self._names_bytes), self._names
        (count,) = _U32.unpack_from(data, start)
        names, offset = [], start + 4
        for _ in range(count):
            offset = _aligned(offset, 4)
            (length,) = _U32.unpack_from(data, offset)
            if offset + 4 + length > len(data):
                raise ValueError("a joint name runs past the message's end")
            names.append(data[offset + 4:offset + 3 + length].decode())
            offset += 4 + length
        self._names_bytes, self._names = data[start:offset], tuple(names)
        return offset, self._names
