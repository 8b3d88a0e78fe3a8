"""Torque added beside the policy on a changed arm (a payload): a PES-learned pathway, and the bound of what any
adaptation of the dynamics can do.

:class:`PESAdaptation` is abr_control's adaptive dynamics scheme (DeWolf et al. 2016) in Nengo: an ensemble of
LIF neurons over the joint angles and velocities (and, with ``sees_torque``, the policy's torque), scaled onto the
upper half of the unit hypersphere (each dimension into [-1, 1], a constant 1 appended, the whole normalised: every
input lies where the neurons' encoders point, the scaling abr_control finds matters most), and decoders to joint
torque that start at zero and are learned by ``nengo.PES``. Two teachers: abr_control's (the error is minus a
task-space PD torque, taught within ``gate`` metres of the target, so the decoders integrate the PD correction),
and the residual (the decoders learn to output the torque the nominal model does not explain: the joints' effort
minus the model's inverse dynamics of the observed acceleration), which the controller uses. Its output is
clipped to ``limit`` [Nm]. It reads no other connection's weights.

:func:`matched_torque` is no learner: from the nominal model and the loaded one, the torque that makes the
loaded arm accelerate as the nominal one would under the same policy torque. A dynamics adaptation that learned
perfectly would add this; where it exceeds the motors' limits, no dynamics adaptation can restore the nominal
behaviour, and only a change of strategy (damping, a stiffer spring) can help.
"""

from __future__ import annotations

from dataclasses import dataclass

import nengo
import numpy as np

from snn_sac_ros.core.arm.pybullet_arm import ArmState, PyBulletArm

TEACHERS = ("pd", "residual")
#: the residual teacher does not learn a joint within this of its position limit [rad] (the stop holds it)
LIMIT_MARGIN_RAD = 0.02


@dataclass(frozen=True)
class PESConfig:
    """The PES pathway's settings."""

    neurons: int = 1000
    learning_rate: float = 2e-6
    """``nengo.PES`` learning rate"""
    teacher: str = "pd"
    """``pd``: minus a task-space PD torque near the target (abr_control's); ``residual``: the torque the nominal
    model does not explain (applied minus the nominal inverse dynamics of the observed acceleration), which the
    decoders learn to output (PES error = output - residual)"""
    kp: float = 20.0
    """teaching signal's spring to the target [N/m]"""
    kv: float = 1.0
    """teaching signal's joint damping [Nm s/rad]"""
    gate: float = 0.05
    """taught only within this distance of the target [m]"""
    limit: float | np.ndarray = 1.0
    """bound of the added torque [Nm], one for all joints or one per joint"""
    sees_torque: bool = False
    """the ensemble also represents the policy's torque (scaled by the effort limits): what the acceleration, and
    so a payload's inertial torque, depends on"""
    sees_velocity: bool = True
    """the ensemble represents the joint velocities (False: the joint angles alone, on which a payload's weight
    depends, in fewer dimensions)"""
    intercepts: tuple[float, float] = (0.3, 0.9)
    """uniform range of the neurons' intercepts (on the unit sphere: each neuron covers a cap of inputs)"""
    pre_synapse: float = 0.01
    """filter of the neurons' activities the rule sees [s]"""
    synapse: float = 0.005
    """filter of the decoded torque [s]"""
    teacher_synapse: float = 0.02
    """residual teacher: filter of the error's two terms [s] (the acceleration is a difference of velocities)"""

    def __post_init__(self) -> None:
        if (self.neurons < 1 or not self.learning_rate >= 0 or not np.all(np.asarray(self.limit) >= 0)
                or not self.gate >= 0):
            raise ValueError("PES adaptation needs neurons >= 1 and learning_rate, limit, gate >= 0")
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, got {self.teacher!r}")


#: the pathway ``snn_sac_controller`` runs with ``adaptation`` on (its parameters' defaults): taught by the residual,
#: over the joint angles and the policy's torque, bounded at 20 Nm (kuka_iiwa's measured settings)
CONTROLLER_CONFIG = PESConfig(learning_rate=1e-3, teacher="residual", limit=20.0, sees_torque=True,
                              sees_velocity=False)


def torque_bounds(values: float | list[float] | np.ndarray, n_joints: int) -> np.ndarray:
    """Per-joint bounds of the added torque [Nm] from one value for every joint or one per joint, each >= 0 and
    finite; a wrong length or value is refused."""
    bounds = np.atleast_1d(np.asarray(values, dtype=float))
    if bounds.size not in (1, n_joints):
        raise ValueError(f"the adaptation's torque bound needs 1 or {n_joints} values, got {bounds.size}")
    if not np.all(np.isfinite(bounds)) or np.any(bounds < 0):
        raise ValueError(f"the adaptation's torque bound must be finite values >= 0 [Nm], got {bounds.tolist()}")
    return np.broadcast_to(bounds, (n_joints,)).copy()


