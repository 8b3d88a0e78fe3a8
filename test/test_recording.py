"""MCAP recording: real rclpy messages in, the same fields out; a full queue drops and counts; a killed recorder's
file reads up to its last chunk."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from snn_sac_ros.adapters.ros.recording import RosRecorder
from snn_sac_ros.core.recording import messages, schemas
from snn_sac_ros.core.recording.reader import ReadResult, read_messages
from snn_sac_ros.core.recording.writer import McapRecorder

HERE = Path(__file__).parent


def _rclpy_messages() -> dict[str, object]:
    js = JointState(name=["shoulder", "elbow"], position=[0.1, -0.2], velocity=[1.5, 2.5], effort=[3.0, -4.0])
    js.header.stamp.sec, js.header.stamp.nanosec, js.header.frame_id = 12, 345, "base_link"
    target = PointStamped()
    target.header.frame_id, target.point.x, target.point.y, target.point.z = "base_link", 0.3, -0.4, 0.5
    pose = PoseStamped()
    pose.pose.position.x, pose.pose.orientation.z, pose.pose.orientation.w = 0.7, 0.6, 0.8
    status = DiagnosticStatus(level=DiagnosticStatus.WARN, name="snn_sac_controller: control loop", message="m",
                              hardware_id="shoulder,elbow", values=[KeyValue(key="recorder_dropped", value="3")])
    return {"/joint_states": js, "/effort_controller/commands": Float64MultiArray(data=[1.25, -2.5]),
            "/target": target, "/ee_pose": pose, "/diagnostics": DiagnosticArray(status=[status])}


def _same(ours: object, theirs: object) -> None:
    """Every field of the rclpy message ``theirs`` equals the decoded ``ours``, recursively."""
    for name in theirs.get_fields_and_field_types():
        a, b = getattr(ours, name), getattr(theirs, name)
        if hasattr(b, "get_fields_and_field_types"):
            _same(a, b)
        elif isinstance(b, list) and b and hasattr(b[0], "get_fields_and_field_types"):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                _same(x, y)
        elif isinstance(b, str | int | float | bytes):
            assert a == b or (isinstance(b, bytes) and a == b[0]), name
        else:
            assert list(np.ravel(a)) == list(np.ravel(b)), name


def test_rclpy_messages_decode_field_for_field(tmp_path: Path) -> None:
    """rclpy's CDR bytes, read back with our schemas: the schema texts match the real message layouts."""
    sent = _rclpy_messages()
    recorder = RosRecorder(tmp_path / "run.mcap")
    for i, (topic, msg) in enumerate(sent.items()):
        assert recorder.record(topic, msg, 1000 + i)
    assert recorder.tick({"t": 1.0, "joint_names": ("shoulder", "elbow"), "q": [0.1, -0.2], "dq": [1.5, 2.5],
                          "ee": [0.3, 0.1, 0.0], "target": [0.3, -0.4, 0.5], "observation": np.zeros(8, np.float32),
                          "action": np.array([0.5, -0.5]), "torque": [1.5, -0.75], "reward": -0.25, "learning": True,
                          "commanded": True, "episode": 3}, 2000)
    recorder.close()
    result = ReadResult()
    got = {m.topic: m for m in read_messages(tmp_path / "run.mcap", result=result)}
    assert result.complete and set(got) == {*sent, "/snn_sac_controller/tick"}
    tick = got.pop("/snn_sac_controller/tick").message
    assert tick.action == [0.5, -0.5] and tick.reward == -0.25 and tick.episode == 3
    for topic, msg in sent.items():
        assert got[topic].type_name == messages.TOPICS[topic].name
        _same(got[topic].message, msg)


