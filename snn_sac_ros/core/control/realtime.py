"""A control thread at a fixed rate on the steady clock, and the OS settings a real-time loop asks for.

No ROS here: the controller node hands :class:`ControlLoop` its tick and says what to log. The loop sleeps to
absolute deadlines (``time.monotonic``), so a late tick does not shift the ones after it; a tick that comes
a whole period or more late skips the periods it missed (counted in ``skipped``) instead of running them in
a burst.

With ``wait_for_state(timeout)`` the loop's own thread waits for the joint states and takes them (the ROS
adapter takes them from a subscription no executor serves): no other thread runs Python per state, so a
state never waits for the GIL a tick holds, and between ticks the loop waits on states instead of sleeping.
With ``on_state`` as well it ticks when ``wait_for_state`` returns True (a state came), and on the clock only
when none came for 1.5 periods. Every tick steps the network by one period, so states that come faster than the
rate, or in a burst, do not each get a tick: :class:`TickBudget` holds the ticks to the rate.

The OS settings are those of ros2_control's controller manager (``thread_priority``, ``cpu_affinity``,
``lock_memory``): each returns ``""`` when applied, else the reason the OS gave, never raises: a controller
that may not run as real time still controls, and says so. :func:`rt_throttling` says when the kernel would
still stop a SCHED_FIFO thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: With ``on_state``, the clock ticks only after this many periods without a state.
STATE_FALLBACK_PERIODS = 1.5
#: With ``on_state``, the most ticks one burst of states may get beyond the rate (late states catching up).
STATE_BURST_TICKS = 2.0
_MCL_CURRENT, _MCL_FUTURE = 1, 2


def _why(error: OSError, what: str) -> str:
    hint = {errno.EPERM: " (not permitted: needs root or CAP_SYS_NICE, e.g. a container started with "
                         "--cap-add=sys_nice, or an rtprio limit in /etc/security/limits.conf)",
            errno.EINVAL: " (invalid value for this system)"}.get(error.errno, "")
    return f"{what}: {os.strerror(error.errno) if error.errno else error}{hint}"


def set_thread_priority(priority: int) -> str:
    """SCHED_FIFO at ``priority`` (1-99) for the calling thread; '' when set, else why not."""
    if not hasattr(os, "sched_setscheduler"):
        return "SCHED_FIFO is not available on this OS"
    low, high = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not low <= priority <= high:
        return f"SCHED_FIFO priority {priority} refused: this OS allows {low} to {high}"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # pid 0: this thread, on Linux
    except OSError as error:
        return _why(error, f"SCHED_FIFO priority {priority} refused")
    return ""


def take_thread_priority(priority: int) -> tuple[str, str]:
    """SCHED_FIFO at ``priority`` for the calling thread: ``(refusal, throttling)``, the refusal '' when set, and
    when set the kernel's throttling that may still stop the thread (:func:`rt_throttling`), both for the log."""
    refusal = set_thread_priority(priority)
    return refusal, "" if refusal else rt_throttling()


def rt_throttling(proc: str | os.PathLike[str] = "/proc/sys/kernel") -> str:
    """The kernel's real-time throttling, when it is on: a sentence to log; '' when off or unknown.

    Linux lets SCHED_FIFO threads use ``sched_rt_runtime_us`` of each ``sched_rt_period_us`` on a CPU (950 of
    1000 ms by default), then stops them for the rest of the period. Where the real-time threads (a control
    thread, a driver, a simulated arm) keep a CPU that busy, a 1 kHz loop stalls for ~50 ms once a second."""
    try:
        runtime = int(Path(proc, "sched_rt_runtime_us").read_text())
        period = int(Path(proc, "sched_rt_period_us").read_text())
    except (OSError, ValueError):
        return ""
    if runtime < 0 or runtime >= period:
        return ""
    return (f"the kernel's real-time throttling is on (sched_rt_runtime_us {runtime} of sched_rt_period_us "
            f"{period}): where SCHED_FIFO threads keep a CPU busy, they are stopped for "
            f"{(period - runtime) / 1000:g} ms every {period / 1e6:g} s; on a real-time machine set "
            "kernel.sched_rt_runtime_us = -1 (sysctl)")


def set_thread_affinity(cpus: Sequence[int]) -> str:
    """Pin the calling thread to ``cpus``; '' when set, else why not.

    ``cpus`` may lie outside the mask the process started with: a node started under ``taskset -c 0`` (the rest of
    it kept off the control core) pins its control thread to core 1. Only CPUs that do not exist, or that the
    process's cpuset forbids (the kernel's refusal), are refused."""
    if not hasattr(os, "sched_setaffinity"):
        return "CPU affinity is not available on this OS"
    count = os.cpu_count() or 1
    missing = sorted(c for c in set(cpus) if not 0 <= c < count)
    if missing or not cpus:
        return f"CPU affinity {list(cpus)} refused: this machine has CPUs 0-{count - 1}"
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError as error:
        return _why(error, f"CPU affinity {list(cpus)} refused")
    return ""


