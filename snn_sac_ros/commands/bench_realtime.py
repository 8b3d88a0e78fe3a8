"""``snn-sac-ros bench realtime``: the controller's tick time, its latency, and the Nengo step against its floor.

For each network size (neurons in total: actor plus both critics' hidden layers), control rate and
learning on/off, one row:

1. In this process, the same network alone: ``OnlineAgent.sim.step()`` (the reference Nengo simulator) and
   :class:`~snn_sac_ros.core.realtime_floor.FloorAgent` (the same tick's arithmetic in a few NumPy calls),
   timed in alternating blocks so machine noise hits both alike; median microseconds per step each.
2. Over real DDS on localhost (``bench_realtime_ros``): the ``arm_sim`` and ``snn_sac_controller`` nodes and a
   probe node here; the controller's tick time and deadline misses from its tick trace.
3. Latency, joint_states published -> the command computed from it received, measured by the probe.

``--record on`` (or ``both``, each row with and without) has the controller record the run into MCAP
(``record_path``), to see what recording costs the tick; the ``rec`` column says which. Rows of separate runs
differ by more than recording costs on a shared machine, so ``--record alternate`` makes one run of each row,
pauses and resumes the recording every ``--record-period`` seconds (``record_paused``), and splits its ticks by
whether they were recorded (the tick trace says which): two rows, ``on*`` and ``off*``, under the same load.

The checkpoints are made here (random weights of the chosen sizes: timing does not depend on training).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from snn_sac_ros.commands.bench_realtime_ros import measure_ros, other_cpus, ros_environment
from snn_sac_ros.commands.untrained import hidden_sizes, make_checkpoint
from snn_sac_ros.core.control.realtime import rt_throttling

COLUMNS = ("neurons", "rate_hz", "learning", "control_thread", "control_rate_hz", "tick_p50_ms", "tick_p99_ms",
           "tick_max_ms", "command_p99_ms", "deadline_misses", "latency_p50_ms", "latency_p99_ms", "policy_step_us",
           "nengo_step_us", "floor_step_us", "nengo_over_floor", "record")


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
    ros_environment()
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


_HEADER = (f"{'neurons':>7} {'rate':>5} {'held':>6} {'learn':>5} {'loop':>6} {'tick p50':>8} {'p99':>6} {'max':>6} "
           f"{'cmd p99':>7} "
           f"{'misses':>6} {'lat p50':>7} {'p99':>6} {'policy us':>9} {'nengo us':>8} {'floor us':>8} {'ratio':>5} "
           f"{'rec':>4}")


def _line(r: dict) -> str:
    return (f"{r['neurons']:>7d} {r['rate_hz']:>5.0f} {r['control_rate_hz']:>6.1f} "
            f"{'on' if r['learning'] else 'off':>5} "
            f"{'thread' if r['control_thread'] else 'timer':>6} "
            f"{r['tick_p50_ms']:>8.3f} {r['tick_p99_ms']:>6.3f} {r['tick_max_ms']:>6.2f} {r['command_p99_ms']:>7.3f} "
            f"{r['deadline_misses']:>6} {r['latency_p50_ms']:>7.3f} {r['latency_p99_ms']:>6.3f} "
            f"{r['policy_step_us']:>9.0f} {r['nengo_step_us']:>8.0f} {r['floor_step_us']:>8.0f} "
            f"{r['nengo_over_floor']:>5.2f} {_record_label(r):>4}")


def _record_label(row: dict) -> str:
    return ("on" if row["record"] else "off") + ("*" if row.get("record_alternating") else "")


def _print_table(rows: list[dict]) -> None:
    print()
    print("rate [Hz] asked and held (ticks over the row's time); tick [ms] inside the controller node (cmd: tick "
          "start to its command out, before the learning); latency "
          "[ms] joint_states -> command; policy [us]: the tick's policy step to the action, inside the node, median; "
          "per-step [us] in process"
          + ("; rec on* / off*: the recorded ticks and the others of one run whose recording was paused and resumed"
             if any(r.get("record_alternating") for r in rows) else ""))
    print(_HEADER)
    print("-" * len(_HEADER))
    for r in rows:
        print(_line(r))