def sphere_inputs(*scaled: np.ndarray) -> np.ndarray:
    """Inputs each scaled into [-1, 1], a constant 1 appended, on the upper half of the unit hypersphere (see the
    module docstring)."""
    x = np.concatenate([*scaled, [1.0]])
    return x / np.linalg.norm(x)


#: the key of the learned decoders in a saved weights file
DECODERS_KEY = "adaptation/decoders"
#: the key of the ensemble they decode (neurons, dimensions, seed): decoders mean nothing to another ensemble
LAYOUT_KEY = "adaptation/layout"


class PESAdaptation:
    """The PES pathway for one arm, in a Nengo simulator of its own: :meth:`torque` once per control tick.

    It learns only while :meth:`torque` is told to (``learn``: the controller's learning switch, and never from a
    state that jumped); what it learned it adds either way. :meth:`decoders` and :meth:`load_decoders` save and
    restore it.
    """

    def __init__(self, model: PyBulletArm, dt: float, config: PESConfig | None = None, seed: int = 0) -> None:
        """``model``: the nominal arm's model (kinematics, and the dynamics the residual teacher compares with)."""
        self.model, self.config, self.dt, self.seed = model, config or PESConfig(), float(dt), int(seed)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        c, n = self.config, model.n_joints
        finite = np.isfinite(model.lower) & np.isfinite(model.upper)  # a continuous joint: one turn
        self._lower = np.where(finite, model.lower, -np.pi)
        self._upper = np.where(finite, model.upper, np.pi)
        self._velocity = np.asarray(model.velocity_limits, dtype=float)
        self._effort = np.asarray(model.effort_limits, dtype=float)
        self._limited = ~np.asarray(model.continuous, dtype=bool)
        self._added = np.zeros(n)
        dims = (1 + c.sees_velocity + c.sees_torque) * n + 1
        self._input = np.zeros(dims)
        self._input[-1] = 1.0
        self._teach = np.zeros(n)
        self._learning = np.zeros(1)
        rng = np.random.default_rng(seed)
        encoders = rng.standard_normal((c.neurons, dims))
        encoders[:, -1] = np.abs(encoders[:, -1])  # the inputs' half of the sphere
        encoders /= np.linalg.norm(encoders, axis=1, keepdims=True)
        with nengo.Network(label="PES adaptation", seed=seed) as self.network:
            state = nengo.Node(lambda t: self._input, label="joint state")
            self.ensemble = nengo.Ensemble(c.neurons, dims, encoders=encoders,
                                           intercepts=nengo.dists.Uniform(*c.intercepts), neuron_type=nengo.LIF(),
                                           label="adaptive ensemble")
            nengo.Connection(state, self.ensemble, synapse=None)
            self.output = nengo.Node(size_in=n, label="adaptive torque")
            self.connection = nengo.Connection(
                self.ensemble.neurons, self.output, transform=np.zeros((n, c.neurons)), synapse=c.synapse,
                learning_rule_type=nengo.PES(c.learning_rate, pre_synapse=nengo.Lowpass(c.pre_synapse)))
            # the error reaches the rule only while learning: a gate, 0 or 1
            error = nengo.Node(lambda t, x: x * self._learning[0], size_in=n, label="error while learning")
            nengo.Connection(error, self.connection.learning_rule, synapse=None)
            teacher = nengo.Node(lambda t: self._teach, label=f"{c.teacher} teaching signal")
            if c.teacher == "pd":  # abr_control's: the decoders integrate the PD torque
                nengo.Connection(teacher, error, transform=-1.0, synapse=None)
            else:  # the decoders learn to output the residual: error = output - residual, both filtered alike
                nengo.Connection(self.output, error, synapse=c.teacher_synapse)
                nengo.Connection(teacher, error, transform=-1.0, synapse=c.teacher_synapse)
        self.sim = nengo.Simulator(self.network, dt=dt, progress_bar=False, optimize=False, seed=seed)
        self._out = self.sim.signals[self.sim.model.sig[self.output]["in"]]
        self._weights = self.sim.signals[self.sim.model.sig[self.connection]["weights"]]

    def torque(self, q: np.ndarray, dq: np.ndarray, ee: np.ndarray, target: np.ndarray, policy_torque: np.ndarray,
               *, learn: bool = True, elapsed: float | None = None, effort: np.ndarray | None = None) -> np.ndarray:
        """One tick from joint state ``q``, ``dq`` (end effector ``ee``, the reach's ``target``) and the policy's
        torque: the added torque [Nm], and one PES step on this tick's teaching signal if ``learn``. ``elapsed``:
        seconds since the last tick's state (None: one ``dt``; 0: the same state again, nothing to learn from).
        ``effort``: the torque the joints reported applying since the last state (the arm's own gravity
        compensation and damping included); None: the last tick's command is taken as applied, plus the own
        torque of the model (right only when commands reach the joints without delay)."""
        c = self.config
        if c.teacher == "pd":
            error = target - ee
            if np.linalg.norm(error) < c.gate:
                self._teach[:] = c.kp * self.model.jacobian(q).T @ error - c.kv * dq
            else:
                self._teach[:] = 0.0
        elif self._last is not None:  # the last tick's state and torque, and the acceleration they gave
            q0, dq0, applied = self._last
            if elapsed is not None and elapsed <= 0:
                learn = False
            acceleration = (dq - dq0) / (self.dt if elapsed is None or elapsed <= 0 else elapsed)
            if effort is None:
                effort = applied + _own_torque(self.model, q0, dq0)
            residual = effort - self.model.inverse_dynamics(q0, dq0, acceleration)
            # A joint against its limit is held by the stop, whose torque no joint reports: what the model does not
            # explain there is the stop, no payload. Taught its own output, that joint's error is zero.
            stopped = self._limited & ((np.minimum(q0, q) <= self.model.lower + LIMIT_MARGIN_RAD)
                                       | (np.maximum(q0, q) >= self.model.upper - LIMIT_MARGIN_RAD))
            residual[stopped] = self._added[stopped]
            np.clip(residual, -c.limit, c.limit, out=self._teach)  # an impulse of the stop is no payload either
        self._learning[0] = float(learn and (c.teacher == "pd" or self._last is not None))
        position = 2.0 * (q - self._lower) / (self._upper - self._lower) - 1.0
        parts = [position]
        if c.sees_velocity:
            parts.append(np.clip(dq / self._velocity, -1.0, 1.0))
        if c.sees_torque:
            parts.append(np.clip(policy_torque / self._effort, -1.0, 1.0))
        self._input[:] = sphere_inputs(*parts)
        self.sim.step()
        added = self._added = np.clip(self._out, -c.limit, c.limit)
        # what reached the joints (the arm clamps), for the next tick's residual
        self._last = (np.array(q, dtype=float), np.array(dq, dtype=float),
                      np.clip(policy_torque + added, -self._effort, self._effort))
        return added

    def forget_state(self) -> None:
        """The joint-state sequence broke: no residual from the last state to the next."""
        self._last = None

    def decoders(self) -> np.ndarray:
        """A copy of the learned decoders (joints x neurons)."""
        return np.array(self._weights, copy=True)

    def layout(self) -> np.ndarray:
        """What the decoders decode: the ensemble's neurons, dimensions and seed (saved beside them)."""
        return np.array([self.config.neurons, self.ensemble.dimensions, self.seed])

    def load_decoders(self, decoders: np.ndarray, layout: np.ndarray | None = None) -> None:
        """Continue from saved decoders (ValueError if they do not fit this pathway, or were learned on an ensemble
        of another ``layout``; None: not recorded, the shape alone is checked)."""
        if layout is not None and not np.array_equal(np.asarray(layout), self.layout()):
            names = ("neurons", "dimensions", "seed")
            raise ValueError("they were learned on an ensemble of "
                             + ", ".join(f"{int(v)} {k}" for k, v in zip(names, layout))
                             + "; this one has " + ", ".join(f"{int(v)} {k}" for k, v in zip(names, self.layout())))
        decoders = np.asarray(decoders, dtype=float)
        if decoders.shape != self._weights.shape or not np.all(np.isfinite(decoders)):
            raise ValueError(f"adaptation decoders must be {self._weights.shape} finite values, got {decoders.shape}")
        self._weights[...] = decoders

    def close(self) -> None:
        self.sim.close()


