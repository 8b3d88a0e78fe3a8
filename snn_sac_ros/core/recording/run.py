"""Recording the core rollout (:func:`~snn_sac_ros.core.agent.rollout.run_reaches`) as the ROS run would be recorded.

The same topics, types and per-tick record as the controller and the arm write over ROS, stamped with sim time,
so what reads a ROS recording (``plot``, ``train --from-bag``) reads these too, and a recording can be made
without ROS (a test, a quick experiment).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.agent.rollout import Tick
from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm
from snn_sac_ros.core.recording import messages
from snn_sac_ros.core.recording.writer import McapRecorder

CONTROLLER_STATUS = "snn_sac_controller: control loop"
ARM_STATUS = "arm_sim: physics loop"


class RolloutRecorder:
    """An ``on_tick`` for :func:`run_reaches` that writes joint states, commands, targets, end-effector poses, the
    tick records and (every ``diagnostics_period`` sim seconds) the controller's and the arm's diagnostics.

    ``metadata`` goes into the file's ``snn_sac_ros`` metadata record (e.g. ``payload_reach``).
    """

    def __init__(self, path: str | Path, agent: OnlineAgent, arm: PyBulletArm, *, diagnostics_period: float = 1.0,
                 metadata: dict[str, object] | None = None, **recorder_options: object) -> None:
        info = {"arm": arm.spec.name, "control_dt": arm.control_dt, **(metadata or {})}
        self.recorder = McapRecorder(path, metadata={"snn_sac_ros": {k: str(v) for k, v in info.items()}},
                                     **recorder_options)
        self.channels = {topic: self.recorder.channel(topic, schema) for topic, schema in messages.TOPICS.items()}
        self.agent, self.arm, self.period = agent, arm, float(diagnostics_period)
        self.names = arm.joint_names
        self._target: np.ndarray | None = None
        self._next_diagnostics = 0.0

    def _write(self, topic: str, message: dict, t: float) -> None:
        self.recorder.write(self.channels[topic], message, round(t * 1e9))

    def __call__(self, tick: Tick) -> None:
        s, t = tick.state, tick.state.sim_time
        if self._target is None or not np.array_equal(tick.target, self._target):
            self._target = np.array(tick.target, float)
            self._write("/target", messages.point_stamped(t, self._target), t)
        self._write("/joint_states", messages.joint_state(t, self.names, s.q, s.dq, s.effort), t)
        self._write("/ee_pose", messages.pose_stamped(t, s.ee_position), t)
        self._write("/effort_controller/commands", messages.float64_array(tick.torque), t)
        self._write("/snn_sac_controller/tick", messages.tick_record(
            t, joint_names=self.names, q=s.q, dq=s.dq, ee=s.ee_position, target=tick.target,
            observation=tick.observation, action=np.clip(tick.action, -1.0, 1.0), torque=tick.torque,
            reward=tick.reward, learning=self.agent.learning, commanded=True, episode=tick.reach), t)
        if t >= self._next_diagnostics:
            self._next_diagnostics = t + self.period
            gains = ",".join(f"{g:.3f}" for g in self.agent.damping_gains())
            self._write("/diagnostics", messages.diagnostic_array(
                t, CONTROLLER_STATUS, {"learning": "on" if self.agent.learning else "off", "damping_gains": gains,
                                       "recorder_dropped": self.recorder.dropped}), t)
            self._write("/diagnostics", messages.diagnostic_array(
                t, ARM_STATUS, {"payload_kg": self.arm.payload_kg}, hardware_id=self.arm.spec.name), t)

    def close(self) -> None:
        self.recorder.close()
