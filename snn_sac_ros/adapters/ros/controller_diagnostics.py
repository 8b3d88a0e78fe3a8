"""What ``snn_sac_controller`` reports on ``/diagnostics``: one status, its level, and its key/value pairs.

The keys are what operators watch (and what the demo, the soak benchmark and the tests read): the rate
and tick times, deadline misses, the watchdog and e-stop, the share of ticks that were stopped, learning,
the last save, the recent success rate, the node's own counts of errors by kind, the recorder's state and
drops, and the cost of a tick (``cost_*``: the mean per tick of the sampled ticks since configure, from
:class:`~snn_sac_ros.core.cost.CostMeter`; energies are estimates, see :mod:`snn_sac_ros.core.cost`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

#: the cost figures on /diagnostics: ``cost_<name>`` for each, the total of the networks per tick
COST_KEYS = ("spikes", "synaptic_events", "neuron_updates", "dense_macs", "loihi_nj", "loihi_learning_nj", "cpu_nj",
             "cpu_learning_nj")


def cost_values(meter: Any) -> dict[str, str]:
    """The cost meter's mean per tick as ``/diagnostics`` values ('nan' before the first sampled tick)."""
    total = meter.summary().get("total", {}) if meter.ticks else {}
    values = {f"cost_{k}": f"{total[k]:.6g}" if k in total else "nan" for k in COST_KEYS}
    values["cost_ticks_sampled"] = str(meter.ticks)
    return values


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "0.0000"


def entity_counts(node: Any) -> str:
    """How many publishers, subscriptions, services and timers the node holds (lifecycle leaks show here)."""
    return (f"publishers={len(list(node.publishers))},subscriptions={len(list(node.subscriptions))},"
            f"services={len(list(node.services))},timers={len(list(node.timers))}")


def controller_status(node: Any) -> DiagnosticStatus:
    """The status of a configured controller ``node`` (a ``SnnSacController``)."""
    guard, stats = node.guard, node.stats
    summary = stats.summary()
    now = time.monotonic()
    reasons = guard.watchdog_reasons(now) if guard.active else []
    recent = [d for d in node.reach_results if np.isfinite(d)]
    success = float(np.mean([d <= node.reach.task.success_threshold for d in recent])) if recent else float("nan")
    values = {
        "control_rate_hz": f"{summary['rate_hz']:.1f}", "tick_p50_ms": f"{summary['tick_p50_ms']:.3f}",
        "tick_p99_ms": f"{summary['tick_p99_ms']:.3f}", "tick_max_ms": f"{summary['tick_max_ms']:.3f}",
        "deadline_misses": str(summary["deadline_misses"]), "ticks": str(summary["ticks"]),
        "stopped_ticks": str(node.stopped_ticks), "stopped_share": _share(node.stopped_ticks, summary["ticks"]),
        "watchdog": "; ".join(reasons) or "ok", "stall_watchdog_zeroed": str(node.watchdog_zeroed),
        "estop": f"latched ({node.estop.reason})" if node.estop.latched else "released",
        "learning": "on" if node.learning_on else "off", "unlearned_jumps": str(node.reach.jumps),
        "last_save": node.last_save, "save_path": str(node.save_path),
        "damping_gains": ",".join(f"{g:.3f}" for g in node.agent.damping_gains()),
        "adaptation_torque": ",".join(f"{t:.3f}" for t in node.reach.added) if node.adaptation else "off",
        "active": str(guard.active).lower(), "torque_limits": ",".join(f"{v:.4g}" for v in guard.limits),
        "joint_state_period_ms": f"{node.state_period.period() * 1e3:.3f}",
        "recent_success_rate": f"{success:.3f}", "reaches": str(len(node.reach_results)),
        "distance_m": f"{node.reach.distance:.4f}",
        "publish_failures": str(node.command_pub.failures + node.diag_pub.failures),
        "commands_published": str(node.command_pub.published),
        "entities": entity_counts(node),
        "control_thread": node.control_thread_status(),
        "input_errors": ",".join(f"{k}={v}" for k, v in sorted(node.errors.counts.items())) or "none",
        **node.recording.status(), **cost_values(node.cost),
    }
    level, message = DiagnosticStatus.OK, "controlling"
    if node.estop.latched:
        level, message = DiagnosticStatus.ERROR, f"e-stop latched: {node.estop.reason}"
    elif node.gate_problem():
        level, message = DiagnosticStatus.ERROR, node.gate_problem()
    elif reasons or node.input_error:
        level, message = DiagnosticStatus.WARN, "; ".join(reasons) or node.input_error[1]
    elif node.recording.status()["recording"].startswith("failed"):
        level, message = DiagnosticStatus.WARN, f"recording {node.recording.status()['recording']}"
    elif not guard.active:
        level, message = DiagnosticStatus.WARN, "inactive"
    return DiagnosticStatus(level=level, name=f"{node.get_name()}: control loop", message=message,
                            hardware_id=",".join(node.driver_names),
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])


def diagnostics_message(node: Any) -> DiagnosticArray:
    """A ``DiagnosticArray`` holding :func:`controller_status`, stamped with the node's clock."""
    array = DiagnosticArray(status=[controller_status(node)])
    array.header.stamp = node.get_clock().now().to_msg()
    return array
