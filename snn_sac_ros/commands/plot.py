"""``snn-sac-ros plot RUN.mcap``: the demo's plots drawn from a recorded run (the demo's own, or any recording).

Reads ``/ee_pose`` and ``/target`` (distance to target), ``/joint_states`` (torques), ``/diagnostics`` (the
controller's learned damping gains, the arm's payload) at up to ``--record-hz``, and scores each reach by its last
distance before the target changed. A controller's own recording has no ``/ee_pose`` (it computes the end
effector's position, not its pose): its tick records' end effector and target stand in until a pose arrives. A file
cut short by a crash plots up to its cut.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from snn_sac_ros.core.recording.reader import TICK_TOPIC, ReadResult, read_messages, stamp_seconds

TOPICS = ("/ee_pose", "/target", "/joint_states", "/diagnostics", TICK_TOPIC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", help="an MCAP file (.mcap) recorded by the demo, the controller or a rollout")
    parser.add_argument("--out", default="", help="folder for the PNGs (default: beside the recording)")
    parser.add_argument("--record-hz", type=float, default=100.0, help="samples per second kept for the plots")


def demo_record(path: str | Path, record_hz: float = 100.0) -> tuple[dict, list[tuple[float, float]], ReadResult]:
    """The demo observer's record (``series``), the reaches ``(final distance [m], payload [kg])`` and the read
    result, from a recording."""
    gap = 1.0 / record_hz
    series: dict[str, list] = {k: [] for k in ("t", "distance", "ee", "target", "torque_t", "torque", "q",
                                               "damping_t", "damping")}
    target, payload, last = None, 0.0, {"pose": -np.inf, "state": -np.inf}
    reaches: list[tuple[float, float]] = []
    last_distance = np.nan
    result = ReadResult()
    poses = False  # a /ee_pose seen: tick records no longer stand in for it

    def sample(t: float, ee: np.ndarray, aim: np.ndarray) -> float:
        distance = float(np.linalg.norm(ee - aim))
        if t - last["pose"] >= gap:
            last["pose"] = t
            series["t"].append(t)
            series["ee"].append(ee)
            series["target"].append(aim)
            series["distance"].append(distance)
        return distance

    for m in read_messages(path, TOPICS, result):
        msg = m.message
        if m.asked_as == "/target":
            point = np.array([msg.point.x, msg.point.y, msg.point.z])
            if target is not None and not np.array_equal(point, target) and np.isfinite(last_distance):
                reaches.append((last_distance, payload))
            target = point
        elif m.asked_as == "/ee_pose":
            poses = True
            if target is not None:
                p = msg.pose.position
                last_distance = sample(stamp_seconds(msg.header), np.array([p.x, p.y, p.z]), target)
        elif m.asked_as == TICK_TOPIC and not poses:
            p, aim = msg.ee_position, msg.target
            last_distance = sample(stamp_seconds(msg.header), np.array([p.x, p.y, p.z]),
                                   np.array([aim.x, aim.y, aim.z]))
        elif m.asked_as == "/joint_states":
            t = stamp_seconds(msg.header)
            if t - last["state"] >= gap:
                last["state"] = t
                series["torque_t"].append(t)
                series["torque"].append(list(msg.effort))
                series["q"].append(list(msg.position))
        elif m.asked_as == "/diagnostics":
            payload = _diagnostics(msg, series, payload)
    if target is not None and np.isfinite(last_distance):
        reaches.append((last_distance, payload))  # the last reach, as far as it was recorded
    return {"series": {k: np.asarray(v, dtype=float) for k, v in series.items()}}, reaches, result


def _diagnostics(msg: object, series: dict[str, list], payload: float) -> float:
    """Take the damping gains and the payload from a DiagnosticArray; returns the payload now."""
    for status in msg.status:
        values = {kv.key: kv.value for kv in status.values}
        if status.name.startswith("snn_sac_controller"):
            gains = [float(g) for g in values.get("damping_gains", "").split(",") if g]
            if gains and series["t"]:
                series["damping_t"].append(series["t"][-1])
                series["damping"].append(gains)
        elif status.name.startswith("arm_sim") and "payload_kg" in values:
            payload = float(values["payload_kg"])
    return payload


def run(args: argparse.Namespace) -> dict:
    from snn_sac_ros.commands.demo_plots import write_plots

    path = Path(args.recording)
    if not path.is_file():
        raise FileNotFoundError(f"recording not found: {path}")
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    record, reaches, result = demo_record(path, args.record_hz)
    loaded = [i for i, (_, kg) in enumerate(reaches) if kg > 0]
    payload_reach = loaded[0] if loaded and loaded[0] > 0 else None
    plots = write_plots(out, record, payload_reach, reaches=reaches)
    finals = np.array([d for d, _ in reaches])
    summary = {"recording": str(path), "complete": result.complete, "reaches": len(reaches),
               "success_2cm": float(np.mean(finals <= 0.02)) if len(finals) else float("nan"),
               "payload_reach": payload_reach, "plots": [str(p) for p in plots]}
    print(f"{path.name}: {len(reaches)} reaches" + ("" if result.complete else " (file cut short: read to its cut)")
          + f", success at 2 cm {summary['success_2cm']:.0%}; plots: {', '.join(p.name for p in plots)} in {out}")
    return summary
