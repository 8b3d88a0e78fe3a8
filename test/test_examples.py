"""The examples run as a reader would run them, and do what they say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_a_hidden_layer_learns_by_a_local_rule() -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "hidden_layer_learns.py")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    first, last = (float(v) for v in re.search(r"first 2 s: ([\d.]+); last 2 s: ([\d.]+)", result.stdout).groups())
    assert last < 0.5 * first
    moved = [float(v) for v in re.findall(r"moved by ([\d.e+-]+)", result.stdout)]
    assert len(moved) == 3 and all(m > 1e-5 for m in moved)  # the hidden layers learned too


def test_training_and_evaluating_on_a_urdf_of_your_own(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "own_arm.py"), "--steps", "400", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "checkpoint.npz").exists()
    assert re.search(r"eval TwoJointRobot_wo_fixedJoints \(spiking LIF, 10 targets\): success 2 cm", result.stdout)