def test_schemas_are_the_installed_interface_files() -> None:
    """Our definitions are the distro's .msg files without comments (where the message packages ship them)."""
    share = Path(sys.prefix) / "share"
    checked = 0
    for name in [n for n in schemas._DEFINITIONS if not n.startswith("snn_sac_ros/")]:
        path = share / f"{name}.msg"
        if not path.is_file():
            continue
        lines = [re.sub(r"\s+", " ", re.sub(r"#.*", "", line)).strip() for line in path.read_text().splitlines()]
        assert [x for x in lines if x] == schemas.definition(name).strip().splitlines(), name
        checked += 1
    if checked == 0:
        pytest.skip("no .msg files installed beside this Python")
    assert checked >= 10


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    recorder = McapRecorder(tmp_path / "flood.mcap", queue_size=4)
    channel = recorder.channel("/joint_states", messages.TOPICS["/joint_states"])
    n, slowest = 3000, 0.0
    for i in range(n):
        start = time.perf_counter()
        recorder.write(channel, messages.joint_state(i * 1e-3, ["a"], [i], [0], [0]), i)
        slowest = max(slowest, time.perf_counter() - start)
    recorder.close()
    assert recorder.dropped > 0 and recorder.written + recorder.dropped == n
    assert sum(1 for _ in read_messages(tmp_path / "flood.mcap")) == recorder.written
    assert slowest < 0.05  # a put, never a wait for the writer (generous: the machine may be loaded)
    assert not recorder.write(channel, messages.joint_state(0.0, ["a"], [0], [0], [0]), 0)  # closed: dropped
    assert recorder.error is None


