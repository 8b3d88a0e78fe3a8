"""The ``snn-sac-ros`` console script: help for every subcommand, and --json on the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from snn_sac_ros.cli import BENCHMARKS, COMMANDS
from snn_sac_ros.core.agent.checkpoint import load_checkpoint


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


def test_bench_learn_reevaluates_finished_runs_without_retraining(tmp_path) -> None:
    """--reevaluate loads the saved policy: on the same targets it repeats the first evaluation exactly, on more
    targets it writes apart and keeps the training time."""
    common = ["bench", "learn", "--arm", "planar2", "--steps", "300", "--seeds", "0", "--agents", "ours",
              "--out", str(tmp_path), "--json"]
    first = _cli(*common, "--episodes", "2")
    assert first.returncode == 0, first.stderr
    trained = json.loads((tmp_path / "ours-exact-seed0.json").read_text())
    # the checkpoint names the `train` command that reproduces it, not the bench's own command line
    recorded = load_checkpoint(trained["checkpoint"]).metadata["train_command"]
    assert recorded.startswith("snn-sac-ros train --arm planar2 --steps 300 --seed 0 "), recorded
    same = _cli(*common, "--episodes", "2", "--eval-seed", "100000", "--reevaluate")
    assert same.returncode == 0, same.stderr
    again = json.loads((tmp_path / "eval-2x100000" / "ours-exact-seed0.json").read_text())
    for mode in ("rate", "spiking"):
        assert again[mode]["mean_final_distance_m"] == trained[mode]["mean_final_distance_m"]
    more = _cli(*common, "--episodes", "3", "--eval-seed", "7", "--reevaluate")
    assert more.returncode == 0, more.stderr
    assert "from seed 7" in more.stdout and "evaluating ours-exact-seed0 on 3 targets" in more.stdout
    wider = json.loads((tmp_path / "eval-3x7" / "ours-exact-seed0.json").read_text())
    assert wider["rate"]["episodes"] == 3 and wider["train_wall_s"] == trained["train_wall_s"]
    assert json.loads((tmp_path / "ours-exact-seed0.json").read_text()) == trained  # the original result is kept
    rows = json.loads(more.stdout.strip().splitlines()[-1])["rows"]
    assert {r["agent"] for r in rows} == {"ours exact rate", "ours exact spiking"}
    spiking = _cli(*common, "--episodes", "2", "--eval-seed", "9", "--reevaluate", "--eval-modes", "spiking")
    assert spiking.returncode == 0, spiking.stderr
    only = json.loads((tmp_path / "eval-2x9" / "ours-exact-seed0.json").read_text())
    assert "spiking" in only and "rate" not in only
    assert {r["agent"] for r in json.loads(spiking.stdout.strip().splitlines()[-1])["rows"]} == {"ours exact spiking"}


def test_train_defaults_are_the_agents_defaults() -> None:
    """``train``'s flags repeat SACConfig's defaults (the CLI parses without importing the agent): keep them equal."""
    import argparse
    from dataclasses import fields

    from snn_sac_ros.commands import train
    from snn_sac_ros.core.agent.sac import SACConfig

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = vars(parser.parse_args([]))
    config = SACConfig()
    shared = [f.name for f in fields(SACConfig) if f.name in args]
    assert len(shared) >= 7, shared
    for name in shared:
        default = tuple(args[name]) if name == "hidden" else args[name]
        assert default == getattr(config, name), name


def test_bench_learn_ladder_puts_every_rung_beside_backprop(tmp_path) -> None:
    """Two rungs in one run: the ladder names what each transports and gives its ratio to backprop (exact)."""
    result = _cli("bench", "learn", "--arm", "planar2", "--steps", "300", "--seeds", "0", "--agents", "ours",
                  "--feedback", "exact", "kp", "--episodes", "2", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    ladder = {r["rung"]: r for r in json.loads(result.stdout.strip().splitlines()[-1])["ladder"]}
    assert set(ladder) == {"exact", "kp"}
    assert ladder["kp"]["transports"] == "none" and ladder["exact"]["transports"].startswith("forward weights")
    assert ladder["exact"]["vs_exact"] == (1.0 if ladder["exact"]["success_2cm"] > 0 else None)
    assert load_checkpoint(tmp_path / "ours-kp-seed0" / "checkpoint.npz").metadata["sac_config"]["feedback"] == "kp"
    assert "the ladder" in result.stdout and "Kolen" not in result.stdout  # the table, not the help text
