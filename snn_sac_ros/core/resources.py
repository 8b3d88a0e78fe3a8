"""Find the package's data files (URDFs, configs, launch files, checkpoints).

Installed with colcon, they live under ``share/snn_sac_ros`` and the ament index knows where; in a
development checkout (or a plain ``pip install -e .``) they sit next to the sources. The ament index is
asked first, so an installed package never silently reads a stale source tree.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_NAME = "snn_sac_ros"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def share_dir() -> Path:
    """Directory holding ``urdf/``, ``config/``, ``launch/`` and ``checkpoints/``."""
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        return _SOURCE_ROOT
    try:
        installed = Path(get_package_share_directory(PACKAGE_NAME))
    except (PackageNotFoundError, ValueError, LookupError, OSError):  # not installed, or no ament index
        return _SOURCE_ROOT
    return installed if (installed / "urdf").is_dir() else _SOURCE_ROOT


def data_path(*parts: str) -> Path:
    """Path of a data file, e.g. ``data_path("urdf", "planar2.urdf")``."""
    path = share_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{PACKAGE_NAME} data file not found: {path}")
    return path


def shipped_checkpoint(arm: str) -> Path:
    """The trained checkpoint the package ships for an arm preset (``checkpoints/<arm>.npz``)."""
    return data_path("checkpoints", f"{arm}.npz")
