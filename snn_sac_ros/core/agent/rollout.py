"""The controller's loop without ROS: an :class:`OnlineAgent` ticking against a :class:`PyBulletArm`.

Each tick is :class:`~snn_sac_ros.core.control.tick.ReachTick`'s, the one ``snn_sac_controller`` runs
over DDS: the arm's state in, one agent step (learning inside it when on) with the reward of the tick
before, the torque applied for one tick of physics (the arm clamps it to its effort limits). Minus the
messaging, so online learning can be measured quickly and repeatably (same targets, no machine load).
A series of reach targets follows each other with no reset, as in the demo; a payload can be added
part-way. A ``residual`` torque can be added to the policy's: :func:`task_space_pd` (a non-learning reference
for what a change of control strategy recovers on a changed arm) or one of :mod:`~snn_sac_ros.core.agent.adaptation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snn_sac_ros.core.agent.online import OnlineAgent
from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm
from snn_sac_ros.core.control.tick import ReachTick
from snn_sac_ros.core.task import ReachTask


@dataclass(frozen=True)
class ReachPlan:
    """Targets in order, seconds per reach, and a payload [kg] set before reach ``payload_after`` and taken off
    again before reach ``payload_off_after``."""

    targets: tuple[np.ndarray, ...]
    reach_seconds: float = 3.0
    payload_kg: float = 0.0
    payload_after: int = -1  # -1: never
    payload_off_after: int = -1  # -1: never

    @classmethod
    def random(cls, arm: PyBulletArm, reaches: int, seed: int, **kwargs: float) -> ReachPlan:
        task, rng = ReachTask(), np.random.default_rng(seed)
        return cls(tuple(task.sample_target(arm, rng) for _ in range(reaches)), **kwargs)


Residual = Callable[[ArmState, np.ndarray, np.ndarray], np.ndarray]  # (state, target, policy torque) -> torque added


@dataclass(frozen=True)
class Tick:
    """One tick of :func:`run_reaches`, as a recorder sees it: the state used, what went in and out."""

    state: ArmState
    target: np.ndarray
    observation: np.ndarray
    action: np.ndarray
    torque: np.ndarray
    reward: float | None
    reach: int


def task_space_pd(arm: PyBulletArm, kp: float, kv: float) -> Residual:
    """``kp J^T (target - ee) - kv dq``: a spring to the target [N/m] and joint damping [Nm s/rad]."""

    def residual(state: ArmState, target: np.ndarray, _policy_torque: np.ndarray) -> np.ndarray:
        return kp * arm.jacobian(state.q).T @ (target - state.ee_position) - kv * state.dq

    return residual


def run_reaches(agent: OnlineAgent, arm: PyBulletArm, plan: ReachPlan,
                on_reach: Callable[[int, float], None] | None = None,
                residual: Residual | None = None, *, on_tick: Callable[[Tick], None] | None = None,
                adaptation: object | None = None) -> np.ndarray:
    """Run the plan, one agent step per ``arm.control_dt``; final distance [m] of every reach.

    ``residual`` adds a torque to the policy's on every tick (the arm clamps the sum to its effort limits);
    ``on_tick`` sees every tick (a recorder); ``adaptation`` is the tick's (learning on every tick, see
    :class:`~snn_sac_ros.core.control.tick.ReachTick`).
    """
    if abs(arm.control_dt - agent.dt) > 1e-9:
        raise ValueError(f"the arm's tick ({arm.control_dt} s) must equal the agent's dt ({agent.dt} s)")
    tick = ReachTick(agent, arm.forward_kinematics, arm.velocity_limits, agent.dt, continuous=arm.continuous,
                     adaptation=adaptation, adaptation_learning=True)
    ticks = max(1, round(plan.reach_seconds / agent.dt))
    finals = np.zeros(len(plan.targets))
    state = arm.state()
    tick.start_from(state.q, state.dq)
    for i, target in enumerate(plan.targets):
        if i == plan.payload_after and plan.payload_kg > 0:
            arm.set_payload(plan.payload_kg)
        elif i == plan.payload_off_after and plan.payload_kg > 0:
            arm.set_payload(0.0)
        tick.set_target(target)
        for _ in range(ticks):
            result = tick.step(state.q, state.dq, effort=state.effort)
            if result.torque is None:
                raise FloatingPointError(result.problem)
            torque = result.torque if residual is None else result.torque + residual(state, target, result.torque)
            if on_tick is not None:
                on_tick(Tick(state, target, result.observation, result.action, torque, result.reward, i))
            state = arm.apply_torque(torque)
        finals[i] = tick.task.distance(state.ee_position, target)
        if on_reach is not None:
            on_reach(i, float(finals[i]))
    return finals
