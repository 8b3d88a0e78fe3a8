"""Randomised dynamics, actuators and sensors: the differences between one PyBullet model and a real arm.

A :class:`RandomizationProfile` says how much of each difference to draw; every item is off by default, and
an all-off profile leaves the arm exactly the nominal one (it is not even attached). An
:class:`ArmPerturbation` applies a profile to a :class:`~snn_sac_ros.core.arm.pybullet_arm.PyBulletArm`:

* once per reset (one episode), per link or joint: link masses and inertias, joint friction and damping,
  actuator gain, command latency, an unknown payload at the end effector;
* on every control step: latency jitter, control-period jitter; on every physics step: torque noise;
  on every reading: joint position and velocity noise and quantisation.

The gymnasium env and the ``arm_sim`` node attach the same object, so training and the ROS simulation are
perturbed by the same code. Profiles are YAML files (``config/randomization/<name>.yaml``, or a path):
see :func:`load_profile` and ``docs/randomization.md``.

Units. Torque-like items are given as accelerations: a joint friction of 2 rad/s^2 is a torque of 2 times that
joint's inertia at home (nominal model), so one profile means the same to a 0.1 Nm wrist and a 30 Nm shoulder.

What the arm's own controller knows: its gravity compensation keeps the URDF's nominal model (PyBullet builds
its inverse-dynamics model once, from the model as loaded, and it is built here before anything changes), so
randomised masses and the payload are not compensated, as on a robot whose model is off.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb
from pybullet_utils.bullet_client import BulletClient

from snn_sac_ros.core.arm.pybullet_arm import ArmState
from snn_sac_ros.core.resources import share_dir

if TYPE_CHECKING:
    from snn_sac_ros.core.arm.pybullet_arm import PyBulletArm

Range = tuple[float, float]
PROFILE_FOLDER = ("config", "randomization")
OFF_NAMES = ("", "off", "none", "nominal")

# allowed values of every item: (lowest, highest); ranges are drawn uniformly per episode, scalars are fixed
_LIMITS: dict[str, tuple[float, float]] = {
    "link_mass": (-0.9, 10.0), "link_inertia": (-0.9, 10.0), "joint_friction": (0.0, 1e3),
    "joint_damping": (0.0, 200.0), "command_delay_ms": (0.0, 1e3), "command_delay_jitter_ms": (0.0, 1e3),
    "torque_gain": (-0.9, 1.0), "torque_noise": (0.0, 1e3), "position_noise": (0.0, 1.0),
    "position_quantum": (0.0, 1.0), "velocity_noise": (0.0, 10.0), "velocity_quantum": (0.0, 10.0),
    "period_jitter_ms": (0.0, 1e3), "payload_kg": (0.0, 100.0),
}


class ProfileError(ValueError):
    """A randomisation profile that cannot be used: unknown name or item, or a value out of range."""


@dataclass(frozen=True)
class RandomizationProfile:
    """How much of each sim-to-real difference to draw. Ranges ``(low, high)`` are drawn uniformly.

    Attributes
    ----------
    link_mass: fraction added to each link's mass, per link and episode (its inertia scales with it, as
        for a denser link): mass x (1 + u).
    link_inertia: a further fraction on each link's inertia alone, per link and episode.
    joint_friction: Coulomb friction per joint and episode [rad/s^2 x the joint's inertia at home], opposing
        motion; it can stop a joint within a physics step but never reverses it (no stiction).
    joint_damping: viscous damping per joint and episode [1/s x the joint's inertia at home].
    command_delay_ms: latency [ms] from a command to its torque, per episode (in whole physics steps).
    command_delay_jitter_ms: up to this much more latency [ms], drawn per command (commands keep their order).
    torque_gain: fraction by which each actuator's torque is off, per joint and episode: torque x (1 + u).
    torque_noise: standard deviation of white torque noise per physics step [rad/s^2 x inertia at home].
    position_noise, velocity_noise: standard deviation of the joint position [rad] and velocity [rad/s] read.
    position_quantum, velocity_quantum: resolution [rad, rad/s] the readings are rounded to (an encoder).
    period_jitter_ms: each control step lasts its period plus or minus up to this [ms], in whole physics steps.
    payload_kg: mass [kg] added at the end-effector link per episode, unknown to gravity compensation.
    """

    name: str = "custom"
    description: str = ""
    link_mass: Range = (0.0, 0.0)
    link_inertia: Range = (0.0, 0.0)
    joint_friction: Range = (0.0, 0.0)
    joint_damping: Range = (0.0, 0.0)
    command_delay_ms: Range = (0.0, 0.0)
    command_delay_jitter_ms: float = 0.0
    torque_gain: Range = (0.0, 0.0)
    torque_noise: float = 0.0
    position_noise: float = 0.0
    position_quantum: float = 0.0
    velocity_noise: float = 0.0
    velocity_quantum: float = 0.0
    period_jitter_ms: float = 0.0
    payload_kg: Range = (0.0, 0.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name not in _LIMITS:
                continue
            value = getattr(self, f.name)
            values = tuple(value) if isinstance(value, list | tuple) else (value,)
            ranged = f.type == "Range"
            if ranged and len(values) == 1:
                values = values * 2  # one number: a fixed value, not a range
            if len(values) != (2 if ranged else 1) or not all(_is_number(v) for v in values):
                shape = "a number or [low, high]" if ranged else "a number"
                raise ProfileError(f"profile {self.name!r}: {f.name} must be {shape}, got {value!r}")
            low, high = _LIMITS[f.name]
            bad = [v for v in values if not low <= v <= high]
            if bad:
                raise ProfileError(f"profile {self.name!r}: {f.name} = {value!r} is outside [{low:g}, {high:g}]")
            if ranged and values[0] > values[1]:
                raise ProfileError(f"profile {self.name!r}: {f.name} range [{values[0]}, {values[1]}] has low > high")
            object.__setattr__(self, f.name, tuple(float(v) for v in values) if ranged else float(values[0]))

    @property
    def is_off(self) -> bool:
        """Every item at zero: the nominal arm."""
        return all(not any(np.atleast_1d(getattr(self, name))) for name in _LIMITS)

    @property
    def changes_links(self) -> bool:
        """Whether link masses, inertias or the payload change (PyBullet's model is then rewritten per episode)."""
        return any(any(getattr(self, n)) for n in ("link_mass", "link_inertia", "payload_kg"))

    @property
    def senses(self) -> bool:
        """Whether the joint readings are perturbed."""
        return any((self.position_noise, self.position_quantum, self.velocity_noise, self.velocity_quantum))

    def to_dict(self) -> dict:
        """Plain values (ranges as lists), as checkpoints and results record them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, name: str = "custom") -> RandomizationProfile:
        """A profile from a mapping; an unknown item is refused with the list of known ones."""
        if not isinstance(data, dict):
            raise ProfileError(f"profile {name!r} must be a mapping of items to values, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"profile {name!r}: unknown item(s) {unknown}; known: {sorted(known - {'name'})}")
        return cls(**{"name": name, **data})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def profile_dir() -> Path:
    """The folder of the named profiles the package ships."""
    return share_dir().joinpath(*PROFILE_FOLDER)


def available_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def held_out_profiles() -> list[str]:
    """The shipped evaluation perturbations (``eval-*``), kept outside the ranges of the ``train`` profiles."""
    return [name for name in available_profiles() if name.startswith("eval-")]


def load_profile(profile: str | Path | RandomizationProfile | None) -> RandomizationProfile | None:
    """A profile from a shipped name, a YAML path, or as is; ``None`` for off (``""``, ``off``, ``none``)."""
    import yaml

    if profile is None or isinstance(profile, RandomizationProfile):
        return None if profile is None or profile.is_off else profile
    text = str(profile).strip()
    if text.lower() in OFF_NAMES:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml"):
        path = profile_dir() / f"{text}.yaml"
        if not path.is_file():
            raise ProfileError(f"unknown randomisation profile {text!r}: use one of {available_profiles()} "
                               "or a path to a .yaml file")
    if not path.is_file():
        raise FileNotFoundError(f"randomisation profile not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not valid YAML ({error})") from error
    name = data.pop("name", path.stem) if isinstance(data, dict) else path.stem
    try:
        loaded = RandomizationProfile.from_dict(data, name=str(name))
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from error
    return None if loaded.is_off else loaded


def profile_record(profile: RandomizationProfile | None) -> dict | None:
    """What a checkpoint or a result records of the profile that ran (``None``: the nominal arm)."""
    return None if profile is None else profile.to_dict()


@dataclass(frozen=True)
class EpisodeDraw:
    """One episode's draw: per link (masses, inertias), per joint (friction [Nm], damping [Nm s/rad], gain)."""

    mass_scale: np.ndarray
    inertia_scale: np.ndarray
    friction: np.ndarray
    damping: np.ndarray
    gain: np.ndarray
    delay_ms: float
    payload_kg: float


class ArmPerturbation:
    """A profile applied to one arm: see the module docstring. ``seed`` makes every draw repeat."""

    def __init__(self, arm: PyBulletArm, profile: RandomizationProfile, seed: int | None = None) -> None:
        if arm.payload_kg:
            raise ValueError("attach the randomisation before setting a payload on the arm")
        self.arm, self.profile = arm, profile
        arm.gravity_torque(arm.home)  # PyBullet's inverse-dynamics model is built now, from the nominal URDF
        self.inertia = arm.joint_inertia(arm.home)  # [kg m^2], nominal: the unit of torque-like items
        c, body = arm._client, arm._body
        self._links = list(range(c.getNumJoints(body)))
        self._nominal = [(c.getDynamicsInfo(body, link)[0], np.array(c.getDynamicsInfo(body, link)[2]))
                         for link in self._links]
        self._model: BulletClient | None = None
        if profile.senses:  # forward kinematics of the readings, on a copy that is never stepped
            self._model = BulletClient(connection_mode=pb.DIRECT)
            self._model_body = self._model.loadURDF(str(arm.spec.urdf_path()), useFixedBase=True,
                                                    flags=pb.URDF_USE_INERTIA_FROM_FILE)
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self.seed(seed)
        self.new_episode()

    def seed(self, seed: int | None) -> None:
        """Restart the draws: per-episode values and per-step noise each from their own stream of ``seed``."""
        episode, step = np.random.SeedSequence(seed).spawn(2)
        self._episode_rng, self._step_rng = np.random.default_rng(episode), np.random.default_rng(step)

    # -- per episode -------------------------------------------------------------------------------------
    def _draw(self) -> EpisodeDraw:
        p, rng, n = self.profile, self._episode_rng, self.arm.n_joints
        return EpisodeDraw(
            mass_scale=1.0 + rng.uniform(*p.link_mass, len(self._links)),
            inertia_scale=1.0 + rng.uniform(*p.link_inertia, len(self._links)),
            friction=rng.uniform(*p.joint_friction, n) * self.inertia,
            damping=rng.uniform(*p.joint_damping, n) * self.inertia,
            gain=1.0 + rng.uniform(*p.torque_gain, n),
            delay_ms=float(rng.uniform(*p.command_delay_ms)), payload_kg=float(rng.uniform(*p.payload_kg)))

    def new_episode(self) -> EpisodeDraw:
        """Draw this episode's values and apply them; forget pending commands (the arm was reset)."""
        self.episode = self._draw()
        self._pending.clear()
        self._active = np.zeros(self.arm.n_joints)
        self._now = self._last_effect = 0  # physics steps since the reset
        if self.profile.changes_links:
            self.apply_links()
        return self.episode

    def apply_links(self, nominal: bool = False) -> None:
        """Write this episode's link masses and inertias (or the nominal ones), the end effector carrying the
        episode's payload and the one set on the arm (:meth:`PyBulletArm.set_payload`)."""
        arm, e = self.arm, self.episode
        for link, (mass, inertia) in zip(self._links, self._nominal):
            mass_scale, inertia_scale = (1.0, 1.0) if nominal else (e.mass_scale[link], e.inertia_scale[link])
            extra = (0.0 if nominal else e.payload_kg) + arm.payload_kg if link == arm._ee_index else 0.0
            arm._client.changeDynamics(arm._body, link, mass=mass * mass_scale + extra,
                                       localInertiaDiagonal=(inertia * mass_scale * inertia_scale).tolist())

    # -- per step ------------------------------------------------------------------------------------------
    def _commands(self, torque: np.ndarray) -> list[np.ndarray]:
        """The command in force at each physics step of this control step (latency, period jitter)."""
        p, arm, rng = self.profile, self.arm, self._step_rng
        steps = arm.substeps
        if p.period_jitter_ms:
            jitter = round(p.period_jitter_ms * 1e-3 / arm.physics_dt)
            steps = max(1, steps + int(rng.integers(-jitter, jitter + 1)))
        delay_ms = self.episode.delay_ms + (rng.uniform(0.0, p.command_delay_jitter_ms)
                                            if p.command_delay_jitter_ms else 0.0)
        effect = max(self._now + round(delay_ms * 1e-3 / arm.physics_dt), self._last_effect)
        self._pending.append((effect, torque.copy()))  # the caller may reuse its array
        self._last_effect = effect
        commands = []
        for t in range(self._now, self._now + steps):
            while self._pending and self._pending[0][0] <= t:
                self._active = self._pending.popleft()[1]
            commands.append(self._active)
        self._now += steps
        return commands

    def passive_torque(self, dq: np.ndarray) -> np.ndarray:
        """Friction and damping torque [Nm] at joint velocities ``dq``: physics, not the actuators'."""
        e = self.episode
        stop = 0.5 * self.inertia * np.abs(dq) / self.arm.physics_dt  # the most that cannot reverse a joint
        return -np.sign(dq) * np.minimum(e.friction, stop) - e.damping * dq

    def apply_torque(self, torque: np.ndarray) -> ArmState:
        """:meth:`PyBulletArm.apply_torque` with latency, actuator gain and noise, friction and period jitter."""
        arm, p = self.arm, self.profile
        limits, gain = arm.effort_limits, self.episode.gain
        noise = p.torque_noise * self.inertia
        adds_own = arm.gravity_compensation or bool(np.any(arm.joint_damping))
        actuator = p.torque_gain != (0.0, 0.0) or p.torque_noise > 0
        passive = p.joint_friction != (0.0, 0.0) or p.joint_damping != (0.0, 0.0)
        commands = self._commands(torque)
        applied = np.zeros(arm.n_joints)
        for command in commands:
            tau = np.clip(command + arm.own_torque() if adds_own else command, -limits, limits)
            if actuator:
                tau = np.clip(tau * gain + noise * self._step_rng.standard_normal(arm.n_joints), -limits, limits)
            forces = tau
            if passive:
                forces = tau + self.passive_torque(np.array([s[1] for s in arm._get_joint_states(arm._body,
                                                                                                arm._joint_ids)]))
            arm._set_motors(arm._body, arm._joint_ids, pb.TORQUE_CONTROL, forces=forces.tolist())
            start = time.perf_counter()
            arm._step_simulation()
            arm.physics_seconds += time.perf_counter() - start
            applied += tau
        arm.physics_steps += len(commands)
        arm._sim_time += len(commands) * arm.physics_dt
        arm._last_effort = applied / len(commands)
        return arm.state()

    def measure(self, state: ArmState) -> ArmState:
        """What the joint sensors report of ``state``: noisy, quantised readings, and the end effector where
        those readings put it (as a controller computes it). The state itself when the sensors are exact."""
        if self._model is None:
            return state
        p, rng = self.profile, self._step_rng
        q, dq = _read(state.q, p.position_noise, p.position_quantum, rng), _read(state.dq, p.velocity_noise,
                                                                                  p.velocity_quantum, rng)
        model, body = self._model, self._model_body
        for j, qj in zip(self.arm._joint_ids, q):
            model.resetJointState(body, j, float(qj), 0.0)
        ee = np.array(model.getLinkState(body, self.arm._ee_index, computeForwardKinematics=True)[4])
        return ArmState(q=q, dq=dq, effort=state.effort, ee_position=ee - self.arm.base_position,
                        sim_time=state.sim_time)

    def close(self) -> None:
        """Put the nominal link dynamics back and release the sensor model."""
        if self.profile.changes_links and self.arm._client is not None:
            self.apply_links(nominal=True)
        if self._model is not None:
            self._model.disconnect()
            self._model = None


def _read(values: np.ndarray, noise: float, quantum: float, rng: np.random.Generator) -> np.ndarray:
    """A sensor reading: plus white noise of std ``noise``, rounded to multiples of ``quantum``."""
    out = values + noise * rng.standard_normal(values.shape) if noise else values.copy()
    return quantum * np.round(out / quantum) if quantum else out