def lock_memory() -> str:
    """mlockall(MCL_CURRENT | MCL_FUTURE) for the process: no page fault stalls a tick; '' when locked."""
    name = ctypes.util.find_library("c")
    if name is None:
        return "memory lock refused: no C library found"
    libc = ctypes.CDLL(name, use_errno=True)
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
        code = ctypes.get_errno()
        hint = " (RLIMIT_MEMLOCK too low: ulimit -l, or CAP_IPC_LOCK)" if code in (errno.ENOMEM, errno.EPERM) else ""
        return f"memory lock refused: {os.strerror(code)}{hint}"
    return ""


class TickBudget:
    """Holds ticks that follow the joint states to the control rate: a token bucket that fills at one tick per
    ``period`` up to ``burst`` ticks, each state's tick spending one.

    A tick steps the network by one period: a tick per state that came sooner (states faster than the rate,
    two states an executor or the middleware delivers at once) would run the network's time ahead of the arm's.
    A state refused a tick is still the newest: the next tick answers it."""

    def __init__(self, period: float, burst: float = STATE_BURST_TICKS) -> None:
        if period <= 0 or burst < 1:
            raise ValueError(f"a tick budget needs a period > 0 and a burst >= 1, got {period} and {burst}")
        self.period, self.burst = float(period), float(burst)
        self._tokens, self._at = self.burst, None

    def take(self, now: float, *, force: bool = False) -> bool:
        """Spend a tick at ``now`` (steady clock, s): True when the budget allows it. ``force``: the clock's own
        tick, which always runs (it is due) and spends what is there."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) / self.period)
        self._at = now
        if self._tokens >= 1.0 - 1e-9 or force:  # a tick a period exactly, whatever the clock's rounding
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False


class ControlLoop:
    """Runs ``tick(from_state)`` in a thread of its own every ``period`` seconds (steady clock).

    ``setup`` runs first, in the thread (where a thread's priority and affinity are set). ``on_error`` gets
    any exception a tick raises; the loop goes on (the caller's watchdog zeroes a loop that stops
    publishing). :meth:`stop` ends and joins the thread.
    """

    def __init__(self, period: float, tick: Callable[[bool], None], *, on_state: bool = False,
                 setup: Callable[[], None] | None = None, on_error: Callable[[Exception], None] | None = None,
                 name: str = "control_loop", wait_for_state: Callable[[float], bool] | None = None) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = float(period)
        self.on_state = on_state
        self.skipped = 0
        self.due = 0.0
        """when the tick running now was due (``time.monotonic`` s; a state's tick: when it woke): a tick late by
        some time still knows when the next is due"""
        self._tick, self._setup, self._on_error = tick, setup, on_error
        if on_state and wait_for_state is None:
            raise ValueError("on_state needs wait_for_state: the loop must be told when a state came")
        self._wait_for_state = wait_for_state
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """End the loop after the tick it is in; True when the thread ended within ``timeout``."""
        self._stopping = True  # seen within a period: every wait and sleep is bounded by one
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        if self._setup is not None:
            self._setup()
        period, clock = self.period, time.monotonic
        deadline = clock() + period
        budget = TickBudget(period)
        while not self._stopping:
            delay = deadline - clock()
            if self.on_state:
                woke = self._run_wait(max(delay, 0.0))
                if self._stopping:
                    break
                if woke:
                    start = clock()
                    if budget.take(start):  # else: the state waits for the next tick, the deadline holds
                        self.due = start
                        self._run_tick(True)
                        deadline = start + STATE_FALLBACK_PERIODS * period
                    continue
                if clock() < deadline:  # the wait ended on a state that was not valid: on until the tick is due
                    continue
                budget.take(clock(), force=True)
            elif self._wait_for_state is not None:  # take the states that come until the tick is due (a late
                while not self._stopping:  # tick still takes the newest first, without waiting)
                    self._run_wait(max(delay, 0.0))
                    delay = deadline - clock()
                    if delay <= 0:
                        break
                if self._stopping:
                    break
            elif delay > 0:
                time.sleep(delay)
                if self._stopping:
                    break
            late = clock() - deadline
            if late >= period:  # whole periods missed: skipped, not made up for in a burst
                missed = int(late // period)
                self.skipped += missed
                deadline += missed * period
            self.due = deadline
            self._run_tick(False)
            deadline += period

    def _run_wait(self, timeout: float) -> bool:
        try:
            return self._wait_for_state(timeout)
        except Exception as error:  # like a tick's: reported, the loop goes on (and does not spin on it)
            if self._on_error is None:
                raise
            self._on_error(error)
            time.sleep(min(timeout, self.period))
            return False

    def _run_tick(self, from_state: bool) -> None:
        try:
            self._tick(from_state)
        except Exception as error:  # a tick's bug must not end control silently: reported, the loop goes on
            if self._on_error is None:
                raise
            self._on_error(error)
