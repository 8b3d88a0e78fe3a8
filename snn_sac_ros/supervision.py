"""Node processes started by a command (the demo, the benchmarks): watched, and stopped together.

When one node dies or fails to start, the others must not run on, orphaned: :class:`Supervisor` notices
the first exit, stops every node it started (SIGINT as Ctrl-C under ``ros2 launch``, then SIGKILL for any
that hang) and raises :class:`NodeFailedError`, which names the node, its exit code and the last lines of its
log. The command then exits non-zero. Plain Python: no ROS import.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: lines of a failed node's log shown in the error
LOG_TAIL_LINES = 25


class NodeFailedError(RuntimeError):
    """A supervised node exited (or never started) while the others were meant to run."""

    def __init__(self, name: str, code: int | None, log_tail: str, log: Path | None) -> None:
        how = "did not start" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
        where = f" (log: {log})" if log else ""
        super().__init__(f"node {name} {how}{where}; the other nodes were stopped. Last lines of its log:\n"
                         f"{log_tail or '(empty)'}")
        self.name, self.code, self.log_tail = name, code, log_tail


def tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Supervisor:
    """Starts node processes with their output in log files, watches them, stops them all.

    Use as a context manager: leaving it stops every process still running, whatever happened.
    ``finishers`` are nodes whose own exit is the end of the job (``reach_targets``), not a failure, as
    long as it is a clean one (code 0).
    """

    def __init__(self, env: dict[str, str] | None = None, finishers: Sequence[str] = ()) -> None:
        self.env = env
        self.finishers = set(finishers)
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path | None] = {}
        self.codes: dict[str, int] = {}

    def start(self, name: str, command: Sequence[str], log: Path | None = None) -> subprocess.Popen:
        """Start ``command`` as node ``name``, its stdout and stderr in ``log`` (discarded when None)."""
        handle = open(log, "w") if log is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(list(command), stdout=handle, stderr=subprocess.STDOUT, env=self.env)
        except OSError as error:
            self.stop_all()
            raise NodeFailedError(name, None, f"{command[0]}: {error}", log) from None
        finally:
            if log is not None:
                handle.close()  # the child holds its own copy
        self.processes[name], self.logs[name] = process, log
        return process

    def failed(self) -> NodeFailedError | None:
        """The first node that exited when it should not have (None while all run or finished cleanly)."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is None or (name in self.finishers and code == 0):
                continue
            return NodeFailedError(name, code, tail(self.logs[name]), self.logs[name])
        return None

    def check(self) -> None:
        """Raise :class:`NodeFailedError` (after stopping everything) if a node exited when it should not have."""
        failure = self.failed()
        if failure is not None:
            self.stop_all()
            raise failure

    def running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str,
                   step: Callable[[], None] | None = None) -> None:
        """Until ``predicate()`` holds: ``step()`` (or a short sleep) and :meth:`check`; TimeoutError after
        ``timeout`` seconds (everything stopped first)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check()
            if time.monotonic() > deadline:
                self.stop_all()
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            if step is not None:
                step()
            else:
                time.sleep(0.05)

    def stop_all(self, timeout: float = 15.0) -> dict[str, int]:
        """SIGINT every running node, then SIGKILL any still running after ``timeout``; every exit code."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            try:
                self.codes[name] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                self.codes[name] = process.wait()
        return dict(self.codes)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
