"""An MCAP recorder that never delays its caller: a writer thread, a bounded queue, and a count of what it dropped.

:meth:`McapRecorder.write` only appends ``(channel, message, time)`` to a bounded queue (a deque: no lock, no
wake-up of the writer); a full queue drops the record and counts it (:attr:`McapRecorder.dropped`, for
``/diagnostics``). The thread wakes every ``poll_seconds``, encodes (CDR) and writes what is queued: woken on every
message instead, it took the GIL from its caller on every message (a put then cost about 10 us instead of 0.3).
A periodic caller (a control tick) can pace it: :meth:`McapRecorder.hold` as each tick starts and
:meth:`McapRecorder.pace` after it let it work only between ticks, until the next is due, so encoding never takes
the GIL from a tick (unpaced, it raised a 1 kHz tick's p99 by about a quarter). Both are needed: a tick that starts
on time after a late one would otherwise find the writer still in the time the late one left it. It works unpaced
again when the caller stops pacing, or when half the queue is full.
Messages arrive either as CDR bytes (an adapter serialized them, e.g. with ``rclpy.serialization``), through a
channel's own ``encode`` function, or as plain dicts / objects encoded from the channel's schema by
``mcap-ros2-support``'s encoder, so this module needs no ROS.

Crash safety: messages are grouped in chunks (``chunk_size`` bytes, or ``flush_seconds`` of messages, whichever
comes first) and each finished chunk goes straight to the operating system, so a process killed mid-run (SIGKILL,
power cut excepted) leaves a file readable up to its last complete chunk (:func:`~.reader.read_messages`). Only a
clean :meth:`close` writes the summary and footer that seeking readers use.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mcap.writer import CompressionType, Writer
from mcap_ros2._dynamic import serialize_dynamic

from snn_sac_ros.core.recording.schemas import MessageSchema, qos_yaml

_STOP = object()


@dataclass(frozen=True)
class Channel:
    """A topic to record: its name, type, QoS as rosbag2 records it, and how its messages become CDR bytes."""

    id: int
    topic: str
    schema: MessageSchema
    qos: str = field(default_factory=qos_yaml)
    encode: Callable[[Any], bytes] | None = None
    build: Callable[[Any], Any] | None = None
    """turns what :meth:`McapRecorder.write` was given into the message, in the writer thread (so a caller can
    hand over a tuple of arrays and leave building the message to the recorder)"""


class _ToDisk:
    """A stream that hands every write to the operating system at once: the MCAP writer writes once per chunk."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        n = self.handle.write(data)
        self.handle.flush()
        return n

    def tell(self) -> int:
        return self.handle.tell()


