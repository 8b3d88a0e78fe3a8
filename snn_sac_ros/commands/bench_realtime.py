"""``snn-sac-ros bench realtime``: the controller's tick time, its latency, and the Nengo step against its floor.

For each network size (neurons in total: actor plus both critics' hidden layers), control rate and
learning on/off, one row:

1. In this process, the same network alone: ``OnlineAgent.sim.step()`` (the reference Nengo simulator) and
   :class:`~snn_sac_ros.core.realtime_floor.FloorAgent` (the same tick's arithmetic in a few NumPy calls),
   timed in alternating blocks so machine noise hits both alike; median microseconds per step each.
2. Over real DDS on localhost: the ``arm_sim`` node (publishing joint states at the control rate, real
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
3. Latency, joint_states published -> the command computed from it received: the probe stamps (monotonic
   clock, shared by all processes) the arrival of every ``joint_states`` (by its header stamp) and every
   command. The controller's ``tick_trace`` records, per tick, the header stamp of the joint state the
   tick used and its publish time. Each command the probe receives is paired with the last tick published
   before it, hence with the joint state it was computed from, and so with that state's arrival at the
   probe: ``latency = command arrival - state arrival + d``. The probe hears the state one DDS hop after
   the arm published it; ``d``, that hop, is taken as the median command hop (probe arrival - controller
   publish) of the same row: same path, similar size. An arm node in lockstep would measure it directly;
   ours runs on its own clock, as a real arm does.

``--record on`` (or ``both``, each row with and without) has the controller record the run into MCAP
(``record_path``), to see what recording costs the tick; the ``rec`` column says which. Rows of separate runs
differ by more than recording costs on a shared machine, so ``--record alternate`` makes one run of each row,
pauses and resumes the recording every ``--record-period`` seconds (``record_paused``), and splits its ticks by
whether they were recorded (the tick trace says which): two rows, ``on*`` and ``off*``, under the same load.

The checkpoints are made here (random weights of the chosen sizes: timing does not depend on training).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from snn_sac_ros.commands.untrained import hidden_sizes, make_checkpoint
from snn_sac_ros.core.control.realtime import rt_throttling
from snn_sac_ros.supervision import Supervisor

COLUMNS = ("neurons", "rate_hz", "learning", "control_thread", "tick_p50_ms", "tick_p99_ms", "tick_max_ms",
           "command_p99_ms", "deadline_misses", "latency_p50_ms", "latency_p99_ms", "policy_step_us", "nengo_step_us",
           "floor_step_us", "nengo_over_floor", "record")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--neurons", type=int, nargs="+", default=[1000, 4000, 16000],
                        help="neurons in total (actor + both critics, all hidden layers)")
    parser.add_argument("--rates", type=float, nargs="+", default=[500.0, 1000.0], help="control rates [Hz]")
    parser.add_argument("--learning", choices=["on", "off", "both"], default="both")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured per row (after warm-up)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the first tick not counted")
    parser.add_argument("--depth", type=int, default=1,
                        help="hidden layers per network (1: NEF-like, weights grow as n; 2: n x n hidden weights)")
    parser.add_argument("--arm", default="planar2", help="arm preset")
    parser.add_argument("--nengo-steps", type=int, default=3000, help="steps timed per simulator (in process)")
    parser.add_argument("--control-thread", choices=["on", "off", "both"], default="on",
                        help="the controller's tick in its own thread (control_thread), on an executor timer, or a "
                             "row of each, side by side")
    parser.add_argument("--tick-on-state", action="store_true",
                        help="controller ticks on each joint state (tick_on_state), the timer only as a fallback")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="run the nodes and the in-process timing under SCHED_FIFO at this priority (chrt -f; "
                             "needs CAP_SYS_NICE), as a 1 kHz loop is deployed; 0: normal scheduling")
    parser.add_argument("--record", choices=["off", "on", "both", "alternate"], default="off",
                        help="the controller records the run into MCAP (both: each row without, then with; "
                             "alternate: one run, recording paused and resumed, its ticks split into two rows)")
    parser.add_argument("--record-period", type=float, default=2.0,
                        help="with --record alternate: seconds between pausing and resuming the recording")
    parser.add_argument("--control-cpu", type=int, default=-1,
                        help="the control core: the controller's control thread pinned to this CPU (cpu_affinity), "
                             "every other thread of the nodes and of this process kept on the other CPUs (taskset), "
                             "so that nothing else runs on it between ticks; -1: no pinning")
    parser.add_argument("--no-ros", action="store_true", help="only the in-process Nengo / floor columns")
    parser.add_argument("--out", default=None, help="folder for node logs and checkpoints (default: a temp dir)")


# --- networks -----------------------------------------------------------------------------------------


def time_in_process(checkpoint: Path, rate: float, learning: bool, steps: int, block: int = 250) -> dict:
    """Median per-step time [us] of the Nengo simulator and of the floor, in alternating blocks."""
    from snn_sac_ros.core.agent.online import OnlineAgent
    from snn_sac_ros.core.realtime_floor import FloorAgent

    agent = OnlineAgent.from_checkpoint(checkpoint, spiking=True, learning=learning, dt=1.0 / rate)
    floor = FloorAgent(agent.checkpoint, learning=learning, dt=1.0 / rate)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-0.5, 0.5, (steps, agent.obs_dim))
    reward = -rng.uniform(0.0, 1.0, steps)
    for k in range(50):  # warm caches and the first-step paths
        agent.step(obs[k], reward[k])
        floor.step(obs[k], reward[k])
    times = {"nengo": [], "floor": []}
    clock = time.perf_counter
    for start in range(0, steps, block):
        for k in range(start, min(start + block, steps)):
            agent.set_inputs(obs[k], float(reward[k]))  # what agent.step does before sim.step(), minus its checks
            t0 = clock()
            agent.sim.step()
            times["nengo"].append(clock() - t0)
        for k in range(start, min(start + block, steps)):
            t0 = clock()
            floor.step(obs[k], reward[k])
            times["floor"].append(clock() - t0)
    neurons = floor.n_neurons
    agent.close()
    nengo_us, floor_us = (float(np.median(times[k]) * 1e6) for k in ("nengo", "floor"))
    p99 = {k: float(np.percentile(v, 99) * 1e6) for k, v in times.items()}
    return {"neurons": neurons, "nengo_step_us": nengo_us, "floor_step_us": floor_us,
            "nengo_over_floor": nengo_us / floor_us, "nengo_step_p99_us": p99["nengo"],
            "floor_step_p99_us": p99["floor"]}


# --- over ROS 2 --------------------------------------------------------------------------------------------


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


def _ros_environment() -> None:
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


class _Pinned:
    """This process (its probe's threads) on ``cpus`` while inside the ``with`` (nothing when None)."""

    def __init__(self, cpus: set[int] | None) -> None:
        self.cpus, self.previous = cpus, None

    def __enter__(self) -> None:
        if self.cpus:
            self.previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, self.cpus)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            os.sched_setaffinity(0, self.previous)


