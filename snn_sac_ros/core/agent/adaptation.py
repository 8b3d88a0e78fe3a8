"""Torque added beside the policy on a changed arm (a payload): a PES-learned pathway, and the bound of what any
adaptation of the dynamics can do.

:class:`PESAdaptation` is abr_control's adaptive dynamics scheme (DeWolf et al. 2016) in Nengo: an ensemble of
LIF neurons over the joint angles and velocities, scaled onto the upper half of the unit hypersphere (each
dimension into [-1, 1], a constant 1 appended, the whole normalised: every input lies where the neurons' encoders
point, the scaling abr_control finds matters most), and decoders to joint torque that start at zero and are
learned by ``nengo.PES``. Its error is minus a task-space PD torque, taught only within ``gate`` metres of the
target (where a payload spoils the settling), so the decoders integrate the PD correction over the states it is
needed in. Its output is clipped to ``limit`` [Nm]. It reads no other connection's weights.

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
    limit: float = 1.0
    """bound of the added torque per joint [Nm]"""
    intercepts: tuple[float, float] = (0.3, 0.9)
    """uniform range of the neurons' intercepts (on the unit sphere: each neuron covers a cap of inputs)"""
    pre_synapse: float = 0.01
    """filter of the neurons' activities the rule sees [s]"""
    synapse: float = 0.005
    """filter of the decoded torque [s]"""
    teacher_synapse: float = 0.02
    """residual teacher: filter of the error's two terms [s] (the acceleration is a difference of velocities)"""

    def __post_init__(self) -> None:
        if self.neurons < 1 or not self.learning_rate >= 0 or not self.limit >= 0 or not self.gate >= 0:
            raise ValueError("PES adaptation needs neurons >= 1 and learning_rate, limit, gate >= 0")
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, got {self.teacher!r}")


def sphere_inputs(q: np.ndarray, dq: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  velocity_limits: np.ndarray) -> np.ndarray:
    """Joint angles and velocities on the upper half of the unit hypersphere (see the module docstring)."""
    x = np.concatenate([2.0 * (q - lower) / (upper - lower) - 1.0, np.clip(dq / velocity_limits, -1.0, 1.0), [1.0]])
    return x / np.linalg.norm(x)


class PESAdaptation:
    """The PES pathway for one arm, in a Nengo simulator of its own: :meth:`torque` once per control tick."""

    def __init__(self, model: PyBulletArm, dt: float, config: PESConfig | None = None, seed: int = 0) -> None:
        """``model``: the nominal arm's model (kinematics, and the dynamics the residual teacher compares with)."""
        self.model, self.config, self.dt = model, config or PESConfig(), float(dt)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        arm = model
        c, n = self.config, arm.n_joints
        finite = np.isfinite(arm.lower) & np.isfinite(arm.upper)  # a continuous joint: one turn
        self._lower = np.where(finite, arm.lower, -np.pi)
        self._upper = np.where(finite, arm.upper, np.pi)
        self._velocity = np.asarray(arm.velocity_limits, dtype=float)
        dims = 2 * n + 1
        self._input = np.zeros(dims)
        self._input[-1] = 1.0
        self._teach = np.zeros(n)
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
            teacher = nengo.Node(lambda t: self._teach, label=f"{c.teacher} teaching signal")
            if c.teacher == "pd":  # abr_control's: the decoders integrate the PD torque
                nengo.Connection(teacher, self.connection.learning_rule, transform=-1.0, synapse=None)
            else:  # the decoders learn to output the residual: error = output - residual, both filtered alike
                nengo.Connection(self.output, self.connection.learning_rule, synapse=c.teacher_synapse)
                nengo.Connection(teacher, self.connection.learning_rule, transform=-1.0, synapse=c.teacher_synapse)
        self.sim = nengo.Simulator(self.network, dt=dt, progress_bar=False, optimize=False, seed=seed)
        self._out = self.sim.signals[self.sim.model.sig[self.output]["in"]]

    def torque(self, state: ArmState, target: np.ndarray, policy_torque: np.ndarray) -> np.ndarray:
        """One tick: the added torque [Nm] for this state, and one PES step on this tick's teaching signal."""
        c = self.config
        if c.teacher == "pd":
            error = target - state.ee_position
            if np.linalg.norm(error) < c.gate:
                self._teach[:] = c.kp * self.model.jacobian(state.q).T @ error - c.kv * state.dq
            else:
                self._teach[:] = 0.0
        elif self._last is not None:  # the last tick's state and torque, and the acceleration they gave
            q, dq, applied = self._last
            acceleration = (state.dq - dq) / self.dt
            own = self.model.gravity_torque(q) if self.model.gravity_compensation else 0.0
            residual = applied + own - self.model.joint_damping * dq - self.model.inverse_dynamics(q, dq, acceleration)
            np.clip(residual, -c.limit, c.limit, out=self._teach)  # a joint limit's impulse is no payload
        self._input[:] = sphere_inputs(state.q, state.dq, self._lower, self._upper, self._velocity)
        self.sim.step()
        added = np.clip(self._out, -c.limit, c.limit)
        self._last = (state.q.copy(), state.dq.copy(), policy_torque + added)
        return added

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
