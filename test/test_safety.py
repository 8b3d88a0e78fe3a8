"""The torque guard and tick statistics: pure logic the controller node relies on for hardware safety."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from snn_sac_ros.core.safety import EStop, JointStatePeriod, StopBehaviour, StopMode, TorqueGuard, state_timeout_problem
from snn_sac_ros.core.timing import TickStats


def _active_guard(**kwargs: object) -> TorqueGuard:
    guard = TorqueGuard(np.array([3.0, 1.5]), **kwargs)
    guard.active = True
    guard.state_received(0.0)
    return guard


def test_valid_torque_is_clamped_to_the_default_limits_and_the_tighter_limit() -> None:
    guard = _active_guard()
    decision = guard.filter(np.array([10.0, -0.5]), now=0.001)
    assert not decision.zeroed
    np.testing.assert_allclose(decision.torque, [3.0, -0.5])
    guard.set_max_torque(np.array([1.0, 0.2]))
    np.testing.assert_allclose(guard.filter(np.array([10.0, -10.0]), now=0.002).torque, [1.0, -0.2])
    guard.set_max_torque(np.array([99.0, 99.0]))  # never looser than the URDF
    np.testing.assert_allclose(guard.limits, [3.0, 1.5])
    scaled = TorqueGuard(np.array([300.0, 300.0]), np.array([30.0, 0.1]))  # the checkpoint's torque scale
    np.testing.assert_allclose(scaled.limits, [30.0, 0.1])


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0, 1.0], [1.0], [np.nan, 1.0]])
def test_max_torque_of_zero_or_less_is_refused_not_read_as_no_limit(bad: list[float]) -> None:
    guard = _active_guard()
    with pytest.raises(ValueError, match="max_torque"):
        guard.set_max_torque(np.array(bad))
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


def test_estop_latches_until_reset_and_reactivation_and_inactive_gives_zero() -> None:
    estop = EStop()
    guard = _active_guard(state_timeout=10.0, estop=estop)
    estop.message(True, now=0.0)
    for t in range(1, 5):
        assert guard.filter(np.ones(2), now=t * 1e-3).reasons[0] == "e-stop latched"
    estop.message(False, now=0.005)  # a false message only says the e-stop is no longer pressed
    assert estop.latched and guard.filter(np.ones(2), now=0.006).zeroed
    assert estop.reset(now=0.007)[0]
    assert "activate again" in guard.filter(np.ones(2), now=0.008).reasons[0]
    guard.restart()  # activation
    guard.state_received(0.009)
    assert not guard.filter(np.ones(2), now=0.009).zeroed
    guard.active = False
    assert guard.filter(np.ones(2), now=0.010).reasons == ["controller inactive"]


def test_estop_reset_is_refused_while_asserted_or_silent_and_a_lost_heartbeat_latches() -> None:
    estop = EStop(heartbeat_timeout=0.5)
    estop.start_heartbeat(now=0.0)
    assert not estop.check_heartbeat(now=0.4)
    assert estop.check_heartbeat(now=0.6) and estop.latched and "heartbeat" in estop.reason
    ok, why = estop.reset(now=0.7)
    assert not ok and "silent" in why
    estop.message(True, now=0.8)
    ok, why = estop.reset(now=0.9)
    assert not ok and "still asserted" in why
    estop.message(False, now=1.0)
    assert estop.reset(now=1.1)[0] and not estop.latched


def test_ramp_stop_takes_the_last_command_to_zero_over_its_time_and_damping_uses_fresh_velocity() -> None:
    guard = _active_guard(state_timeout=0.0015, stop=StopBehaviour(StopMode.RAMP, ramp_seconds=0.01))
    guard.filter(np.array([2.0, -1.0]), now=0.001)
    ramp = [guard.filter(np.ones(2), now=0.001 + k * 0.002).torque for k in range(1, 9)]  # states stale from here
    np.testing.assert_allclose(ramp[0], [2.0, -1.0])
    np.testing.assert_allclose(ramp[1], [2.0 * (1 - 0.002 / 0.01), -0.8])
    assert all(abs(a[0]) >= abs(b[0]) for a, b in itertools.pairwise(ramp)) and np.all(ramp[-1] == 0)
    damped = _active_guard(stop=StopBehaviour(StopMode.DAMPING, damping=(0.5, 0.25)))
    dq = np.array([1.0, -2.0])
    np.testing.assert_allclose(damped.filter(None, now=0.001, dq=dq).torque, [-0.5, 0.5])
    assert np.all(damped.filter(None, now=0.5, dq=dq).torque == 0)  # the state is stale: no damping from it
    with pytest.raises(ValueError, match="damping"):
        StopBehaviour(StopMode.DAMPING)


def test_rate_limit_bounds_the_change_per_tick_but_never_slows_a_zero_stop() -> None:
    guard = _active_guard(state_timeout=0.004, max_torque_rate=np.array([100.0, 50.0]))
    guard.filter(np.zeros(2), now=0.0)
    first = guard.filter(np.array([3.0, -1.5]), now=0.002).torque
    np.testing.assert_allclose(first, [0.2, -0.1])
    assert guard.filter(np.array([3.0, -1.5]), now=0.010).reasons  # stale: the zero stop is immediate
    np.testing.assert_array_equal(guard.filter(np.array([3.0, -1.5]), now=0.011).torque, [0.0, 0.0])


def test_state_period_comes_from_the_stamps_is_fixed_and_a_short_timeout_is_refused() -> None:
    period = JointStatePeriod()
    for k in range(20):  # 500 Hz states arriving in bursts: the stamps give the period
        period.arrived(stamp=0.002 * k, now=0.01 * (k // 5))
    assert period.period() == pytest.approx(0.002)
    assert state_timeout_problem(0.004, period.period()) and not state_timeout_problem(0.005, period.period())
    assert period.fix() == pytest.approx(0.002)
    for k in range(20, 70):  # the fixed period stays whatever comes later
        period.arrived(stamp=0.006 * k, now=0.006 * k)
    assert period.period() == pytest.approx(0.002)
    period.clear()
    for k in range(20):
        period.arrived(stamp=0.0, now=0.01 * k)  # no stamps: the arrivals give it
    assert period.period() == pytest.approx(0.01)


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
