"""The controller's threads: the control loop (or the executor timer it replaces), the joint states it takes, its
real-time settings, and the stall watchdog. A mixin of
:class:`~snn_sac_ros.adapters.ros.controller_node.SnnSacController`, which owns the tick (``_tick``), the state
handling (``_handle_joint_state``) and the publish (``_publish``) they call."""

from __future__ import annotations

import threading
import time

import numpy as np

from snn_sac_ros.adapters.ros.common import array_value
from snn_sac_ros.core.control.realtime import (
    ControlLoop,
    lock_memory,
    set_thread_affinity,
    take_thread_priority,
)

#: the control thread's name (diagnostics count the live ones)
CONTROL_THREAD_NAME = "snn_sac_control"


class ControllerThreads:
    """Starts the tick at activation: in a control thread of its own (``control_thread``), or on an executor
    timer; and the watchdog thread that zeroes the torque when the loop stops publishing."""

    def _start_loop(self) -> None:
        if self.get_parameter("lock_memory").value:
            self._say_realtime("lock_memory", lock_memory())
        rate = self.get_parameter("control_rate_hz").value
        if self.get_parameter("control_thread").value:
            self._loop = ControlLoop(1.0 / rate, self._tick, on_state=self._tick_on_state, setup=self._thread_setup,
                                     on_error=self._tick_failed, name=CONTROL_THREAD_NAME,
                                     wait_for_state=self._take_joint_state)
            self._loop.start()
        else:
            self._timer = self.create_timer(1.0 / rate, self._tick, clock=self._steady)
        self._watchdog_stop.clear()
        self._watchdog_thread = threading.Thread(target=self._stall_watchdog, name="stall_watchdog", daemon=True)
        self._watchdog_thread.start()

    def _take_joint_state(self, timeout: float) -> bool:
        """The control thread's wait: up to ``timeout`` s for a joint state, taken from the subscription no
        executor serves (so no state waits for the GIL behind a tick) and handled here; True when a tick should
        follow it (``tick_on_state``)."""
        if not self._state_sub.wait(timeout):
            return False
        msg = self._state_sub.take()
        return msg is not None and self._handle_joint_state(msg) and self._tick_on_state

    def _thread_setup(self) -> None:
        """In the control thread, before its first tick: its priority and CPUs, as asked."""
        priority = self.get_parameter("thread_priority").value
        if priority > 0:
            refusal, throttling = take_thread_priority(priority)
            self._say_realtime(f"thread_priority {priority}", refusal)
            if throttling:
                self.get_logger().warning(throttling)
        cpus = array_value(self, "cpu_affinity")
        if cpus is not None:
            self._say_realtime(f"cpu_affinity {list(cpus)}", set_thread_affinity(cpus))

    def _say_realtime(self, what: str, refusal: str) -> None:
        """Log a real-time setting applied (info) or refused (warning, with the OS's reason: control goes on)."""
        if refusal:
            self.get_logger().warning(f"{refusal}; the controller runs without it")
            self.realtime[what] = f"refused: {refusal}"
        else:
            self.get_logger().info(f"{what}: applied")
            self.realtime[what] = "applied"

    def _tick_failed(self, error: Exception) -> None:
        """A tick raised in the control thread: zero torque now, the error logged (throttled)."""
        import traceback

        guard = self.guard
        if guard is not None and self.command_pub is not None:
            self._publish(np.zeros(guard.n_joints))
            guard.zero_sent()
        self.errors.report("tick_failed", lambda: "a control tick raised; zero torque commanded:\n"
                           + "".join(traceback.format_exception(error)).rstrip())

    def _stall_watchdog(self) -> None:
        """A thread that commands zero torque when the control loop stops publishing (a stall)."""
        timeout = self.guard.stall_timeout
        while not self._watchdog_stop.wait(timeout / 2):
            if time.monotonic() - self._last_publish > timeout and self.guard.active:
                self._publish(np.zeros(self.guard.n_joints))
                self.guard.zero_sent()
                self.watchdog_zeroed += 1
                self.errors.report("loop_stall", f"control loop published nothing for {timeout * 1e3:.0f} ms: "
                                   "zero torque commanded by the watchdog", level="warning")

    def control_thread_status(self) -> str:
        """The control thread as diagnostics show it: off (timer ticks), or its name, how many such threads are
        alive, its skipped periods, and what real-time setting was applied or refused."""
        alive = sum(t.name == CONTROL_THREAD_NAME and t.is_alive() for t in threading.enumerate())
        if not self.get_parameter("control_thread").value:
            return f"off (executor timer); alive={alive}"
        skipped = self._loop.skipped if self._loop is not None else 0
        settings = "; ".join(f"{k} {v}" for k, v in self.realtime.items()) or "normal scheduling"
        return f"{CONTROL_THREAD_NAME}; alive={alive}; skipped_periods={skipped}; {settings}"
