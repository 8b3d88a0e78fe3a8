"""``snn-sac-ros demo`` and the benchmarks that start nodes: when a node fails to start or dies, every node is
stopped, the failed one is named with the end of its log, the command exits non-zero, and no node process
is left behind (checked by the PIDs the command started, read from /proc while it runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

Process = tuple[int, str]  # pid, start time (field 22 of /proc/<pid>/stat): a pid may be reused


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces


def _children(parent: int) -> dict[Process, str]:
    """The running children of ``parent``: (pid, start time) -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[1]) == parent:
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found[(int(entry.name), fields[19])] = command
    return found


def _alive(process: Process) -> bool:
    fields = _stat(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] != "Z"


class Command:
    """``snn-sac-ros ARGS`` in a process of its own, with the node processes it starts recorded by PID."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "snn_sac_ros.cli", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "OMP_NUM_THREADS": "1"})
        self.nodes: dict[Process, str] = {}

    def watch_until(self, predicate: object, timeout: float, what: str) -> None:
        """Record the command's children every 20 ms until ``predicate()`` (or the command's exit)."""
        deadline = time.monotonic() + timeout
        while not predicate() and self.process.poll() is None:
            self.nodes.update({p: c for p, c in _children(self.process.pid).items() if "snn_sac_ros.adapters" in c})
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.02)

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        self.watch_until(lambda: False, timeout, "the command to exit")
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err

    def node(self, module: str) -> Process:
        return next(p for p, c in self.nodes.items() if module in c)


def _assert_failed_cleanly(command: Command, code: int, err: str, node: str, why: str) -> None:
    assert code == 3, f"exit code {code}:\n{err[-3000:]}"
    assert f"node {node} {why}" in err and "the other nodes were stopped" in err, err[-3000:]
    assert len(command.nodes) == 3, f"expected arm_sim, the controller and reach_targets: {command.nodes}"
    time.sleep(0.5)  # an orphan would still run now, reparented
    left = {p: c for p, c in command.nodes.items() if _alive(p)}
    assert not left, f"node processes left running: {left}"


@pytest.mark.parametrize("job", [["demo", "--reaches", "2", "--reach-seconds", "1"],
                                 ["bench", "soak", "--sim-minutes", "0.2", "--sample-s", "1"]],
                         ids=["demo", "bench_soak"])
def test_a_node_that_fails_to_start_stops_every_node_and_fails_the_command(job: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "no_such_checkpoint.npz"
    command = Command(*job, "--checkpoint", str(missing), "--out", str(tmp_path / "out"))
    code, _, err = command.finish()
    _assert_failed_cleanly(command, code, err, "snn_sac_controller", "exited with code 2")
    # the end of its log says why
    assert f"checkpoint not found: {missing}" in err and "cannot start" in err, err[-3000:]


def test_a_node_that_dies_during_the_demo_stops_every_node_and_fails_the_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = Command("demo", "--reaches", "20", "--reach-seconds", "3", "--out", str(out))
    log = out / "snn_sac_controller.log"
    command.watch_until(lambda: log.exists() and "active: commanding torques" in log.read_text(), 120,
                        "the controller to become active")
    assert command.process.poll() is None, command.process.communicate()
    os.kill(command.node("sim_node")[0], signal.SIGKILL)
    code, _, err = command.finish()
    _assert_failed_cleanly(command, code, err, "arm_sim", "was killed by signal 9")


def test_the_demo_records_its_run_and_draws_its_plots_from_the_recording(tmp_path: Path) -> None:
    """run.mcap in the output folder, complete, with at least 99 % of the commands the controller published and a
    tick record per policy tick; the plots come from it (no recording.npz); the summary reports the cost."""
    import json
    import re

    from snn_sac_ros.core.recording.reader import ReadResult, load_ticks, read_messages

    out = tmp_path / "out"
    code, stdout, err = Command("demo", "--reaches", "2", "--reach-seconds", "1", "--out", str(out), "--json",
                                "--no-learning").finish(timeout=300)
    assert code == 0, err[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["recording"] == str(out / "run.mcap") and result["recording_complete"]
    assert result["cost"]["spikes"] > 0 and result["cost"]["loihi_nj"] > 0 and result["cost"]["cpu_nj"] > 0
    assert "cost of a tick" in stdout
    assert not (out / "recording.npz").exists()
    assert {"distance.png", "torques.png"} <= {Path(p).name for p in result["plots"]}
    assert result["frames"] and result["animation"] == str(out / "reaches.gif")
    from PIL import Image

    with Image.open(out / "reaches.gif") as gif:
        assert gif.n_frames == len(result["frames"])
    closed = re.search(r"recording closed: \d+ messages written to .+, (\d+) dropped; (\d+) commands published",
                       (out / "snn_sac_controller.log").read_text())
    assert closed and int(closed[1]) == 0
    read = ReadResult()
    topics = [m.topic for m in read_messages(out / "run.mcap", result=read)]
    assert read.complete and topics.count("/effort_controller/commands") >= 0.99 * int(closed[2]) > 0
    assert len(load_ticks(out / "run.mcap")) > 100 and topics.count("/joint_states") > 100