def _sleep(nodes: object, seconds: float) -> None:
    """Sleep ``seconds``, failing at once (every node stopped) if a node dies meanwhile."""
    end = time.monotonic() + seconds
    nodes.wait_until(lambda: time.monotonic() >= end, seconds + 10.0, f"{seconds:g} s of measurement")


class _Realtime:
    """SCHED_FIFO at ``priority`` for this process while inside the ``with`` (nothing when 0)."""

    def __init__(self, priority: int) -> None:
        self.priority, self.previous = priority, None

    def __enter__(self) -> None:
        if self.priority > 0:
            self.previous = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            os.sched_setscheduler(0, self.previous[0], self.previous[1])


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


# --- the command -----------------------------------------------------------------------------------------


def machine() -> str:
    """CPU model and core count, for the table's caption."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def run(args: argparse.Namespace) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    others = other_cpus(args.control_cpu)  # a CPU the machine lacks is refused before anything starts
    _ros_environment()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    out.mkdir(parents=True, exist_ok=True)
    learning = {"on": [True], "off": [False], "both": [True, False]}[args.learning]
    records = {"on": [True], "off": [False], "both": [False, True], "alternate": [True]}[args.record]
    record_period = args.record_period if args.record == "alternate" else 0.0
    threads = {"on": [True], "off": [False], "both": [True, False]}[args.control_thread]
    rows = []
    print(f"bench realtime: {machine()}; {args.duration:g} s per row, depth {args.depth}, "
          f"{'tick on state' if args.tick_on_state else 'timer ticks'}, "
          f"{f'SCHED_FIFO {args.rt_priority}' if args.rt_priority else 'normal scheduling'}"
          f"{f', control thread alone on CPU {args.control_cpu}' if args.control_cpu >= 0 else ''}; logs in {out}",
          flush=True)
    throttling = rt_throttling()
    if args.rt_priority:
        print(f"bench realtime: {throttling or 'the kernel real-time throttling is off'}", flush=True)
    for neurons in args.neurons:
        hidden = hidden_sizes(neurons, args.depth)
        checkpoint = make_checkpoint(args.arm, hidden, out / f"n{neurons}_d{args.depth}.npz")
        for rate in args.rates:
            for learn in learning:
                with _Realtime(args.rt_priority):
                    in_process = time_in_process(checkpoint, rate, learn, args.nengo_steps)
                for thread, record in itertools.product(threads, records):
                    row = {"hidden": list(hidden), "rate_hz": rate, "learning": learn, "control_thread": thread,
                           "record": record, "record_alternating": False, "control_cpu": args.control_cpu,
                           **in_process}
                    if args.no_ros:
                        measured = [{k: float("nan") for k in COLUMNS if k not in row}]
                    else:
                        # the probe's threads too: its stamps are the latency; off the control core with the rest
                        with _Realtime(args.rt_priority), _Pinned(others):
                            measured = measure_ros(checkpoint, arm=args.arm, rate=rate, learning=learn,
                                                   duration=args.duration, warmup=args.warmup, out=out,
                                                   tick_on_state=args.tick_on_state, rt_priority=args.rt_priority,
                                                   control_thread=thread, record=record, record_period=record_period,
                                                   control_cpu=args.control_cpu)
                    for part in measured:
                        rows.append({**row, **part})
                        print(_line(rows[-1]), flush=True)
    _print_table(rows)
    return {"rows": rows, "machine": machine(), "duration_s": args.duration, "depth": args.depth,
            "tick_on_state": args.tick_on_state, "rt_priority": args.rt_priority, "control_thread": args.control_thread,
            "control_cpu": args.control_cpu, "rt_throttling": throttling or "off", "output_dir": str(out)}


_HEADER = (f"{'neurons':>7} {'rate':>5} {'learn':>5} {'loop':>6} {'tick p50':>8} {'p99':>6} {'max':>6} {'cmd p99':>7} "
           f"{'misses':>6} {'lat p50':>7} {'p99':>6} {'policy us':>9} {'nengo us':>8} {'floor us':>8} {'ratio':>5} "
           f"{'rec':>4}")


def _line(r: dict) -> str:
    return (f"{r['neurons']:>7d} {r['rate_hz']:>5.0f} {'on' if r['learning'] else 'off':>5} "
            f"{'thread' if r['control_thread'] else 'timer':>6} "
            f"{r['tick_p50_ms']:>8.3f} {r['tick_p99_ms']:>6.3f} {r['tick_max_ms']:>6.2f} {r['command_p99_ms']:>7.3f} "
            f"{r['deadline_misses']:>6} {r['latency_p50_ms']:>7.3f} {r['latency_p99_ms']:>6.3f} "
            f"{r['policy_step_us']:>9.0f} {r['nengo_step_us']:>8.0f} {r['floor_step_us']:>8.0f} "
            f"{r['nengo_over_floor']:>5.2f} {_record_label(r):>4}")


def _record_label(row: dict) -> str:
    return ("on" if row["record"] else "off") + ("*" if row.get("record_alternating") else "")


def _print_table(rows: list[dict]) -> None:
    print()
    print("tick [ms] inside the controller node (cmd: tick start to its command out, before the learning); latency "
          "[ms] joint_states -> command; policy [us]: the tick's policy step to the action, inside the node, median; "
          "per-step [us] in process"
          + ("; rec on* / off*: the recorded ticks and the others of one run whose recording was paused and resumed"
             if any(r.get("record_alternating") for r in rows) else ""))
    print(_HEADER)
    print("-" * len(_HEADER))
    for r in rows:
        print(_line(r))
