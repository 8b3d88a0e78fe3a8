"""Robot arm descriptions: which URDF, which joints are controlled, where the end effector is.

A preset is a name for an :class:`ArmSpec`; any URDF path with a list of joints makes one too. Joint
and effort limits are not written here: they are read from the URDF by the PyBullet interface.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from snn_sac_ros.core.resources import data_path


@dataclass(frozen=True)
class ArmSpec:
    """What the physics core needs to know about an arm that its URDF does not say.

    Attributes
    ----------
    name: preset name, or the URDF file stem for custom arms.
    urdf: URDF file path (absolute), or a path relative to ``pybullet_data`` when ``from_pybullet_data``.
    joints: controlled joint names, in command order; empty means every revolute/prismatic joint.
    ee_link: link whose origin is the end effector; empty means the last link.
    home: initial joint positions [rad], one per controlled joint; empty means all zeros.
    target_axes: Cartesian axes the reach task uses (``"xy"`` for a planar arm, ``"xyz"`` otherwise).
    target_min_z: lowest target height [m] above the base, so targets stay above the table.
    target_min_radius: smallest horizontal target distance from the base axis [m].
    target_max_azimuth: largest horizontal angle of a target from the base's +x axis [rad], so that
        targets lie in front of the arm, where a workcell puts them; pi puts them all around it.
    gravity_compensation: default torque mode: the policy outputs a residual on top of the
        model's gravity torque (True) or the full torque (False).
    action_torque_fraction: share of each joint's URDF effort limit that action = 1 maps to.
    action_max_acceleration: if above 0, action = 1 maps to at most this joint acceleration [rad/s^2] at
        home (torque capped at ``action_max_acceleration * inertia``), so light wrist joints get a torque
        range they can use; 0 keeps ``action_torque_fraction`` alone.
    damping_seconds: if above 0, the arm damps each joint's velocity with a gain of its inertia at home
        divided by this [s], at every physics step, as a torque-controlled arm's own controller can:
        without a command, a moving joint comes to rest in about this time instead of coasting.
        0: no damping.
    episode_seconds: duration of one reach in the gymnasium env [s].
    """

    name: str
    urdf: str
    joints: tuple[str, ...] = ()
    ee_link: str = ""
    home: tuple[float, ...] = ()
    target_axes: str = "xyz"
    target_min_z: float = -10.0
    target_min_radius: float = 0.0
    target_max_azimuth: float = math.pi
    gravity_compensation: bool = True
    action_torque_fraction: float = 1.0
    action_max_acceleration: float = 0.0
    damping_seconds: float = 0.0
    episode_seconds: float = 2.0
    from_pybullet_data: bool = False
    home_noise: float = 0.1
    notes: str = field(default="", compare=False)

    def urdf_path(self) -> Path:
        """Absolute path of the URDF file."""
        if self.from_pybullet_data:
            import pybullet_data

            return Path(pybullet_data.getDataPath()) / self.urdf
        return Path(self.urdf)


def _planar2() -> ArmSpec:
    return ArmSpec(
        name="planar2",
        urdf=str(data_path("urdf", "planar2.urdf")),
        joints=("shoulder", "elbow"),
        ee_link="tip",
        home=(0.0, 1.2),
        target_axes="xy",
        gravity_compensation=False,
        action_torque_fraction=1.0,
        episode_seconds=2.0,
        home_noise=0.3,
        notes="horizontal plane: gravity is along the joint axes and needs no torque",
    )


def _kuka_iiwa() -> ArmSpec:
    return ArmSpec(
        name="kuka_iiwa",
        urdf="kuka_iiwa/model.urdf",
        from_pybullet_data=True,
        joints=tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8)),
        ee_link="lbr_iiwa_link_7",
        home=(0.0, 0.5, 0.0, -1.2, 0.0, 0.8, 0.0),
        target_min_z=0.15,
        target_min_radius=0.25,
        # In front of the base, as on a workcell table; over the full circle, half the targets lie behind or
        # beside it and need the whole arm to swing round (README, "The arms": both measured).
        target_max_azimuth=math.pi / 2,
        gravity_compensation=True,
        # Viscous joint damping, from the robot's own controller or the controller node's
        # apply_joint_damping: without it, a joint keeps the speed exploration gave it, and neither our agent
        # nor SB3's reached more than 27 % of the targets at 5 cm in 200k steps; with it, an action is close
        # to a velocity command.
        damping_seconds=0.2,
        # The URDF allows 300 Nm on every joint; a residual policy needs a small share of that. 30 Nm
        # accelerates the wrist (0.001-0.013 kg m^2) at 2,400-30,000 rad/s^2: a 20 ms step at full action
        # left it turning at 31-62 rad/s. Capped at 100 rad/s^2, the wrist gets 1.3 / 0.9 / 0.1 Nm and
        # joints 1-4 keep 30 Nm; a computed-torque controller under either scale reaches every target.
        action_torque_fraction=0.1,
        action_max_acceleration=100.0,
        episode_seconds=3.0,
    )


def _panda() -> ArmSpec:
    return ArmSpec(
        name="panda",
        urdf="franka_panda/panda.urdf",
        from_pybullet_data=True,
        joints=tuple(f"panda_joint{i}" for i in range(1, 8)),
        ee_link="panda_grasptarget",
        home=(0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8),
        target_min_z=0.15,
        target_min_radius=0.25,
        # In front of the base, as on kuka_iiwa: over the full circle, 200k steps reached 64 % of the targets at
        # 5 cm (docs/benchmarks.md).
        target_max_azimuth=math.pi / 2,
        gravity_compensation=True,
        action_torque_fraction=0.3,
        # As on kuka_iiwa: without joint damping a joint keeps the speed exploration gave it; 200k steps of our
        # agent then reached 1 % of the targets at 5 cm (mean final distance 32 cm).
        damping_seconds=0.2,
        episode_seconds=3.0,
    )


PRESETS = {"planar2": _planar2, "kuka_iiwa": _kuka_iiwa, "panda": _panda}


def resolve_arm(arm: str | ArmSpec, joints: list[str] | tuple[str, ...] | None = None,
                ee_link: str | None = None) -> ArmSpec:
    """An :class:`ArmSpec` from a preset name, a URDF path, or a spec (returned as is).

    For a URDF path, ``joints`` lists the controlled joints (all movable joints when omitted) and
    ``ee_link`` names the end-effector link (the last link when omitted).
    """
    if isinstance(arm, ArmSpec):
        return arm
    if arm in PRESETS:
        if joints or ee_link:
            raise ValueError(f"preset {arm!r} fixes its joints and end effector; pass a URDF path to choose")
        return PRESETS[arm]()
    path = Path(arm).expanduser()
    if path.suffix.lower() != ".urdf":
        raise ValueError(f"unknown arm {arm!r}: use one of {sorted(PRESETS)} or a path to a .urdf file")
    if not path.is_file():
        raise FileNotFoundError(f"URDF file not found: {path}")
    return ArmSpec(name=path.stem, urdf=str(path.resolve()), joints=tuple(joints or ()), ee_link=ee_link or "")


def spec_record(spec: ArmSpec, joints: tuple[str, ...], ee_link: str) -> dict:
    """What a checkpoint records to rebuild its arm: every spec field, with the joints and end-effector link the
    arm resolved, the preset name (or ``""``), and the URDF's path and SHA-256 (to refuse another URDF)."""
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items() if k != "notes"}
    record.update(joints=list(joints), ee_link=ee_link, urdf_sha256=_sha256(spec.urdf_path()),
                  preset=spec.name if spec.name in PRESETS and PRESETS[spec.name]() == spec else "")
    return record


