"""A torque-controlled arm in PyBullet: the physics every other part of the package drives.

Shaped like abr_control's interfaces: ``reset`` and ``state`` read, ``apply_torque`` writes and steps.
The PyBullet pitfalls from DOMAIN.md are handled here once: the default velocity motors are released
before torque control, the simulation is stepped explicitly at a fixed time step (torques are re-applied
on every physics step, because PyBullet clears them after each one), and sim time is kept by us.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb
from pybullet_utils.bullet_client import BulletClient

from snn_sac_ros.core.arm.specs import ArmSpec, resolve_arm

if TYPE_CHECKING:
    from snn_sac_ros.core.arm.kinematics import KinematicChain
    from snn_sac_ros.core.arm.randomization import ArmPerturbation, RandomizationProfile

_MOVABLE = (pb.JOINT_REVOLUTE, pb.JOINT_PRISMATIC)


@dataclass(frozen=True)
class ArmState:
    """One read-out of the arm.

    q: joint positions [rad], dq: joint velocities [rad/s], effort: torques applied during the last
    control step [Nm] (after clamping, gravity compensation included), ee_position: end effector in
    the base frame [m], sim_time: seconds of simulated time since the last reset.
    """

    q: np.ndarray
    dq: np.ndarray
    effort: np.ndarray
    ee_position: np.ndarray
    sim_time: float


class PyBulletArm:
    """An arm loaded from a URDF, driven by joint torques at a fixed physics step.

    Parameters
    ----------
    arm: preset name, URDF path or :class:`ArmSpec`.
    physics_dt: physics time step [s].
    substeps: physics steps per control step (``apply_torque`` call).
    gravity_compensation: add the model's gravity torque (inverse dynamics at zero velocity and
        acceleration) to every command, as a real arm's own controller does. ``None`` takes the
        spec's default.
    gui: open PyBullet's GUI instead of running headless (DIRECT).
    joints, ee_link: for a URDF path, the controlled joints and the end-effector link.
    payload_kg: a payload carried from the start. PyBullet's dynamics calls (mass matrix, inverse dynamics, the
        gravity torque) keep the masses they first saw, so a payload set later (:meth:`set_payload`) changes the
        physics but not those calls, as a real arm's controller does not know a payload it picked up; a model
        of the loaded arm's dynamics is an arm loaded with it.

    ``perturbation`` is the randomisation :meth:`perturb` applies (:mod:`.randomization`); ``None``: the
    nominal arm.
    """

    def __init__(self, arm: str | ArmSpec = "planar2", *, physics_dt: float = 1e-3, substeps: int = 1,
                 gravity_compensation: bool | None = None, gui: bool = False,
                 joints: list[str] | tuple[str, ...] | None = None, ee_link: str | None = None,
                 payload_kg: float = 0.0) -> None:
        if physics_dt <= 0 or not np.isfinite(physics_dt):
            raise ValueError(f"physics_dt must be a positive number of seconds, got {physics_dt}")
        if substeps < 1:
            raise ValueError(f"substeps must be at least 1, got {substeps}")
        self.spec = resolve_arm(arm, joints, ee_link)
        self.physics_dt = float(physics_dt)
        self.substeps = int(substeps)
        self.gravity_compensation = (self.spec.gravity_compensation if gravity_compensation is None
                                     else bool(gravity_compensation))
        self.physics_seconds = 0.0  # wall time spent inside PyBullet's stepSimulation, for benchmarks
        self.physics_steps = 0  # physics steps since construction (never reset)
        self.perturbation: ArmPerturbation | None = None
        self._client = BulletClient(connection_mode=pb.GUI if gui else pb.DIRECT)
        # The calls made on every physics step, bound once: BulletClient wraps each call on every access.
        cid = self._client._client
        self._step_simulation = partial(pb.stepSimulation, physicsClientId=cid)
        self._set_motors = partial(pb.setJointMotorControlArray, physicsClientId=cid)
        self._get_joint_states = partial(pb.getJointStates, physicsClientId=cid)
        self._inverse_dynamics = partial(pb.calculateInverseDynamics, physicsClientId=cid)
        self._client.setTimeStep(self.physics_dt)
        self._client.setGravity(0.0, 0.0, -9.81)
        self._body = self._client.loadURDF(str(self.spec.urdf_path()), useFixedBase=True,
                                           flags=pb.URDF_USE_INERTIA_FROM_FILE)
        self._read_model()
        nominal_ee_mass = self._client.getDynamicsInfo(self._body, self._ee_index)[0]
        if payload_kg:  # before the first dynamics call, which keeps the masses it saw (see the class docstring)
            self._client.changeDynamics(self._body, self._ee_index, mass=nominal_ee_mass + payload_kg)
        # per joint [Nm s/rad]; rounded like the action scale, because contracts compare it exactly
        self.joint_damping = (np.round(self.joint_inertia(self.home) / self.spec.damping_seconds, 4)
                              if self.spec.damping_seconds > 0 else np.zeros(self.n_joints))
        self._payload_kg = float(payload_kg)
        self._ee_base_mass = nominal_ee_mass
        self._sim_time = 0.0
        self._last_effort = np.zeros(self.n_joints)
        self.reset()

    # -- model -------------------------------------------------------------------------------------
    def _read_model(self) -> None:
        c, body = self._client, self._body
        infos = [c.getJointInfo(body, j) for j in range(c.getNumJoints(body))]
        movable = [info for info in infos if info[2] in _MOVABLE]
        by_name = {info[1].decode(): info for info in movable}
        names = list(self.spec.joints) or [info[1].decode() for info in movable]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"joints {unknown} are not movable joints of {self.spec.urdf_path().name}; "
                             f"it has {sorted(by_name)}")
        if not names:
            raise ValueError(f"{self.spec.urdf_path().name} has no movable joints")
        self.joint_names: tuple[str, ...] = tuple(names)
        self.n_joints = len(names)
        self._joint_ids = [by_name[n][0] for n in names]
        lower = np.array([by_name[n][8] for n in names], dtype=float)
        upper = np.array([by_name[n][9] for n in names], dtype=float)
        unlimited = lower >= upper  # PyBullet reports continuous joints as lower=0, upper=-1
        self.lower = np.where(unlimited, -np.pi, lower)
        self.upper = np.where(unlimited, np.pi, upper)
        #: continuous joints (no position limits): their positions are angles, wrapped into [-pi, pi)
        self.continuous = unlimited
        self.effort_limits = np.array([by_name[n][10] for n in names], dtype=float)
        if np.any(self.effort_limits <= 0):
            bad = [n for n, e in zip(names, self.effort_limits) if e <= 0]
            raise ValueError(f"joints {bad} have no positive <limit effort> in the URDF; torque control needs one")
        vel = np.array([by_name[n][11] for n in names], dtype=float)
        self.velocity_limits = np.where(vel > 0, vel, 10.0)
        #: the URDF's ``<dynamics damping>`` [Nm s/rad]: PyBullet's joints apply it, its inverse dynamics omit it
        self.urdf_damping = np.array([by_name[n][6] for n in names], dtype=float)
        # Every movable joint takes part in inverse dynamics; the uncontrolled ones (a gripper's fingers)
        # are held by PyBullet's position motor at their reset position.
        self._movable_ids = [info[0] for info in movable]
        self._held_ids = [j for j in self._movable_ids if j not in self._joint_ids]
        # where they are held: their positions as loaded, the same after every reset (held where they had
        # drifted to, a seeded reset did not repeat an episode: panda's fingers)
        self._held_home = [c.getJointState(body, j)[0] for j in self._held_ids]
        self._dof_of = {j: k for k, j in enumerate(self._movable_ids)}
        self._controlled_dofs = [self._dof_of[j] for j in self._joint_ids]
        link_names = {info[12].decode(): info[0] for info in infos}
        ee = self.spec.ee_link or (infos[-1][12].decode() if infos else "")
        if ee not in link_names:
            raise ValueError(f"end-effector link {ee!r} not in {self.spec.urdf_path().name}; "
                             f"links: {sorted(link_names)}")
        self.ee_link = ee
        self._ee_index = link_names[ee]
        self.home = np.array(self.spec.home, dtype=float) if self.spec.home else np.zeros(self.n_joints)
        if self.home.shape != (self.n_joints,):
            raise ValueError(f"home has {self.home.size} values for {self.n_joints} joints")
        self.base_position = np.array(c.getBasePositionAndOrientation(body)[0])
        for link in range(-1, c.getNumJoints(body)):
            c.changeDynamics(body, link, linearDamping=0.0, angularDamping=0.0)
        # Release the default velocity motors: without this, torque control fights a stiff motor.
        c.setJointMotorControlArray(body, self._joint_ids, pb.VELOCITY_CONTROL,
                                    forces=[0.0] * self.n_joints)

    # -- state ---------------------------------------------------------------------------------------
    def reset(self, q: np.ndarray | None = None, dq: np.ndarray | None = None) -> ArmState:
        """Put the arm at ``q`` (default: home) with velocity ``dq`` (default: zero) and zero sim time."""
        q = self.home if q is None else np.asarray(q, dtype=float)
        dq = np.zeros(self.n_joints) if dq is None else np.asarray(dq, dtype=float)
        self._check_vector(q, "q")
        self._check_vector(dq, "dq")
        for j, qj, dqj in zip(self._joint_ids, q, dq):
            self._client.resetJointState(self._body, j, float(qj), float(dqj))
        for j, qj in zip(self._held_ids, self._held_home):
            self._client.resetJointState(self._body, j, qj, 0.0)
            self._client.setJointMotorControl2(self._body, j, pb.POSITION_CONTROL, targetPosition=qj)
        self._sim_time = 0.0
        self._last_effort = np.zeros(self.n_joints)
        if self.perturbation is not None:
            self.perturbation.new_episode()
        return self.state()

    def state(self) -> ArmState:
        """Joint positions, velocities, last applied torques and the end-effector position."""
        joint_states = self._get_joint_states(self._body, self._joint_ids)
        q = np.array([s[0] for s in joint_states])
        dq = np.array([s[1] for s in joint_states])
        return ArmState(q=q, dq=dq, effort=self._last_effort.copy(), ee_position=self._ee_position(),
                        sim_time=self._sim_time)

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return self._sim_time

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per ``apply_torque`` call."""
        return self.physics_dt * self.substeps

    def _ee_position(self) -> np.ndarray:
        link = self._client.getLinkState(self._body, self._ee_index, computeForwardKinematics=True)
        return np.array(link[4]) - self.base_position

    def ee_orientation(self) -> np.ndarray:
        """End-effector orientation now, as a quaternion (x, y, z, w) in the world frame."""
        link = self._client.getLinkState(self._body, self._ee_index, computeForwardKinematics=True)
        return np.array(link[5])

    def kinematic_chain(self) -> KinematicChain:
        """The end effector's chain as a compiled function of the controlled joints (the uncontrolled ones where
        they are held): the same point as :meth:`forward_kinematics`, without a PyBullet call."""
        from snn_sac_ros.core.arm.kinematics import KinematicChain  # numba: only where a chain is wanted

        return KinematicChain(self._client, self._body, ee_index=self._ee_index, controlled=self._joint_ids,
                              held=dict(zip(self._held_ids, self._held_home)), base_position=self.base_position)

    def forward_kinematics(self, q: np.ndarray, keep_state: bool = True) -> np.ndarray:
        """End-effector position [m, base frame] at joint positions ``q``; the arm's state is kept unless
        ``keep_state`` is False (a model used for kinematics only, as a controller's: half the calls)."""
        saved = self._client.getJointStates(self._body, self._joint_ids) if keep_state else ()
        for j, qj in zip(self._joint_ids, q):
            self._client.resetJointState(self._body, j, float(qj), 0.0)
        ee = self._ee_position()
        for j, s in zip(self._joint_ids, saved):
            self._client.resetJointState(self._body, j, s[0], s[1])
        return ee

    def jacobian(self, q: np.ndarray | None = None) -> np.ndarray:
        """Linear Jacobian (3 x joints) of the end-effector position at ``q`` (default: now), base frame.

        For task-space controllers: ``J.T @ force`` is the joint torque that pushes the end effector with
        ``force`` [N]. The point is the end-effector link's frame origin (what ``state().ee_position`` reports).
        """
        positions = self._movable_positions(q)
        zeros = [0.0] * len(positions)
        # the point is given in the link's frame: its origin, checked against finite differences of FK in tests
        linear, _ = self._client.calculateJacobian(self._body, self._ee_index, [0.0, 0.0, 0.0], positions, zeros,
                                                   zeros)
        return np.array(linear)[:, self._controlled_dofs]

    def inverse_kinematics(self, target: np.ndarray, iterations: int = 200, restarts: int = 8,
                           tolerance: float = 1e-3) -> np.ndarray:
        """Joint positions within the limits that put the end effector nearest ``target`` [m, base frame].

        PyBullet's IK is local and starts from the arm's current configuration, so it is restarted from
        home and then from fixed pseudo-random configurations until one lands within ``tolerance``.
        The arm's state is kept.
        """
        target = np.asarray(target, dtype=float)
        saved = self._client.getJointStates(self._body, self._joint_ids)
        seeds = np.random.default_rng(0).uniform(self.lower, self.upper, (restarts, self.n_joints))
        best, best_error = self.home, np.inf
        for seed in [self.home, *seeds]:
            for j, qj in zip(self._joint_ids, seed):
                self._client.resetJointState(self._body, j, float(qj), 0.0)
            all_q = self._client.calculateInverseKinematics(
                self._body, self._ee_index, list(target + self.base_position),
                lowerLimits=self._movable_vector(self.lower, fill=-np.pi).tolist(),
                upperLimits=self._movable_vector(self.upper, fill=np.pi).tolist(),
                jointRanges=self._movable_vector(self.upper - self.lower, fill=2 * np.pi).tolist(),
                restPoses=self._movable_vector(seed, fill=0.0).tolist(),
                maxNumIterations=iterations, residualThreshold=1e-6)
            # PyBullet's IK can step slightly past a limit; a configuration outside the limits is no answer.
            q = np.clip([all_q[self._dof_of[j]] for j in self._joint_ids], self.lower, self.upper)
            error = float(np.linalg.norm(self.forward_kinematics(q) - target))
            if error < best_error:
                best, best_error = q, error
            if best_error <= tolerance:
                break
        for j, state in zip(self._joint_ids, saved):
            self._client.resetJointState(self._body, j, state[0], state[1])
        return best

    def _movable_vector(self, values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(len(self._movable_ids), fill)
        for j, v in zip(self._joint_ids, values):
            out[self._dof_of[j]] = v
        return out

    def _movable_positions(self, q: np.ndarray | None) -> list[float]:
        """Positions of every movable joint, as PyBullet's dynamics calls take them: now, or ``q`` for the
        controlled joints (the others, a gripper's fingers, as they are now)."""
        positions = [s[0] for s in self._get_joint_states(self._body, self._movable_ids)]
        if q is not None:
            for j, qj in zip(self._joint_ids, q):
                positions[self._dof_of[j]] = float(qj)
        return positions

    def joint_inertia(self, q: np.ndarray | None = None) -> np.ndarray:
        """Each controlled joint's own inertia [kg m^2] at ``q`` (default: now): the mass matrix diagonal.

        It is the torque per unit joint acceleration with the other joints held, so it sizes an action scale.
        """
        mass_matrix = np.array(self._client.calculateMassMatrix(self._body, self._movable_positions(q)))
        return np.array([mass_matrix[k, k] for k in self._controlled_dofs])

    def mass_matrix(self, q: np.ndarray | None = None) -> np.ndarray:
        """Joint-space inertia [kg m^2] of the controlled joints at ``q`` (default: now), the others held."""
        full = np.array(self._client.calculateMassMatrix(self._body, self._movable_positions(q)))
        return full[np.ix_(self._controlled_dofs, self._controlled_dofs)]

    def inverse_dynamics(self, q: np.ndarray, dq: np.ndarray, ddq: np.ndarray) -> np.ndarray:
        """Torque [Nm] of the controlled joints that gives them ``ddq`` at ``q``, ``dq`` (gravity and the URDF's joint
        damping included; the other joints at rest). PyBullet's own inverse dynamics leave the damping out, though
        its joints apply it: on kuka_iiwa (0.5 Nm s/rad a joint) that is a third of the wrist's action range."""
        positions = self._movable_positions(q)
        velocity, acceleration = self._movable_vector(dq, 0.0), self._movable_vector(ddq, 0.0)
        tau = self._inverse_dynamics(self._body, positions, velocity.tolist(), acceleration.tolist())
        return np.array([tau[k] for k in self._controlled_dofs]) + self.urdf_damping * np.asarray(dq, dtype=float)

    def gravity_torque(self, q: np.ndarray | None = None) -> np.ndarray:
        """Torque [Nm] that holds the arm still against gravity at ``q`` (default: now)."""
        positions = self._movable_positions(q)
        zeros = [0.0] * len(positions)
        tau = self._inverse_dynamics(self._body, positions, zeros, zeros)
        return np.array([tau[k] for k in self._controlled_dofs])

    def own_torque(self) -> np.ndarray:
        """What the arm's own controller adds to a command now [Nm]: gravity compensation (if on) minus
        joint damping (if the spec sets it)."""
        tau = self.gravity_torque() if self.gravity_compensation else np.zeros(self.n_joints)
        if np.any(self.joint_damping):
            dq = np.array([s[1] for s in self._get_joint_states(self._body, self._joint_ids)])
            tau = tau - self.joint_damping * dq
        return tau

    # -- command -------------------------------------------------------------------------------------
    def clamp(self, torque: np.ndarray) -> np.ndarray:
        """Torque clipped to the URDF effort limits."""
        return np.clip(torque, -self.effort_limits, self.effort_limits)

    def apply_torque(self, torque: np.ndarray) -> ArmState:
        """Apply ``torque`` [Nm] for one control step (``substeps`` physics steps) and return the state.

        With gravity compensation on, the model's gravity torque is added at every physics step, and so
        is the damping torque where the spec asks for damping (:meth:`own_torque`). The sum is always
        clamped to the URDF effort limits. A command with a non-finite value, or of the wrong
        length, raises ``ValueError`` before anything is applied.
        """
        torque = np.asarray(torque, dtype=float)
        self._check_vector(torque, "torque")
        if self.perturbation is not None:
            return self.perturbation.apply_torque(torque)
        body, ids, limits = self._body, self._joint_ids, self.effort_limits
        applied = np.zeros(self.n_joints)
        tau = np.clip(torque, -limits, limits)
        adds_own = self.gravity_compensation or bool(np.any(self.joint_damping))
        for _ in range(self.substeps):
            if adds_own:
                tau = np.clip(torque + self.own_torque(), -limits, limits)
            self._set_motors(body, ids, pb.TORQUE_CONTROL, forces=tau.tolist())
            start = time.perf_counter()
            self._step_simulation()
            self.physics_seconds += time.perf_counter() - start
            applied += tau
        self.physics_steps += self.substeps
        self._sim_time += self.control_dt
        self._last_effort = applied / self.substeps
        return self.state()

    def _check_vector(self, values: np.ndarray, what: str) -> None:
        if values.shape != (self.n_joints,):
            raise ValueError(f"{what} must have {self.n_joints} values (joints {list(self.joint_names)}), "
                             f"got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} has non-finite values: {values.tolist()}")

    # -- dynamics changes, rendering, lifetime --------------------------------------------------------
    def perturb(self, profile: RandomizationProfile | None, seed: int | None = None) -> ArmPerturbation | None:
        """Randomise this arm by ``profile`` from now on (drawn again at every reset); ``None`` or an all-off
        profile: the nominal arm, exactly."""
        from snn_sac_ros.core.arm.randomization import ArmPerturbation

        if self.perturbation is not None:
            self.perturbation.close()
        self.perturbation = None if profile is None or profile.is_off else ArmPerturbation(self, profile, seed)
        return self.perturbation

    def measure(self, state: ArmState) -> ArmState:
        """What the arm's sensors report of ``state``: the state itself unless a randomisation perturbs them."""
        return state if self.perturbation is None else self.perturbation.measure(state)

    @property
    def payload_kg(self) -> float:
        """Extra mass [kg] carried at the end-effector link."""
        return self._payload_kg

    def set_payload(self, kg: float) -> None:
        """Add ``kg`` of mass at the end-effector link (0 removes it): a change in the arm's dynamics."""
        if kg < 0 or not np.isfinite(kg):
            raise ValueError(f"payload must be a finite, non-negative mass, got {kg}")
        self._payload_kg = float(kg)
        if self.perturbation is not None and self.perturbation.profile.changes_links:
            self.perturbation.apply_links()
            return
        self._client.changeDynamics(self._body, self._ee_index, mass=self._ee_base_mass + kg)

    def add_marker(self, rgba: tuple[float, float, float, float] = (0.1, 0.8, 0.1, 0.8),
                   radius: float = 0.02) -> int:
        """A visual-only sphere (no collision) for showing targets; move it with ``move_marker``."""
        shape = self._client.createVisualShape(pb.GEOM_SPHERE, radius=radius, rgbaColor=list(rgba))
        return self._client.createMultiBody(baseMass=0.0, baseVisualShapeIndex=shape,
                                            basePosition=self.base_position.tolist())

    def move_marker(self, marker: int, position: np.ndarray) -> None:
        """Place a marker at ``position`` [m, base frame]."""
        self._client.resetBasePositionAndOrientation(
            marker, (np.asarray(position, float) + self.base_position).tolist(), [0, 0, 0, 1])

    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """An RGB picture of the arm (TinyRenderer: no display needed), shape (height, width, 3)."""
        reach = max(0.3, float(np.linalg.norm(self.forward_kinematics(self.home))) * 1.6)
        planar = self.spec.target_axes == "xy"
        view = self._client.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=(self.base_position + np.array([0.0, 0.0, 0.0 if planar else 0.4 * reach])).tolist(),
            distance=1.6 * reach, yaw=0 if planar else 45, pitch=-89.9 if planar else -25, roll=0,
            upAxisIndex=2)
        proj = self._client.computeProjectionMatrixFOV(fov=50, aspect=width / height, nearVal=0.01,
                                                       farVal=20.0)
        _, _, rgba, _, _ = self._client.getCameraImage(width, height, view, proj,
                                                       renderer=pb.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect from PyBullet; the arm can no longer be used."""
        self.perturb(None)
        if self._client is not None:
            try:
                self._client.disconnect()
            except pb.error:
                pass
            self._client = None  # type: ignore[assignment]

    def __enter__(self) -> PyBulletArm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
