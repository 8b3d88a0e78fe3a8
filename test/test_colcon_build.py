"""The package builds with colcon as a ROS 2 user builds it, and its executables start from install/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not COLCON.exists() and shutil.which("colcon") is None:
        pytest.fail("colcon is not installed: ./dev.sh test installs it from requirements-dev.txt")
    ws = tmp_path_factory.mktemp("colcon_ws")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            target = ws / "src" / "snn_sac_ros" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    colcon = str(COLCON) if COLCON.exists() else "colcon"
    result = subprocess.run([colcon, "build", "--event-handlers", "console_cohesion-"], cwd=ws,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return ws


def _in_workspace(ws: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a shell with the workspace sourced and this interpreter's venv active (first on PATH)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "-c", f"source install/setup.bash && {command}"], cwd=ws,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": path})


def test_console_scripts_land_in_lib_and_start(workspace: Path) -> None:
    lib = workspace / "install" / "snn_sac_ros" / "lib" / "snn_sac_ros"
    scripts = sorted(p.name for p in lib.iterdir())
    assert "snn-sac-ros" in scripts
    for script in scripts:
        assert (lib / script).read_text().startswith("#!/usr/bin/env python3\n"), f"{script}: the venv's python"
        result = _in_workspace(workspace, f"{lib / script} --help")
        assert result.returncode == 0, f"{script}: {result.stderr}"
        assert "usage" in result.stdout.lower()


def test_data_files_are_installed_and_found_through_the_ament_index(workspace: Path) -> None:
    share = workspace / "install" / "snn_sac_ros" / "share" / "snn_sac_ros"
    assert (share / "package.xml").is_file()
    assert (share / "urdf" / "planar2.urdf").is_file()
    probe = (f"{sys.executable} -c 'from snn_sac_ros.core.resources import share_dir; import snn_sac_ros; "
             "print(share_dir()); print(snn_sac_ros.__file__)'")
    result = _in_workspace(workspace, probe)
    assert result.returncode == 0, result.stderr
    found_share, module = result.stdout.strip().splitlines()[-2:]
    assert Path(found_share) == share
    assert str(workspace / "install") in module  # the installed copy, not the source tree
