"""The ROS half of ``bench realtime``: the two nodes over real DDS and a probe node, one row's ROS columns.

Over real DDS on localhost: the ``arm_sim`` node (publishing joint states at the control rate, real
time) and the ``snn_sac_controller`` node (its control thread, or with ``--control-thread off`` its
executor timer, at that rate on the steady clock, one Nengo step per tick; ``both``: a row of each),
started as ``bringup`` starts them, plus a probe node here that publishes a reach target and listens.
With ``--rt-priority``, the arm node and the probe run under SCHED_FIFO; so does the controller's control
thread (``thread_priority``) while the rest of that node runs normally, or, on the timer path, the whole
controller node (``chrt``). Where the SCHED_FIFO threads keep a core over 95 % busy, the kernel stops them for
the rest of each second (``sched_rt_runtime_us``, printed at the start): ~50 ms maxima at a fixed phase each
second, unless the machine turned the throttling off.

Tick compute time is the controller's own (``TickStats``' measure, tick start to the end of its work: the
learning that follows the command included; ``command_p99_ms``: tick start to its command published),
taken from its ``tick_trace`` over exactly the row (after ``--warmup``): p50/p99/max, and deadline
misses by ``TickStats``' rule. Its ``/diagnostics`` figures (a rolling 5000-tick window; the row's
median p50, worst p99 and max, and the increase of its miss count) are kept as ``diag_*`` to cross-check.

Latency, joint_states published -> the command computed from it received: the probe stamps (monotonic
clock, shared by all processes) the arrival of every ``joint_states`` (by its header stamp) and every
command. The controller's ``tick_trace`` records, per tick, the header stamp of the joint state the
tick used and its publish time. Each command the probe receives is paired with the last tick published
before it, hence with the joint state it was computed from, and so with that state's arrival at the
probe: ``latency = command arrival - state arrival + d``. The probe hears the state one DDS hop after
the arm published it; ``d``, that hop, is taken as the median command hop (probe arrival - controller
publish) of the same row: same path, similar size. An arm node in lockstep would measure it directly;
ours runs on its own clock, as a real arm does.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from pathlib import Path

import numpy as np

from snn_sac_ros.supervision import Supervisor


class _Probe:
    """This process's node: publishes the target, stamps joint states and commands, keeps /diagnostics."""

    def __init__(self, target: list[float]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PointStamped
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from snn_sac_ros.adapters.ros.common import COMMAND_QOS, STATE_QOS

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node("bench_realtime_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.js: list[tuple[float, int]] = []
        self.cmd: list[int] = []
        self.diags: list[tuple[float, dict[str, str]]] = []
        now = time.monotonic_ns
        self.node.create_subscription(JointState, "joint_states", lambda m: self.js.append(
            (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, now())), STATE_QOS)
        self.node.create_subscription(Float64MultiArray, "effort_controller/commands",
                                      lambda _m: self.cmd.append(now()), COMMAND_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)
        self._target_pub = self.node.create_publisher(PointStamped, "target", 10)
        self._target = PointStamped()
        self._target.header.frame_id = "base_link"
        self._target.point.x, self._target.point.y, self._target.point.z = target
        self.node.create_timer(0.5, lambda: self._target_pub.publish(self._target))
        self._clients: dict[str, object] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # shutdown from the main thread ends the spin
            pass

    def _diagnostics(self, msg: object) -> None:
        for status in msg.status:
            if "snn_sac_controller" in status.name:
                self.diags.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def latest(self) -> dict[str, str]:
        return self.diags[-1][1] if self.diags else {}

    def set_parameter(self, node: str, name: str, value: object, timeout: float = 5.0) -> None:
        """Set ``node``'s parameter ``name`` (its set_parameters service, answered in the probe's spin thread)."""
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = self._clients.get(node)
        if client is None:
            client = self._clients[node] = AsyncParameterClient(self.node, node)
            if not client.wait_for_services(timeout_sec=timeout):
                raise RuntimeError(f"{node} offers no parameter services")
        future = client.set_parameters([Parameter(name, value=value)])
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.001)
        if not future.done() or not future.result().results[0].successful:
            raise RuntimeError(f"{node} did not set {name} = {value!r}")

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def ros_environment() -> None:
    """Loopback DDS on a domain of its own (unless set), one OpenMP thread."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _start(nodes: object, name: str, spec: object, plan: object, log: Path, *, rt_priority: int = 0,
           cpus: set[int] | None = None) -> None:
    from snn_sac_ros import bringup

    prefix = ["chrt", "-f", str(rt_priority)] if rt_priority > 0 else []
    if cpus:
        prefix = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *prefix]
    nodes.start(name, prefix + bringup.command_line(spec, plan=plan), log)


def other_cpus(control_cpu: int) -> set[int] | None:
    """The CPUs left for everything but the control thread (None: no pinning); refuses a CPU the machine lacks."""
    if control_cpu < 0:
        return None
    count = os.cpu_count() or 1
    if count < 2 or control_cpu >= count:
        raise ValueError(f"--control-cpu {control_cpu}: needs a CPU of 0-{count - 1} and at least one other")
    return set(range(count)) - {control_cpu}


def _sleep(nodes: object, seconds: float) -> None:
    """Sleep ``seconds``, failing at once (every node stopped) if a node dies meanwhile."""
    end = time.monotonic() + seconds
    nodes.wait_until(lambda: time.monotonic() >= end, seconds + 10.0, f"{seconds:g} s of measurement")


def measure_ros(checkpoint: Path, *, arm: str, rate: float, learning: bool, duration: float, warmup: float,
                out: Path, tick_on_state: bool = False, rt_priority: int = 0, control_thread: bool = True,
                record: bool = False, record_period: float = 0.0, control_cpu: int = -1) -> list[dict]:
    """Run arm_sim + controller at ``rate`` for ``warmup + duration`` seconds; the row's ROS columns (two rows, the
    recorded ticks and the others, when ``record_period`` > 0 pauses and resumes the recording within the run)."""
    from snn_sac_ros import bringup
    from snn_sac_ros.core.agent.checkpoint import load_checkpoint

    contract = load_checkpoint(checkpoint).observation_contract
    alternating = record and record_period > 0
    target = np.asarray(contract.workspace_center, float)
    target[contract.axis_indices[0]] += 0.5 * contract.workspace_reach
    plan = bringup.sim_reach_plan(arm=arm, checkpoint=str(checkpoint), learning=str(learning).lower(),
                                  control_rate_hz=str(rate), use_sim_time="true")
    specs = {s.name: s for s in plan.nodes}
    tag = (f"{checkpoint.stem}_{rate:g}hz_{'learn' if learning else 'frozen'}_{'thread' if control_thread else 'timer'}"
           f"{'_rec' if record else ''}")
    sim = dataclasses.replace(specs["arm_sim"], parameters={**specs["arm_sim"].parameters, "publish_rate": rate})
    ctl = dataclasses.replace(specs["snn_sac_controller"], parameters={
        **specs["snn_sac_controller"].parameters, "resume": False, "save_period_s": 0.0,
        "save_path": str(out / f"{tag}_weights.npz"), "tick_trace": str(out / f"{tag}_ticks.npz"),
        "tick_on_state": tick_on_state, "control_thread": control_thread,
        "thread_priority": rt_priority if control_thread else 0,
        **({"record_path": str(out / f"{tag}.mcap")} if record else {}),
        **({"cpu_affinity": [control_cpu]} if control_cpu >= 0 else {})})
    logs = [out / f"{tag}_arm_sim.log", out / f"{tag}_controller.log"]
    cpus = other_cpus(control_cpu)
    probe = _Probe(target.tolist())
    nodes = Supervisor(dict(os.environ))
    try:
        _start(nodes, "arm_sim", sim, plan, logs[0], rt_priority=rt_priority, cpus=cpus)
        # the control thread takes the priority itself (thread_priority), the rest of its node stays normal, as
        # ros2_control runs its loop; the timer path can only run the whole node under SCHED_FIFO
        _start(nodes, "snn_sac_controller", ctl, plan, logs[1], rt_priority=0 if control_thread else rt_priority,
               cpus=cpus)

        def ticking() -> bool:
            d = probe.latest()
            return d.get("active") == "true" and d.get("distance_m", "nan") != "nan"

        nodes.wait_until(ticking, 120.0, "the controller ticking with a target")
        _sleep(nodes, warmup)
        start_diag, start_time = probe.latest(), time.monotonic()
        start_ns = time.monotonic_ns()
        if alternating:
            _alternate_recording(nodes, probe, duration, record_period)
        else:
            _sleep(nodes, duration)
        end_ns = time.monotonic_ns()
        end_diag = probe.latest()
        diags = list(probe.diags)
    finally:
        nodes.stop_all()
        probe.close()
    window_s = 5000 / rate  # TickStats window: use only messages whose window lies inside the row
    inside = [d for t, d in diags if t >= start_time + min(window_s, duration)] or [end_diag]
    p50 = [float(d["tick_p50_ms"]) for d in inside]
    trace_path = out / f"{tag}_ticks.npz"
    if not trace_path.is_file():
        raise RuntimeError(f"the controller wrote no tick trace ({trace_path}); see {logs[1]}")
    trace = dict(np.load(trace_path))
    np.savez(out / f"{tag}_probe.npz", state_stamps=np.array([x for x, _ in probe.js]),
             state_arrivals_ns=np.array([t for _, t in probe.js], np.int64),
             command_arrivals_ns=np.asarray(probe.cmd, np.int64))  # for a closer look at the latency
    start, end = start_ns * 1e-9, end_ns * 1e-9
    ticks = (trace["start"] >= start) & (trace["start"] <= end)
    diag = {"diag_tick_p50_ms": float(np.median(p50)),
            "diag_tick_p99_ms": max(float(d["tick_p99_ms"]) for d in inside),
            "diag_tick_max_ms": max(float(d["tick_max_ms"]) for d in inside),
            "diag_deadline_misses": int(end_diag["deadline_misses"]) - int(start_diag["deadline_misses"])}
    if not alternating:
        return [{**_tick_columns(trace, ticks, 1.0 / rate, end), **diag,
                 **_latency(probe.js, probe.cmd, trace, start, end)}]
    rows = []
    for recorded in (False, True):
        part = ticks & ((trace["recorded"] > 0) == recorded)
        rows.append({**_tick_columns(trace, ticks, 1.0 / rate, end, part), **diag, "record": recorded,
                     "record_alternating": True, **_latency(probe.js, probe.cmd, trace, start, end, part=part)})
    return rows


def _alternate_recording(nodes: object, probe: _Probe, duration: float, period: float) -> None:
    """``duration`` seconds with the controller's recording paused and resumed every ``period`` seconds."""
    end, paused = time.monotonic() + duration, False
    while (left := end - time.monotonic()) > 0:
        _sleep(nodes, min(period, left))
        paused = not paused
        probe.set_parameter("snn_sac_controller", "record_paused", paused)