class McapRecorder:
    """Records ROS 2 messages into an MCAP file (``ros2`` profile) from any thread, without blocking.

    Parameters
    ----------
    path: the ``.mcap`` file (its folder is made).
    queue_size: records that may wait for the writer thread; beyond it they are dropped and counted (writers in
        several threads may overshoot it by one each).
    chunk_size: bytes of messages per chunk (what a crash may lose at most, with ``flush_seconds``).
    flush_seconds: a chunk is also closed when its first message is this old [s].
    compression: ``"zstd"``, ``"lz4"`` or ``"none"`` per chunk.
    poll_seconds: how often the writer thread takes what is queued [s].
    metadata: ``{name: {key: value}}`` metadata records written at the start (e.g. the run's settings).
    """

    def __init__(self, path: str | Path, *, queue_size: int = 20_000, chunk_size: int = 256 * 1024,
                 flush_seconds: float = 0.5, compression: str = "zstd",
                 metadata: dict[str, dict[str, str]] | None = None, poll_seconds: float = 0.01) -> None:
        if queue_size < 1 or chunk_size < 1 or not flush_seconds > 0 or not poll_seconds > 0:
            raise ValueError("queue_size and chunk_size must be >= 1, flush_seconds and poll_seconds > 0")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # closed by the writer thread
        self._writer = Writer(_ToDisk(self._file), chunk_size=chunk_size,
                              compression=CompressionType[compression.upper()])
        # the MCAP writer closes a chunk only when it is full; a chunk that is old enough is closed here
        self._finish_chunk: Callable[[], None] = self._writer._Writer__finalize_chunk  # type: ignore[attr-defined]
        self._writer.start(profile="ros2", library="snn_sac_ros")
        for name, values in (metadata or {}).items():
            self._writer.add_metadata(name, {k: str(v) for k, v in values.items()})
        self._queue: deque = deque()
        self._queue_size = int(queue_size)
        self._wake = threading.Event()  # set by pace() and close()
        self._poll = min(float(poll_seconds), float(flush_seconds))
        self._flush_seconds = float(flush_seconds)
        self._channels: list[Channel] = []
        self._registered: dict[int, int] = {}  # our channel id -> the file's channel id
        self._schema_ids: dict[str, int] = {}
        self._encoders: dict[str, Callable[[Any], bytes]] = {}
        self._lock = threading.Lock()
        self._until = 0.0  # paced: the writer works until this time (monotonic s)
        self._paced_at = -float("inf")  # when the caller last paced it
        self.dropped = 0
        self.written = 0
        self.error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mcap_recorder", daemon=True)
        self._thread.start()

    # --- the caller's side ------------------------------------------------------------------------------

    def channel(self, topic: str, schema: MessageSchema, *, qos: str | None = None,
                encode: Callable[[Any], bytes] | None = None, build: Callable[[Any], Any] | None = None) -> Channel:
        """A channel to :meth:`write` to (registered in the file with its first message); see :class:`Channel`."""
        with self._lock:
            ch = Channel(len(self._channels), topic, schema, qos or qos_yaml(), encode, build)
            self._channels.append(ch)
        return ch

    def write(self, channel: Channel, message: Any, log_time_ns: int, publish_time_ns: int | None = None) -> bool:
        """Queue one message; False (and one more :attr:`dropped`) when the queue is full or the recorder closed.

        ``log_time_ns``: the time it was received [ns] (rosbag2 plays messages in this order); ``message``: CDR
        bytes, or what the channel's ``encode`` or the schema's encoder takes (a dict or an object with the fields).
        """
        if self._closed or len(self._queue) >= self._queue_size:
            self.dropped += 1
            return False
        self._queue.append((channel, message, int(log_time_ns),
                            int(log_time_ns if publish_time_ns is None else publish_time_ns)))
        return True

    def pace(self, until: float) -> None:
        """The caller's next time-critical work starts at ``until`` (``time.monotonic()`` seconds): the writer
        works now and stops by then. Call it from the periodic caller (a tick), right after its work."""
        self._until = until
        self._paced_at = time.monotonic()
        self._wake.set()

    def hold(self) -> None:
        """The caller's time-critical work starts now: the writer stops after the message it is writing, until the
        next :meth:`pace`. Call it from the periodic caller (a tick), first thing."""
        self._until = 0.0
        self._paced_at = time.monotonic()

    def _may_work(self) -> bool:
        """Paced: only until the caller's next tick, unless the caller stopped pacing or the queue is half full."""
        now = time.monotonic()
        return (now < self._until or now - self._paced_at > 2 * self._poll or self._closed
                or len(self._queue) * 2 >= self._queue_size)

    @property
    def pending(self) -> int:
        """Records queued, not yet written."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """Closed, or stopped by an error (:attr:`error`): writes are dropped."""
        return self._closed

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then the summary and footer; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.append(_STOP)
        self._wake.set()
        self._thread.join(timeout)

    def __enter__(self) -> McapRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        chunk_started: float | None = None
        queued = self._queue
        try:
            stop = False
            while not stop:
                while queued and self._may_work():
                    item = queued.popleft()
                    if item is _STOP:
                        stop = True
                        break
                    self._write(*item)
                    chunk_started = chunk_started or time.monotonic()
                if (chunk_started is not None and time.monotonic() - chunk_started >= self._flush_seconds
                        and (stop or self._may_work())):
                    self._finish_chunk()
                    chunk_started = None
                if not stop:
                    self._wake.wait(self._poll)
                    self._wake.clear()
            self._writer.finish()
        except Exception as error:  # a full disk, an unencodable message: stop recording, say why
            self.error = f"{type(error).__name__}: {error}"
            self._closed = True
        finally:
            self._file.close()

    def _write(self, channel: Channel, message: Any, log_time: int, publish_time: int) -> None:
        if channel.id not in self._registered:
            schema = channel.schema
            if schema.name not in self._schema_ids:
                self._schema_ids[schema.name] = self._writer.register_schema(schema.name, schema.encoding,
                                                                             schema.text.encode())
            schema_id = self._schema_ids[schema.name]
            self._registered[channel.id] = self._writer.register_channel(
                channel.topic, "cdr", schema_id, metadata={"offered_qos_profiles": channel.qos})
        if channel.build is not None:
            message = channel.build(message)
        if isinstance(message, bytes | bytearray | memoryview):
            data = bytes(message)
        elif channel.encode is not None:
            data = channel.encode(message)
        else:
            data = self._encoder(channel.schema)(message)
        self._writer.add_message(self._registered[channel.id], log_time, data, publish_time)
        self.written += 1

    def _encoder(self, schema: MessageSchema) -> Callable[[Any], bytes]:
        encoder = self._encoders.get(schema.name)
        if encoder is None:
            encoder = self._encoders[schema.name] = serialize_dynamic(schema.name, schema.text)[schema.name]
        return encoder
