"""The controller's robot model: which URDF, read from where, loaded into PyBullet for kinematics and limits.

Where the URDF comes from, in order: the ``arm`` parameter when set (a preset or a URDF path: simulations
and tests); else the ``robot_description`` topic, as robot_state_publisher publishes it and
controller_manager reads it since Jazzy (depth 1, reliable, transient_local: a late subscriber still gets
it), waited for up to ``robot_description_timeout``; else the ``robot_description`` parameter (the path
Iron deprecated and Jazzy removed, kept as a fallback). None of them: configure fails and says so.

Real descriptions name their meshes with ``package://`` (or ``file://``) URIs, which PyBullet cannot open:
each is resolved through the ament index when that package is installed, and a visual or collision
element whose mesh cannot be found is dropped (the controller needs kinematics, inertia and limits,
never the meshes). The URDF is written to a temporary folder only while PyBullet loads it.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from snn_sac_ros.core.arm import PRESETS, ArmSpec, PyBulletArm, resolve_arm

#: robot_state_publisher's QoS for robot_description: a late subscriber still gets the last one.
ROBOT_DESCRIPTION_QOS_DEPTH = 1


def robot_description_qos() -> object:
    """Depth 1, reliable, transient_local: what robot_state_publisher offers and controller_manager asks."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=ROBOT_DESCRIPTION_QOS_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _package_share(package: str) -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(package))
    except (PackageNotFoundError, ValueError, LookupError, OSError):
        return None


def _mesh_path(uri: str) -> Path | None:
    """The file a mesh URI names, if it exists here."""
    if uri.startswith("package://"):
        package, _, rest = uri[len("package://"):].partition("/")
        share = _package_share(package)
        path = share / rest if share is not None else None
    elif uri.startswith("file://"):
        path = Path(uri[len("file://"):])
    else:
        path = Path(uri)
    return path if path is not None and path.is_file() else None


def loadable_urdf(urdf_text: str) -> tuple[str, list[str]]:
    """URDF text PyBullet can load: mesh URIs resolved to files, unresolvable visuals and collisions dropped,
    and continuous joints without position limits (so the model wraps their angles).

    Returns the text and the mesh URIs that were dropped. Raises ``ValueError`` for text that is not URDF.
    """
    try:
        root = ET.fromstring(urdf_text)
    except ET.ParseError as error:
        raise ValueError(f"robot description is not valid XML: {error}") from None
    if root.tag != "robot":
        raise ValueError(f"robot description's root element is <{root.tag}>, not <robot>")
    for joint in root.iter("joint"):  # the URDF spec ignores a continuous joint's position limits; PyBullet not
        limit = joint.find("limit")
        if joint.get("type") == "continuous" and limit is not None:
            limit.attrib.pop("lower", None)
            limit.attrib.pop("upper", None)
    dropped: list[str] = []
    for link in root.iter("link"):
        for element in [e for e in link if e.tag in ("visual", "collision")]:
            for mesh in element.iter("mesh"):
                uri = mesh.get("filename", "")
                path = _mesh_path(uri)
                if path is None:
                    dropped.append(uri)
                    link.remove(element)
                    break
                mesh.set("filename", str(path))
    return ET.tostring(root, encoding="unicode"), dropped


def robot_spec(arm: str, urdf_file: str | None, joints: list[str] | None, ee_link: str | None,
               preset_hint: str | None = None) -> ArmSpec:
    """The robot model: the ``arm`` preset as is, or a URDF (``arm`` as a path, or ``urdf_file``) with the
    given joints. A preset (``arm``, else ``preset_hint``: the checkpoint's arm) supplies what a bare URDF
    does not say: end-effector link, task axes, the angle targets were trained in."""
    if urdf_file is None and arm in PRESETS and not joints and not ee_link:
        return resolve_arm(arm)
    name = arm if urdf_file is None else preset_hint
    preset = resolve_arm(name) if name in PRESETS else None
    path = urdf_file or (str(preset.urdf_path()) if preset is not None else arm)
    spec = resolve_arm(path, joints or (preset.joints if preset else None),
                       ee_link or (preset.ee_link if preset else None))
    if preset is None:
        return spec
    return replace(preset, urdf=spec.urdf, from_pybullet_data=False, joints=spec.joints, ee_link=spec.ee_link)


def load_arm(arm: str, urdf_text: str | None, joints: list[str] | None, ee_link: str | None,
             preset_hint: str | None = None) -> tuple[PyBulletArm, list[str]]:
    """A kinematic PyBullet model (no gravity compensation) and the mesh URIs dropped from ``urdf_text``."""
    if urdf_text is None:
        return PyBulletArm(robot_spec(arm, None, joints, ee_link, preset_hint), gravity_compensation=False), []
    text, dropped = loadable_urdf(urdf_text)
    with tempfile.TemporaryDirectory(prefix="snn_sac_ros_urdf_") as folder:
        path = Path(folder) / "robot_description.urdf"
        path.write_text(text)
        spec = robot_spec("", str(path), joints, ee_link, preset_hint)
        return PyBulletArm(spec, gravity_compensation=False), dropped
