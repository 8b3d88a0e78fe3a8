"""The torque guard and tick statistics: pure logic the controller node relies on for hardware safety."""

from __future__ import annotations

import numpy as np
import pytest

from snn_sac_ros.core.safety import TorqueGuard
from snn_sac_ros.core.timing import TickStats


def _active_guard(**kwargs: float) -> TorqueGuard:
    guard = TorqueGuard(np.array([3.0, 1.5]), **kwargs)
    guard.active = True
    guard.state_received(0.0)
    return guard


def test_valid_torque_is_clamped_to_the_effort_limits_and_the_tighter_limit() -> None:
    guard = _active_guard()
    decision = guard.filter(np.array([10.0, -0.5]), now=0.001)
    assert not decision.zeroed
    np.testing.assert_allclose(decision.torque, [3.0, -0.5])
    guard.set_max_torque(np.array([1.0, 0.0]))  # 0: keep the URDF limit for joint 2
    np.testing.assert_allclose(guard.filter(np.array([10.0, -10.0]), now=0.002).torque, [1.0, -1.5])
    guard.set_max_torque(np.array([99.0, 99.0]))  # never looser than the URDF
    np.testing.assert_allclose(guard.limits, [3.0, 1.5])


@pytest.mark.parametrize(("torque", "reason"), [
    (np.array([np.nan, 0.0]), "non-finite"), (np.array([np.inf, 0.0]), "non-finite"),
    (np.array([1.0, 0.0, 0.0]), "3 values"), (None, "no command"),
])
def test_bad_torque_gives_zero_with_a_reason(torque: np.ndarray | None, reason: str) -> None:
    decision = _active_guard().filter(torque, now=0.001)
    assert decision.zeroed and reason in " ".join(decision.reasons)
    np.testing.assert_array_equal(decision.torque, [0.0, 0.0])


def test_watchdog_zeroes_on_stale_states_and_recovers() -> None:
    guard = _active_guard(state_timeout=0.004)
    assert not guard.filter(np.ones(2), now=0.002).zeroed
    late = guard.filter(np.ones(2), now=0.006)
    assert late.zeroed and "stale" in late.reasons[0]
    guard.state_received(0.007)
    assert not guard.filter(np.ones(2), now=0.008).zeroed


def test_loop_stall_zeroes_one_tick() -> None:
    guard = _active_guard(state_timeout=1.0, stall_timeout=0.005)
    guard.filter(np.ones(2), now=0.001)
    stalled = guard.filter(np.ones(2), now=0.1)
    assert stalled.zeroed and "stalled" in stalled.reasons[0]
    assert not guard.filter(np.ones(2), now=0.101).zeroed


def test_estop_latches_until_released_and_inactive_gives_zero() -> None:
    guard = _active_guard(state_timeout=10.0)
    guard.engage_estop()
    for t in range(1, 5):
        assert guard.filter(np.ones(2), now=t * 1e-3).reasons == ["e-stop latched"]
    guard.release_estop()
    assert not guard.filter(np.ones(2), now=0.005).zeroed
    guard.active = False
    assert guard.filter(np.ones(2), now=0.006).reasons == ["controller inactive"]


def test_input_error_gives_zero() -> None:
    decision = _active_guard().filter(np.ones(2), now=0.001, input_error="joint_states lacks joint 'elbow'")
    assert decision.zeroed and "elbow" in decision.reasons[0]


def test_no_state_ever_gives_zero() -> None:
    guard = TorqueGuard(np.array([1.0]))
    guard.active = True
    assert "no joint states" in guard.filter(np.ones(1), now=0.0).reasons


def test_tick_stats_count_misses_and_percentiles() -> None:
    stats = TickStats(period=0.002)
    t = 0.0
    for i in range(100):
        stats.record(t, 0.0005 if i != 50 else 0.003)  # one slow tick
        t += 0.002
    stats.record(t + 0.01, 0.0005)  # a skipped deadline
    summary = stats.summary()
    assert summary["deadline_misses"] == 2 and summary["ticks"] == 101
    assert summary["tick_p50_ms"] == pytest.approx(0.5)
    assert summary["tick_max_ms"] == pytest.approx(3.0)
    assert 400 < summary["rate_hz"] < 500