def _own_torque(arm: PyBulletArm, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
    """What ``arm`` adds to a command at ``q``, ``dq`` (its gravity compensation and joint damping)."""
    gravity = arm.gravity_torque(q) if arm.gravity_compensation else np.zeros(arm.n_joints)
    return gravity - arm.joint_damping * dq


def matched_torque(nominal: PyBulletArm, loaded: PyBulletArm, state: ArmState, policy_torque: np.ndarray,
                   limit: float = np.inf) -> np.ndarray:
    """The torque [Nm] that gives the arm with a payload the acceleration the nominal arm has under
    ``policy_torque``, clipped to ``limit``: the loaded model's inverse dynamics of that acceleration minus the
    nominal model's (``loaded``: an arm built with ``payload_kg``; the arm's own gravity compensation is the
    nominal model's, so the payload's weight is part of what is matched)."""
    q, dq = state.q, state.dq
    bias = nominal.inverse_dynamics(q, dq, np.zeros(nominal.n_joints))
    acceleration = np.linalg.solve(nominal.mass_matrix(q), policy_torque + _own_torque(nominal, q, dq) - bias)
    needed = loaded.inverse_dynamics(q, dq, acceleration) - nominal.inverse_dynamics(q, dq, acceleration)
    return np.clip(needed, -limit, limit)
