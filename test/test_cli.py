"""The ``snn-sac-ros`` console script: help for every subcommand, and --json on the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from snn_sac_ros.cli import BENCHMARKS, COMMANDS


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn_sac_ros.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS], ["bench"], *[["bench", b] for b in BENCHMARKS]])
def test_every_command_has_help(command: list[str]) -> None:
    result = _cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: snn-sac-ros" in result.stdout
    if command and command != ["bench"]:
        assert "--json" in result.stdout


def test_bench_env_json_is_the_last_line() -> None:
    result = _cli("bench", "env", "--arms", "planar2", "kuka_iiwa", "--steps", "50", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert any("env steps/s" in line for line in lines)  # the table is printed too
    rows = json.loads(lines[-1])["rows"]
    assert [r["arm"] for r in rows] == ["planar2", "kuka_iiwa"]
    for row in rows:
        assert row["env_steps_per_s"] > 0 and 0.0 < row["pybullet_share"] < 1.0


def test_bad_arguments_give_a_clear_error() -> None:
    result = _cli("bench", "env", "--arms", "no_such_arm", "--steps", "5", "--json")
    assert result.returncode == 2
    assert "unknown arm 'no_such_arm'" in result.stderr
    assert "error" in json.loads(result.stdout.strip().splitlines()[-1])