def _tick_columns(trace: dict[str, np.ndarray], ticks: np.ndarray, period: float, end: float,
                  part: np.ndarray | None = None) -> dict:
    """The tick columns of the row's ``ticks`` (a mask over the trace), or of the ``part`` of them (a sub-mask):
    misses are judged on the whole row, so a split does not count its gaps as late starts."""
    starts = trace["start"][ticks]
    # TickStats' rule: compute longer than the period, or a start more than two periods after the last one
    missed = (trace["compute"][ticks] > period) | (np.diff(starts, prepend=starts[:1]) > 2.0 * period)
    span = np.diff(starts, append=end)  # each tick's share of the row's time
    keep = np.ones(starts.size, bool) if part is None else part[ticks]
    compute, starts, policy = trace["compute"][ticks][keep], starts[keep], trace["policy"][ticks][keep]
    # the command goes out before the tick's learning runs: tick start to its publish, on ticks that published
    to_command = trace["publish"][ticks][keep] - starts
    to_command = to_command[(to_command >= 0) & (to_command <= compute)]
    nan = float("nan")
    return {
        "tick_p50_ms": float(np.percentile(compute, 50) * 1e3) if compute.size else nan,
        "tick_p99_ms": float(np.percentile(compute, 99) * 1e3) if compute.size else nan,
        "tick_max_ms": float(compute.max() * 1e3) if compute.size else nan,
        "command_p99_ms": float(np.percentile(to_command, 99) * 1e3) if to_command.size else nan,
        "policy_step_us": float(np.nanmedian(policy) * 1e6) if np.any(np.isfinite(policy)) else nan,
        "deadline_misses": int(missed[keep].sum()), "ticks": int(compute.size),
        "control_rate_hz": float(compute.size / max(float(span[keep].sum()), 1e-9)),
    }


