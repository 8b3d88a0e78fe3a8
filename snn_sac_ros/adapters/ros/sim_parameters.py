"""``arm_sim``'s parameters: declared with types, ranges and descriptions; checked and applied at run time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from snn_sac_ros.adapters.ros.common import declare, finite_list, is_unset
from snn_sac_ros.core.arm.specs import PRESETS, ArmSpec, resolve_arm

#: array parameters that may be unset (their sentinel reads as None)
_ARRAYS = ("joints", "initial_positions", "snapshot_targets")


class SimParameters:
    """Parameter handling of :class:`~snn_sac_ros.adapters.ros.sim_node.ArmSimNode`."""

    def _declare_parameters(self) -> None:
        d = declare
        self._params = {
            "arm": d(self, "arm", "planar2", f"preset ({', '.join(PRESETS)}) or a URDF file path", read_only=True),
            "joints": d(self, "joints", None, "controlled joints in command order; unset: the arm's joints. "
                        "For a preset, a reordering of its joints", read_only=True, array_of=str),
            "ee_link": d(self, "ee_link", "", "end-effector link of a URDF; empty: the preset's or the last link",
                         read_only=True),
            "physics_dt": d(self, "physics_dt", 0.001, "physics step [s]", low=1e-5, high=0.05, read_only=True),
            "publish_rate": d(self, "publish_rate", 500.0, "joint state rate and command update rate [Hz, sim "
                              "time]; a whole number of physics steps per period", low=1.0, high=10000.0,
                              read_only=True),
            "clock_rate": d(self, "clock_rate", 100.0, "/clock rate [Hz, sim time], rounded to whole control "
                            "steps; 0: every control step", low=0.0, high=10000.0, read_only=True),
            "ee_pose_rate": d(self, "ee_pose_rate", 100.0, "ee_pose rate [Hz, sim time], rounded to whole "
                              "control steps; 0: every control step", low=0.0, high=10000.0, read_only=True),
            "real_time_factor": d(self, "real_time_factor", 1.0, "sim seconds per wall second; 0: as fast as "
                                  "possible", low=0.0, high=1000.0),
            "lockstep": d(self, "lockstep", False, "advance only on a command or a ~/step call (one control "
                          "step each); real_time_factor is then ignored"),
            "initial_positions": d(self, "initial_positions", None, "joint positions [rad] at start and on "
                                   "~/reset, in joints order; unset: the arm's home", array_of=float),
            "reset_noise": d(self, "reset_noise", 0.0, "uniform noise [rad] added to each initial position on "
                             "every reset, drawn from seed", low=0.0, high=1.0),
            "gravity_compensation": d(self, "gravity_compensation", True, "add the model's gravity torque to "
                                      "every command, as a torque-controlled arm's firmware does"),
            "gui": d(self, "gui", False, "open PyBullet's GUI (needs a display)", read_only=True),
            "command_timeout": d(self, "command_timeout", 0.1, "sim seconds after which a command is stale "
                                 "and the arm gets zero torque; 0: never", low=0.0, high=3600.0),
            "seed": d(self, "seed", 0, "seed of the reset noise", low=0, high=2**31 - 1, read_only=True),
            "payload_kg": d(self, "payload_kg", 0.0, "extra mass at the end-effector link [kg]", low=0.0,
                            high=100.0),
            "frame_id": d(self, "frame_id", "base_link", "frame of ee_pose: the arm's base", read_only=True),
            "randomize": d(self, "randomize", "", "randomisation profile (a name under config/randomization or a "
                           "YAML path), drawn at every reset from seed; empty: the nominal arm", read_only=True),
            "snapshot_path": d(self, "snapshot_path", "arm_sim_snapshot.png", "PNG written by ~/snapshot; "
                               "'{n}' is replaced by a counter"),
            "snapshot_targets": d(self, "snapshot_targets", None, "snapshot (as ~/snapshot does) when the n-th "
                                  "target heard on target arrives, n counted from 0; unset: none. Taken by "
                                  "the arm, so no client has to catch a short run's targets", array_of=int),
            "snapshot_width": d(self, "snapshot_width", 640, "snapshot width [px]", low=16, high=4096),
            "snapshot_height": d(self, "snapshot_height", 480, "snapshot height [px]", low=16, high=4096),
            "thread_priority": d(self, "thread_priority", 0, "SCHED_FIFO priority (1-99) of the thread that steps "
                                 "the arm and publishes its states; 0: normal scheduling. Refused with the "
                                 "OS's reason where it does not allow it (the arm runs on)", low=0, high=99,
                                 read_only=True),
            "diagnostics_period": d(self, "diagnostics_period", 1.0, "wall seconds between /diagnostics "
                                    "timing reports; 0: none", low=0.0, high=3600.0, read_only=True),
        }

    @staticmethod
    def _spec(arm: str, joints: Sequence[str] | None, ee_link: str) -> ArmSpec:
        """The arm spec; for a preset, ``joints`` may reorder its joints (home is reordered with them)."""
        if arm not in PRESETS:
            return resolve_arm(arm, list(joints) if joints else None, ee_link or None)
        spec = resolve_arm(arm)
        if ee_link:
            raise ValueError(f"preset {arm!r} fixes its end-effector link; give a URDF path to choose one")
        if not joints:
            return spec
        if sorted(joints) != sorted(spec.joints):
            raise ValueError(f"joints {list(joints)} must be an ordering of preset {arm!r}'s joints "
                             f"{list(spec.joints)}; give a URDF path to control other joints")
        home = dict(zip(spec.joints, spec.home or (0.0,) * len(spec.joints)))
        return dataclasses.replace(spec, joints=tuple(joints), home=tuple(home[j] for j in joints))

    def _every(self, rate: float) -> int:
        """Control steps between two messages at ``rate`` Hz (0: every step)."""
        return 1 if rate <= 0 else max(1, round(1.0 / (rate * self.control_dt)))

    @staticmethod
    def _substeps(physics_dt: float, publish_rate: float) -> int:
        steps = 1.0 / (physics_dt * publish_rate)
        if steps < 1.0 - 1e-9 or abs(steps - round(steps)) > 1e-6 * steps:
            raise ValueError(f"publish_rate {publish_rate:g} Hz must be the physics rate {1 / physics_dt:g} Hz "
                             f"divided by a whole number")
        return round(steps)

    def _check_initial(self, values: Sequence[float] | None) -> str:
        """Why ``values`` cannot be the initial joint configuration ('' when they can)."""
        if is_unset(values):
            return ""
        q = np.asarray(values, dtype=float)
        if q.shape != (self.arm.n_joints,):
            return (f"initial_positions needs {self.arm.n_joints} values (joints {list(self.arm.joint_names)}), "
                    f"got {q.size}")
        if not finite_list(values):
            return "initial_positions has non-finite values"
        outside = [n for n, v, lo, hi in zip(self.arm.joint_names, q, self.arm.lower, self.arm.upper)
                   if not lo - 1e-9 <= v <= hi + 1e-9]
        return f"initial_positions outside the joint limits for {outside}" if outside else ""

    def validate_parameters_callback(self, params: list[Parameter]) -> SetParametersResult:
        """Refuse values the descriptors cannot express; the previous values stay."""
        for param in params:
            why = ""
            if param.name == "initial_positions":
                why = self._check_initial(param.value)
            elif param.name == "snapshot_path":
                folder = Path(str(param.value).replace("{n}", "0")).expanduser().resolve().parent
                why = "" if folder.is_dir() else f"snapshot_path folder {folder} does not exist"
            if why:
                return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    def apply_parameters_callback(self, params: list[Parameter]) -> None:
        """Apply accepted run-time changes to the arm and the pacing."""
        for param in params:
            self._params[param.name] = None if param.name in _ARRAYS and is_unset(param.value) else param.value
            if param.name == "payload_kg":
                self.arm.set_payload(float(param.value))
                self.get_logger().info(f"payload set to {param.value:g} kg")
            elif param.name == "gravity_compensation":
                self.arm.gravity_compensation = bool(param.value)
            elif param.name in ("real_time_factor", "lockstep"):
                self._timer.timer_period_ns = round(self._timer_period() * 1e9)
                self._anchor()
        if any(p.name in ("real_time_factor", "lockstep") for p in params):
            self._window_stats = self._new_stats()

