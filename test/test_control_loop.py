"""The control loop without ROS: it waits for states through ``wait_for_state`` between ticks, ticks on them
with ``on_state`` (held to the rate), and survives a wait that raises."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from snn_sac_ros.core.control.realtime import (
    STATE_BURST_TICKS,
    ControlLoop,
    TickBudget,
    rt_throttling,
    set_thread_affinity,
)


def _run(loop: ControlLoop, seconds: float) -> None:
    loop.start()
    time.sleep(seconds)
    assert loop.stop()


def test_on_state_needs_a_way_to_learn_of_states() -> None:
    with pytest.raises(ValueError, match="wait_for_state"):
        ControlLoop(0.01, lambda _from_state: None, on_state=True)


def test_between_clock_ticks_the_loop_waits_on_states_not_on_a_sleep() -> None:
    ticks: list[bool] = []
    waits: list[float] = []

    def wait(timeout: float) -> bool:
        waits.append(timeout)
        time.sleep(min(timeout, 0.002))  # a state every 2 ms, taken by the loop's thread
        return True

    loop = ControlLoop(0.02, ticks.append, wait_for_state=wait)
    _run(loop, 0.3)
    assert ticks and not any(ticks)  # clock ticks only: without on_state a state does not start one
    assert len(waits) >= 3 * len(ticks)  # several states taken per period
    assert max(waits) <= 0.02 + 1e-9  # never waiting past the tick that is due


def test_on_state_ticks_on_each_state_and_on_the_clock_when_states_stop() -> None:
    ticks: list[bool] = []
    states = threading.Event()
    states.set()

    def wait(timeout: float) -> bool:
        if states.is_set():
            time.sleep(min(timeout, 0.01))  # a state every period
            return True
        time.sleep(timeout)
        return False

    loop = ControlLoop(0.01, ticks.append, on_state=True, wait_for_state=wait)
    loop.start()
    time.sleep(0.15)
    states.clear()
    time.sleep(0.2)
    assert loop.stop()
    first_clock = ticks.index(False)
    assert first_clock > 5 and all(ticks[:first_clock])  # one tick per state while they came
    assert ticks[-5:] == [False] * 5  # then the clock, every period


def test_states_faster_than_the_rate_get_ticks_at_the_rate_only() -> None:
    """Each tick steps the network one period: four states a period must not run it four times too fast."""
    ticks: list[bool] = []

    def wait(timeout: float) -> bool:
        time.sleep(min(timeout, 0.0025))
        return True

    loop = ControlLoop(0.01, ticks.append, on_state=True, wait_for_state=wait)
    started = time.monotonic()
    _run(loop, 0.5)
    elapsed = time.monotonic() - started
    assert all(ticks)  # a state came before every tick was due
    assert 10 < len(ticks) <= elapsed / 0.01 + STATE_BURST_TICKS  # one a state would be about 200


def test_a_state_that_is_not_valid_does_not_start_a_clock_tick_early() -> None:
    ticks: list[bool] = []

    def wait(timeout: float) -> bool:
        time.sleep(min(timeout, 0.001))  # a message every ms, none a valid state
        return False

    loop = ControlLoop(0.02, ticks.append, on_state=True, wait_for_state=wait)
    started = time.monotonic()
    _run(loop, 0.3)
    assert 0 < len(ticks) <= (time.monotonic() - started) / 0.02 + 1 and not any(ticks)  # the clock's, on time


def test_the_tick_budget_holds_ticks_to_the_rate_and_lets_jittered_states_through() -> None:
    budget = TickBudget(0.01)
    assert sum(budget.take(k * 0.0025) for k in range(400)) == 100 + 1  # four states a period: one tick each,
    budget = TickBudget(0.01)  # and the burst at the start
    jittered = [k * 0.01 + (0.004 if k % 2 else -0.004) for k in range(1, 200)]
    assert all(budget.take(t) for t in jittered)  # states at the rate, early or late by 40 %: each ticks
    budget = TickBudget(0.01)
    assert all(budget.take(k * 0.01) for k in range(100))
    assert [budget.take(1.0) for _ in range(3)] == [True, True, False]  # three at once: two, then the rate
    assert not budget.take(1.005) and budget.take(1.01)
    assert budget.take(1.011, force=True) and not budget.take(1.012)  # the clock's tick spends what is there
    with pytest.raises(ValueError, match="burst"):
        TickBudget(0.01, burst=0.5)


def test_a_wait_that_raises_is_reported_and_the_loop_goes_on() -> None:
    errors: list[Exception] = []
    ticks: list[bool] = []
    calls = [0]

    def wait(timeout: float) -> bool:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("the middleware refused the take")
        time.sleep(timeout)
        return False

    loop = ControlLoop(0.01, ticks.append, wait_for_state=wait, on_error=errors.append)
    _run(loop, 0.2)
    assert [str(e) for e in errors] == ["the middleware refused the take"] and len(ticks) > 5


def test_a_late_tick_still_takes_the_newest_state_first() -> None:
    """A tick that overran its period leaves no time to wait: the next one still takes what came meanwhile."""
    events: list[str] = []

    def tick(_from_state: bool) -> None:
        events.append("tick")
        time.sleep(0.015)  # longer than the period: every deadline is already past

    def wait(timeout: float) -> bool:
        events.append("take")
        return False

    loop = ControlLoop(0.01, tick, wait_for_state=wait)
    _run(loop, 0.2)
    ticks = [i for i, e in enumerate(events) if e == "tick"]
    assert len(ticks) > 5 and all(events[i - 1] == "take" for i in ticks)


def test_a_late_tick_knows_when_it_was_due() -> None:
    """``due`` is the tick's place on the clock's grid, not when it started: a recorder paced to ``due + period``
    stops before the next tick even after a late one."""
    period, dues, starts = 0.01, [], []

    def tick(_from_state: bool) -> None:
        starts.append(time.monotonic())
        dues.append(loop.due)
        if len(dues) % 3 == 0:
            time.sleep(0.004)  # a slow tick: the next one starts late

    loop = ControlLoop(period, tick)
    _run(loop, 0.3)
    steps = [(b - a) / period for a, b in itertools.pairwise(dues)]
    assert len(steps) > 10 and all(abs(s - round(s)) < 1e-6 and round(s) >= 1 for s in steps), steps
    assert all(start >= due for start, due in zip(starts, dues, strict=True))


def test_a_thread_can_be_pinned_outside_the_mask_its_process_started_with() -> None:
    """A node started under ``taskset -c 0`` keeps its other threads off core 1 and pins its control thread there;
    a CPU that does not exist is refused with the machine's range."""
    if (os.cpu_count() or 1) < 2:
        pytest.fail("needs two CPUs")
    seen: dict[str, object] = {}

    def pin() -> None:
        os.sched_setaffinity(0, {0})  # as taskset -c 0 leaves every thread of the node
        seen["why"] = set_thread_affinity([1])
        seen["mask"] = os.sched_getaffinity(0)
        seen["missing"] = set_thread_affinity([99])

    worker = threading.Thread(target=pin)
    worker.start()
    worker.join()
    assert seen["why"] == "" and seen["mask"] == {1}
    assert "this machine has CPUs 0-" in str(seen["missing"])


def test_the_kernels_real_time_throttling_is_told_when_it_is_on(tmp_path: Path) -> None:
    """A SCHED_FIFO thread on a busy CPU is stopped for period - runtime each period: said, with the sysctl that
    turns it off; nothing to say when it is off (-1) or when /proc cannot tell."""

    def kernel(runtime: str, period: str = "1000000") -> Path:
        folder = tmp_path / runtime
        folder.mkdir()
        (folder / "sched_rt_runtime_us").write_text(runtime + "\n")
        (folder / "sched_rt_period_us").write_text(period + "\n")
        return folder

    said = rt_throttling(kernel("950000"))
    assert "stopped for 50 ms every 1 s" in said and "kernel.sched_rt_runtime_us = -1" in said
    assert rt_throttling(kernel("-1")) == ""
    assert rt_throttling(tmp_path / "missing") == ""