def _latency(states: list[tuple[float, int]], commands: list[int], trace: dict[str, np.ndarray], start: float,
             end: float, *, part: np.ndarray | None = None) -> dict[str, float]:
    """Pair each command with its tick (last publish before it) and that tick's joint state; see the docstring.
    ``part`` (a mask over the trace): only the commands of those ticks."""
    nan = float("nan")
    if not states or not commands:
        return {"latency_p50_ms": nan, "latency_p99_ms": nan, "dds_hop_ms": nan, "latency_samples": 0}
    stamps = np.array([s for s, _ in states])
    arrivals = np.array([t for _, t in states], np.int64) * 1e-9
    order = np.argsort(stamps, kind="stable")
    stamps, arrivals = stamps[order], arrivals[order]
    cmd = np.asarray(commands, np.int64) * 1e-9
    cmd = cmd[(cmd >= start) & (cmd <= end)]
    publish = trace["publish"]
    tick = np.searchsorted(publish, cmd, side="right") - 1
    cmd, tick = cmd[tick >= 0], tick[tick >= 0]
    if part is not None:
        cmd, tick = cmd[part[tick]], tick[part[tick]]
    hop = cmd - publish[tick]
    used = trace["state_stamp"][tick]
    k = np.clip(np.searchsorted(stamps, used), 0, stamps.size - 1)
    found = np.isfinite(used) & (np.abs(stamps[k] - used) < 1e-7) & (hop >= 0) & (hop < 0.05)
    d = float(np.median(hop[found])) if found.any() else nan
    latency_ms = (cmd[found] - arrivals[k[found]] + d) * 1e3
    if not latency_ms.size:
        return {"latency_p50_ms": nan, "latency_p99_ms": nan, "dds_hop_ms": d * 1e3, "latency_samples": 0}
    return {"latency_p50_ms": float(np.median(latency_ms)), "latency_p99_ms": float(np.percentile(latency_ms, 99)),
            "dds_hop_ms": d * 1e3, "latency_samples": int(latency_ms.size)}
