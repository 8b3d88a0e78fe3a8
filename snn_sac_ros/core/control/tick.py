"""One control tick of the reach controller, written once for every loop that runs the agent.

:class:`ReachTick` is what ``snn_sac_controller`` runs on each ROS tick and what
:func:`~snn_sac_ros.core.agent.rollout.run_reaches` runs against PyBullet without ROS, so the two cannot
drift apart: from a joint state and the current target it computes the end effector and its distance,
the reward of the action before, the episode bounds (a new target ends the episode), one agent step, and
the torque. What is checked where, once each:

- joint states (names, lengths, finiteness, range) and targets (finiteness, reach, trained azimuth) when
  they arrive (:func:`~snn_sac_ros.core.joint_input.order_joint_state`, :func:`target_problem`), so the
  observation is encoded and handed to the agent without re-checking;
- the action is the agent's own: ``step`` returns finite values in [-1, 1] or raises;
- the torque is scaled here unclamped; the caller's :class:`~snn_sac_ros.core.safety.TorqueGuard` (or the
  simulated arm, which clamps to its effort limits) checks and clamps it once.

A joint state that moved farther from the previous one than the arm can move in the time between them
(twice the larger of its velocity limits and the two states' own velocities) is acted on but not learned
from: a test client or a faulty driver must not teach the policy physics the arm does not have; nor is the
first state after a stop or an invalid state (nothing to compare it with). A loop
that ticks faster than states come steps on the same state again (``new_state=False``): that tick keeps
the verdict the state got when it was new, since it did not move from itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snn_sac_ros.core.agent.checkpoint import trained_control_hz
from snn_sac_ros.core.joint_input import wrap_angle
from snn_sac_ros.core.task import ReachTask

#: Joint states may move up to this many times max(velocity limit, |dq|) times the time between them.
JUMP_VELOCITY_FACTOR = 2.0
#: Position noise [rad] never counted as a jump.
JUMP_TOLERANCE_RAD = 1e-3


@dataclass(frozen=True)
class TickResult:
    """One tick's outcome: the torque before the safety clamp [Nm] (None: the policy gave none, see
    ``problem``), the end effector's distance to the target [m], whether the tick was learned from, and what went
    through the agent (observation, action, reward) and the end effector it computed [m], for a recorder."""

    torque: np.ndarray | None
    distance: float
    learned: bool
    problem: str = ""
    observation: np.ndarray | None = None
    action: np.ndarray | None = None
    reward: float | None = None
    ee: np.ndarray | None = None


def target_problem(point: np.ndarray, contract: object, max_azimuth: float) -> tuple[str, str] | None:
    """``(kind, message)`` when ``point`` [m, base frame] is no target for this policy, else None.

    Refused: non-finite coordinates, a point beyond 1.5 times the trained workspace's reach from its
    centre, and a point more than ``max_azimuth`` [rad] around the base from +x (where it was not trained).
    """
    point = np.asarray(point, dtype=float)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        return "target_non_finite", f"target has non-finite coordinates {point.tolist()}"
    axes = contract.axis_indices
    offset = float(np.linalg.norm(point[axes] - np.asarray(contract.workspace_center)[axes]))
    if offset > 1.5 * contract.workspace_reach:
        return "target_out_of_reach", (f"target {np.round(point, 3).tolist()} is {offset:.2f} m from the workspace "
                                       "centre, beyond the arm's reach")
    azimuth = math.atan2(point[1], point[0])
    if abs(azimuth) > max_azimuth:
        return "target_outside_training", (f"target {np.round(point, 3).tolist()} lies {math.degrees(azimuth):.0f} "
                                           f"deg from the base's +x axis; the policy was trained within "
                                           f"{math.degrees(max_azimuth):.0f} deg of it")
    return None


def tick_problem(has_state: bool, input_error: tuple[str, str] | None, gate: str, has_target: bool) -> str | None:
    """Why a tick may not run the policy (None: it may), from one snapshot of the newest joint state.

    The snapshot decides, not the guard's record of when a state last arrived: a control thread can read the
    snapshot before the first state and check the guard after it came.
    """
    if input_error is not None:
        return input_error[1]
    if gate:
        return gate
    if not has_state:
        return "no joint states"  # the words the guard uses: waiting, not a fault
    return None if has_target else "no target received yet"


class ReachTick:
    """The agent's tick: ``set_target`` on each target, ``step`` on each joint state; see the module docstring.

    Parameters
    ----------
    agent: an :class:`~snn_sac_ros.core.agent.online.OnlineAgent` (its contracts say how to encode and scale).
    forward_kinematics: joint positions [rad] -> end-effector position [m, base frame].
    velocity_limits: per joint [rad/s], for telling a jump from a move.
    period: the control period [s]: the shortest time two joint states are taken to be apart.
    continuous: mask of continuous joints (their position differences are wrapped).
    apply_damping: subtract the checkpoint's joint damping times the velocity (robots that do not damp).
    task: the reward and distance.
    adaptation: a pathway whose torque is added to the policy's
        (:class:`~snn_sac_ros.core.agent.adaptation.PESAdaptation`); it learns while ``adaptation_learning`` is
        True, or while the agent learns when that is None, and never from a state that jumped.
    """

    def __init__(self, agent: object, forward_kinematics: Callable[[np.ndarray], np.ndarray],
                 velocity_limits: np.ndarray, period: float, *, continuous: np.ndarray | None = None,
                 apply_damping: bool = False, task: ReachTask | None = None, adaptation: object | None = None,
                 adaptation_learning: bool | None = None) -> None:
        self.agent = agent
        self.adaptation, self.adaptation_learning = adaptation, adaptation_learning
        self.added = np.zeros(len(velocity_limits))  # the adaptation's last torque [Nm]
        self.task = task or ReachTask()
        self._fk = forward_kinematics
        self._contract = agent.observation_contract
        self._scale = agent.action_contract.scale
        self._velocity_limits = np.asarray(velocity_limits, dtype=float)
        self._continuous = None if continuous is None or not np.any(continuous) else np.asarray(continuous, bool)
        self.period = float(period)
        self.apply_damping = bool(apply_damping)
        self.target: np.ndarray | None = None
        self.distance = math.nan
        self.jumps = 0
        self._last_action: np.ndarray | None = None
        # For a contract that observes the last action: the ticks' actions of the policy period under way, and
        # the mean of the last whole period, observed until the next one is whole. So the policy sees its own
        # output as the env showed it, held over a step and one step late; a mean sliding every tick would close
        # a loop through the policy at the tick rate, which training never saw. Zero at the start and after a
        # dropped command, as the arm's torque was.
        control_hz = trained_control_hz(getattr(agent, "metadata", {}))
        window = max(1, round(1.0 / (control_hz * self.period))) if self._contract.last_action else 1
        self._period_actions = np.zeros((window, self._velocity_limits.size))
        self._period_index = 0
        self._held_action = np.zeros(self._velocity_limits.size)
        self._last_q: np.ndarray | None = None
        self._last_dq: np.ndarray | None = None
        self._last_jumped = True
        self._paused = False  # learning switched off for a jumped tick, until its finish

    def set_target(self, target: np.ndarray) -> float | None:
        """Aim at ``target`` [m]; a different target ends the episode. Returns the final distance [m] of the
        reach it ended (None when none ended: same target, or the first one)."""
        target = np.asarray(target, dtype=float)
        if self.target is not None and np.array_equal(target, self.target):
            return None
        ended = None if self.target is None else self.distance
        self.agent.end_episode()
        self.target = target.copy()
        self._last_action = None  # the last action was scored against the old target
        return ended

    def command_dropped(self) -> None:
        """The last computed torque was not applied (a stop): the next tick must not reward it, nor learn from
        its state as the continuation of the last one (the arm moved without the policy meanwhile)."""
        self._last_action = None
        self._last_q = None
        self._period_actions[:] = 0.0
        self._period_index = 0
        self._held_action[:] = 0.0
        if self.adaptation is not None:
            self.adaptation.forget_state()

    def _hold(self, action: np.ndarray) -> None:
        if not self._contract.last_action:  # nothing observes it: no work on the tick
            return
        self._period_actions[self._period_index] = action
        self._period_index = (self._period_index + 1) % len(self._period_actions)
        if self._period_index == 0:
            self._held_action = self._period_actions.mean(axis=0)

    def start_from(self, q: np.ndarray, dq: np.ndarray) -> None:
        """The arm is known to be at ``q``, ``dq`` now (a simulation's start): the first step is checked
        against it."""
        self._last_q, self._last_dq = np.array(q, dtype=float), np.array(dq, dtype=float)

    def forget_state(self) -> None:
        """The joint-state sequence broke (invalid or missing states): the next state cannot be checked
        against the last one, so it is not learned from."""
        self._last_q = None
        if self.adaptation is not None:
            self.adaptation.forget_state()

    def jumped(self, q: np.ndarray, dq: np.ndarray, elapsed: float) -> bool:
        """Whether ``q`` moved farther from the last state than the arm can in ``elapsed`` seconds (True
        when there is no last state to compare with)."""
        if self._last_q is None:
            return True
        moved = q - self._last_q
        if self._continuous is not None:
            moved = np.where(self._continuous, wrap_angle(moved), moved)
        speed = np.maximum(self._velocity_limits, np.maximum(np.abs(dq), np.abs(self._last_dq)))
        reach = JUMP_VELOCITY_FACTOR * speed * max(elapsed, self.period) + JUMP_TOLERANCE_RAD
        return bool(np.any(np.abs(moved) > reach))

    def step(self, q: np.ndarray, dq: np.ndarray, elapsed: float | None = None, new_state: bool = True,
             effort: np.ndarray | None = None, *, finish: bool = True) -> TickResult:
        """One tick from a validated joint state, ``elapsed`` [s] after the previous one (None: one period);
        ``new_state`` False when the last tick stepped on this same state; ``effort`` the state's joint efforts
        (what the adaptation learns from, when the arm reports them). ``finish`` False: the agent's learning waits
        for :meth:`finish`, which the caller runs once the command is out."""
        if self.target is None:
            raise RuntimeError("no target: call set_target first")
        self.finish()
        ee = self._fk(q)
        self.distance = distance = self.task.distance(ee, self.target)
        if new_state or self._last_q is None:
            self._last_jumped = self.jumped(q, dq, self.period if elapsed is None else elapsed)
        jumped = self._last_jumped
        self._last_q, self._last_dq = np.array(q, dtype=float), np.array(dq, dtype=float)
        self.jumps += jumped and self.agent.learning
        reward = None if self._last_action is None or jumped else self.task.reward(distance, self._last_action)
        held = self._held_action if self._contract.last_action else None
        obs = self._contract.encode_unchecked(q, dq, ee, self.target, held)
        learning = self.agent.learning
        if jumped and learning:
            self.agent.learning = False  # until the tick's learning ran: back on in finish
            self._paused = True
        try:
            action = self.agent.act(obs, reward, checked=True)
        except (ValueError, FloatingPointError) as error:  # non-finite in the network or its output
            self._last_action = None
            self._hold(np.zeros(self._period_actions.shape[1]))
            self._resume_learning()
            return TickResult(None, distance, False, f"policy output refused: {error}", obs, None, reward, ee)
        self._last_action = action
        self._hold(action)
        torque = self._scale(action, dq if self.apply_damping else None)
        if self.adaptation is not None:
            learns = learning if self.adaptation_learning is None else self.adaptation_learning
            since = (self.period if elapsed is None else elapsed) if new_state else 0.0
            self.added = self.adaptation.torque(q, dq, ee, self.target, torque, learn=learns and not jumped,
                                                elapsed=since, effort=effort)
            torque = torque + self.added
        problem = self.finish() if finish else ""
        if problem:
            return TickResult(None, distance, False, problem, obs, action, reward, ee)
        return TickResult(torque, distance, learning and not jumped, observation=obs, action=action, reward=reward,
                          ee=ee)

    def finish(self) -> str:
        """The agent's learning for the last ``step``, if it still waits (the agent knows; nothing runs twice); '' or
        why it failed (a non-finite value in a learning operator: that tick learns nothing more)."""
        try:
            self.agent.finish()
        except (ValueError, FloatingPointError) as error:
            return f"learning step refused: {error}"
        finally:
            self._resume_learning()
        return ""

    def _resume_learning(self) -> None:
        """Learning back on after a tick that jumped (it was off for that tick only)."""
        if self._paused:
            self._paused = False
            self.agent.learning = True