def spec_from_record(record: dict, urdf: str | None = None) -> ArmSpec:
    """The arm a checkpoint was trained on, from :func:`spec_record`; ``urdf``: the same URDF, moved.

    Raises ``ValueError`` for another preset or a URDF whose content differs from the recorded one, and
    ``FileNotFoundError`` naming a missing URDF.
    """
    preset = record.get("preset", "")
    if preset:
        if urdf is not None and urdf != preset:
            raise ValueError(f"the checkpoint was trained on the {preset!r} preset, not on {urdf!r}")
        return PRESETS[preset]()
    if urdf is not None and urdf in PRESETS:
        raise ValueError(f"the checkpoint was trained on {record['urdf']}, not on the {urdf!r} preset")
    names = {f.name for f in fields(ArmSpec)}
    spec = ArmSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names})
    if urdf is not None:
        spec = replace(spec, urdf=str(Path(urdf).expanduser().resolve()), from_pybullet_data=False)
    path = spec.urdf_path()
    if not path.is_file():
        raise FileNotFoundError(f"the checkpoint's URDF {path} is not there: give the arm's URDF where it is now "
                                "(eval --arm PATH)")
    digest, recorded = _sha256(path), record.get("urdf_sha256", "")
    if recorded and digest != recorded:
        raise ValueError(f"URDF {path} differs from the one the checkpoint was trained on (SHA-256 {digest[:12]}, "
                         f"recorded {recorded[:12]}): its limits or dynamics may differ; train on it again")
    return spec


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