def test_a_killed_recorder_leaves_a_file_readable_up_to_its_last_chunk(tmp_path: Path) -> None:
    """SIGKILL a recording process: every message queued more than a chunk's age before the kill is in the file,
    in order, with nothing missing before the cut."""
    path = tmp_path / "killed.mcap"
    child = subprocess.Popen([sys.executable, str(HERE / "record_until_killed.py"), str(path)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[tuple[float, int]] = []

    def read_stdout() -> None:
        for line in child.stdout:
            lines.append((time.monotonic(), int(line.split()[1])))

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while (not lines or lines[-1][1] < 1500) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert lines and lines[-1][1] >= 1500, "the recorder process did not get going"
    child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait(10)
    reader.join(5)
    safe = max(n for t, n in lines if t < killed_at - 0.4)  # queued 0.4 s before the kill; chunks close at 0.1 s
    result = ReadResult()
    seen = [m.message.position[0] for m in read_messages(path, result=result)]
    assert not result.complete  # no footer: the writer never finished
    assert seen == list(range(len(seen)))  # a prefix, nothing missing
    assert len(seen) > safe, (len(seen), safe)


def test_a_message_is_on_disk_within_flush_seconds_while_recording(tmp_path: Path) -> None:
    """A slow topic's chunk is closed by age and handed to the OS: another reader sees it before close()."""
    path = tmp_path / "slow.mcap"
    recorder = McapRecorder(path, flush_seconds=0.1)
    channel = recorder.channel("/diagnostics", messages.TOPICS["/diagnostics"])
    recorder.write(channel, messages.diagnostic_array(1.0, "arm_sim: physics loop", {"payload_kg": 2.0}), 10**9)
    deadline = time.monotonic() + 5.0
    seen: list = []
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = list(read_messages(path))
    recorder.close()
    assert [m.message.status[0].values[0].value for m in seen] == ["2.0"]


def test_a_paced_writer_waits_for_the_time_between_ticks_and_works_unpaced_when_pacing_stops(tmp_path: Path) -> None:
    """While the caller paces it with no time left before its next tick, nothing is encoded; given time, or no
    longer paced, the writer writes what waited (and drops nothing)."""
    recorder = McapRecorder(tmp_path / "paced.mcap", poll_seconds=0.05)
    channel = recorder.channel("/diagnostics", messages.TOPICS["/diagnostics"])
    message = messages.diagnostic_array(1.0, "arm_sim: physics loop", {"payload_kg": 2.0})
    recorder.pace(time.monotonic() - 1.0)
    for k in range(5):
        recorder.write(channel, message, 10**9 + k)
    for _ in range(20):  # ticks that leave no time: 0.3 s of pacing
        recorder.pace(time.monotonic() - 1.0)
        time.sleep(0.015)
    assert recorder.written == 0 and recorder.pending == 5
    recorder.pace(time.monotonic() + 1.0)  # a tick that leaves a second
    deadline = time.monotonic() + 5.0
    while recorder.written < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.written == 5
    recorder.pace(time.monotonic() - 1.0)
    recorder.write(channel, message, 2 * 10**9)  # then the ticks stop: unpaced after two polls
    while recorder.written < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder.close()
    assert recorder.written == 6 and recorder.dropped == 0
    assert len(list(read_messages(tmp_path / "paced.mcap"))) == 6


def test_a_held_writer_waits_although_an_earlier_tick_left_it_time(tmp_path: Path) -> None:
    """A late tick paces the writer until its own start plus a period; the next tick may start sooner (it is due
    then): once it holds the writer, nothing is encoded until it paces again."""
    recorder = McapRecorder(tmp_path / "held.mcap", poll_seconds=0.02)
    channel = recorder.channel("/diagnostics", messages.TOPICS["/diagnostics"])
    message = messages.diagnostic_array(1.0, "arm_sim: physics loop", {"payload_kg": 2.0})
    recorder.pace(time.monotonic() + 10.0)  # what the late tick left
    for k in range(15):  # ticks of 10 ms, each holding the writer first
        recorder.hold()
        recorder.write(channel, message, 10**9 + k)
        time.sleep(0.01)
    recorder.hold()
    assert recorder.written == 0 and recorder.pending == 15
    recorder.pace(time.monotonic() + 1.0)
    recorder.close()
    assert recorder.written == 15 and recorder.dropped == 0


def test_a_namespaced_recording_reads_as_the_default_topics(tmp_path: Path) -> None:
    """A controller in a namespace records /arm1/...: the reader and load_ticks find those topics by their default
    names, and a topic that only shares a suffix's letters is not taken for one."""
    from snn_sac_ros.core.recording.reader import load_ticks, matching_topic

    path = tmp_path / "namespaced.mcap"
    fields = {"t": 0.5, "joint_names": ("a",), "q": np.array([0.25]), "dq": [0.0], "ee": [1, 2, 3],
              "target": [0, 0, 0], "observation": np.zeros(4, np.float32), "action": None, "torque": [0.0],
              "reward": None, "learning": False, "commanded": True, "episode": 0}
    with McapRecorder(path) as recorder:
        tick = recorder.channel("/arm1/snn_sac_controller/tick", messages.TOPICS["/snn_sac_controller/tick"],
                                build=lambda f: messages.tick_record(**f))
        other = recorder.channel("/arm1/xsnn_sac_controller/tick", messages.TOPICS["/snn_sac_controller/tick"],
                                 build=lambda f: messages.tick_record(**f))
        for k in range(3):
            recorder.write(tick, {**fields, "t": 0.5 + k}, 10**9 + k)
        recorder.write(other, fields, 2 * 10**9)
    assert load_ticks(path).t.tolist() == [0.5, 1.5, 2.5]
    found = list(read_messages(path, ["/snn_sac_controller/tick"]))
    assert {(m.topic, m.asked_as) for m in found} == {("/arm1/snn_sac_controller/tick", "/snn_sac_controller/tick")}
    assert matching_topic("/joint_states", ["/joint_states"]) == "/joint_states"
    assert matching_topic("/robot/joint_states", ["/target", "/joint_states"]) == "/joint_states"
    assert matching_topic("/xjoint_states", ["/joint_states"]) is None


def test_a_channel_can_build_its_messages_in_the_writer_thread(tmp_path: Path) -> None:
    """The caller hands over the tick's arrays; the recorder builds the TickRecord and encodes it."""
    path = tmp_path / "ticks.mcap"
    with McapRecorder(path) as recorder:
        channel = recorder.channel("/snn_sac_controller/tick", messages.TOPICS["/snn_sac_controller/tick"],
                                   build=lambda fields: messages.tick_record(**fields))
        recorder.write(channel, {"t": 0.5, "joint_names": ("a",), "q": np.array([0.25]), "dq": [0.0], "ee": [1, 2, 3],
                                 "target": [0, 0, 0], "observation": np.zeros(4, np.float32), "action": None,
                                 "torque": [0.0], "reward": None, "learning": False, "commanded": False,
                                 "episode": 7}, 5 * 10**8)
    (tick,) = [m.message for m in read_messages(path)]
    assert tick.position == [0.25] and tick.action == [] and np.isnan(tick.reward) and tick.episode == 7


def test_the_fast_encoders_write_what_rclpy_reads_and_the_schema_encoder_writes() -> None:
    """The per-tick messages, packed by the core's CDR encoders: rclpy deserializes them into the messages they came
    from (joint states with and without empty arrays and frame ids; commands; byte equality is no test, rclpy leaves
    its padding bytes unset), and tick records are byte for byte what the schema's encoder writes."""
    from mcap_ros2._dynamic import serialize_dynamic
    from rclpy.serialization import deserialize_message

    from snn_sac_ros.adapters.ros.recording import FAST_ENCODERS
    from snn_sac_ros.core.recording import cdr

    for msg in _joint_states():
        assert deserialize_message(FAST_ENCODERS["sensor_msgs/msg/JointState"](msg), JointState) == msg
    for data in ([], [1.25, -2.5], [1e300] * 7):
        msg = Float64MultiArray(data=data)
        assert deserialize_message(FAST_ENCODERS["std_msgs/msg/Float64MultiArray"](msg), Float64MultiArray) == msg
    encode = serialize_dynamic(schemas.TICK_RECORD.name, schemas.TICK_RECORD.text)[schemas.TICK_RECORD.name]
    for action, reward, obs in ((np.array([0.5, -0.5]), -0.25, np.arange(8, dtype=np.float32)), (None, None, [])):
        fields = {"t": 1234.5678, "joint_names": ("shoulder", "elbow"), "q": [0.1, -0.2], "dq": np.array([1.5, 2.5]),
                  "ee": [0.3, 0.1, 0.0], "target": np.array([0.3, -0.4, 0.5]), "observation": obs, "action": action,
                  "torque": [1.5, -0.75], "reward": reward, "learning": True, "commanded": False, "episode": 3}
        assert cdr.tick_record(**fields) == encode(messages.tick_record(**fields))


def _joint_states() -> list[JointState]:
    """Joint states with and without empty arrays and frame ids, and names whose lengths need padding."""
    states = [_rclpy_messages()["/joint_states"], JointState(name=["a", "bc", "def"], position=[1.0, 2.0, 3.0]),
              JointState(), JointState(name=["j"], velocity=[-1.5], effort=[2.0]),
              JointState(name=["lbr_iiwa_joint_1", "gelenk_ä"], position=[0.5, -0.5], velocity=[0.0, 1e-300])]
    states[1].header.stamp.sec, states[1].header.stamp.nanosec = 1_700_000_000, 999_999_999
    states[2].header.frame_id = "odd"
    return states


def test_the_joint_state_decoder_reads_what_rclpy_serializes() -> None:
    """Field for field what rclpy deserializes, from rclpy's own bytes (whose padding it leaves unset); names that
    change between two messages are read anew, names that repeat come back as the same tuple."""
    from rclpy.serialization import serialize_message

    from snn_sac_ros.core.recording.cdr import JointStateDecoder

    decode = JointStateDecoder()
    states = _joint_states()
    for msg in states + states[::-1]:
        view = decode(serialize_message(msg))
        assert view is not None
        assert (view.header.stamp.sec, view.header.stamp.nanosec, view.header.frame_id) == (
            msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
        assert list(view.name) == list(msg.name)
        for field in ("position", "velocity", "effort"):
            assert getattr(view, field).tolist() == list(getattr(msg, field)), field
    first, second = (decode(serialize_message(states[0])) for _ in range(2))
    assert second.name is first.name


def test_the_joint_state_decoder_leaves_what_it_does_not_read_to_rclpy() -> None:
    """Big-endian CDR and cut-off bytes give None (the subscription then deserializes them with rclpy)."""
    from rclpy.serialization import serialize_message

    from snn_sac_ros.core.recording.cdr import JointStateDecoder

    data = serialize_message(_joint_states()[0])
    decode = JointStateDecoder()
    assert decode(b"\x00\x00" + data[2:]) is None
    for end in (10, 20, 40, len(data) - 4):
        assert decode(data[:end]) is None, end


def test_a_recording_never_overwrites_another(tmp_path: Path) -> None:
    """A second configure with the same record_path (after a cleanup, or a second run) records beside the first."""
    from snn_sac_ros.adapters.ros.recording import unused_path

    path = tmp_path / "my-run.mcap"
    assert unused_path(path) == path
    path.write_bytes(b"first")
    assert unused_path(path) == tmp_path / "my-run-2.mcap"
    (tmp_path / "my-run-2.mcap").write_bytes(b"second")
    assert unused_path(path) == tmp_path / "my-run-3.mcap"
