"""train --randomize and eval --perturb record what ran, and bench transfer reports every column (the real CLI,
short training runs on planar2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snn_sac_ros.adapters.gym.env import ArmReachEnv
from snn_sac_ros.cli import main
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.arm.randomization import held_out_profiles, load_profile

SHORT = ["--arm", "planar2", "--steps", "300", "--learning-starts", "150", "--batch-size", "32", "--hidden", "32",
         "32", "--no-progress"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snn_sac_ros.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A nominal and a randomised checkpoint from the real train command (the randomised one as a process of its
    own, so that it records its command line)."""
    out = tmp_path_factory.mktemp("transfer")
    assert main(["train", *SHORT, "--seed", "0", "--out", str(out / "nominal")]) == 0
    result = _cli("train", *SHORT, "--seed", "1", "--randomize", "train", "--out", str(out / "randomised"))
    assert result.returncode == 0, result.stderr
    return {"nominal": out / "nominal" / "checkpoint.npz", "randomised": out / "randomised" / "checkpoint.npz"}


def test_train_randomize_records_the_profile_and_keeps_the_nominal_contracts(checkpoints: dict[str, Path]) -> None:
    meta = load_checkpoint(checkpoints["randomised"]).metadata
    assert meta["randomization"] == load_profile("train").to_dict()
    assert " --randomize train " in meta["train_command"] + " ", meta["train_command"]
    assert load_checkpoint(checkpoints["nominal"]).metadata["randomization"] is None
    env = ArmReachEnv("planar2")
    load_checkpoint(checkpoints["randomised"], env.observation_contract, env.action_contract)  # same contracts
    env.close()


def test_eval_perturb_reports_the_perturbation_and_the_training_randomisation(checkpoints: dict[str, Path],
                                                                             capsys: pytest.CaptureFixture) -> None:
    common = ["eval", "--checkpoint", str(checkpoints["randomised"]), "--episodes", "2", "--json"]
    assert main([*common, "--perturb", "eval-delay10ms"]) == 0
    out = capsys.readouterr().out
    perturbed = _last_json(out)
    assert "perturbation eval-delay10ms" in out
    assert perturbed["perturbation"] == "eval-delay10ms" and perturbed["trained_randomization"] == "train"
    assert perturbed["perturbation_profile"]["command_delay_ms"] == [10.0, 10.0]
    assert main(common) == 0
    nominal = _last_json(capsys.readouterr().out)
    assert nominal["perturbation"] == "none" and nominal["perturbation_profile"] is None
    assert nominal["mean_final_distance_m"] != perturbed["mean_final_distance_m"]  # the latency changed the reaches
    assert main([*common, "--perturb", "no_such_profile"]) == 2
    assert "unknown randomisation profile" in capsys.readouterr().err


def test_bench_transfer_reports_every_column(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    args = ["bench", "transfer", "--checkpoints", str(checkpoints["nominal"]), str(checkpoints["randomised"]),
            "--episodes", "1", "--rate", "--out", str(tmp_path), "--json"]
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    report = _last_json(result.stdout)
    conditions = ["nominal", *held_out_profiles()]
    assert report["conditions"] == conditions
    assert [(m["trained"], m["condition"]) for m in report["summary"]] == [
        (trained, c) for trained in ("none", "train") for c in conditions]
    for m in report["summary"]:
        assert set(m) >= {"arm", "seeds", "success_2cm", "success_5cm", "mean_final_distance_m", "vs_nominal",
                          "vs_unrandomised_pts"}
        assert m["arm"] == "planar2" and m["seeds"] == ([0] if m["trained"] == "none" else [1])
        assert (m["vs_unrandomised_pts"] is None) == (m["trained"] == "none")
    assert {r["perturbation"] for r in report["rows"]} == {"none", *held_out_profiles()}
    header = next(line for line in result.stdout.splitlines() if line.startswith("arm "))
    for column in ("trained with", "condition", "2 cm", "5 cm", "/ nominal", "vs unrandomised"):
        assert column in header
    again = _cli(*args)  # every evaluation is on file: nothing is evaluated again
    assert again.returncode == 0 and "under" not in again.stdout and _last_json(again.stdout) == report


def test_bench_transfer_over_ros_runs_arm_sim_perturbed_and_the_controller_frozen(tmp_path: Path) -> None:
    """--ros: one demo run per checkpoint and condition, arm_sim randomised by the held-out profile (its log
    names it), the controller on the checkpoint; the same table."""
    from snn_sac_ros.core.resources import shipped_checkpoint

    result = _cli("bench", "transfer", "--ros", "--checkpoints", str(shipped_checkpoint("planar2")), "--perturb",
                  "eval-delay10ms", "--episodes", "2", "--reach-seconds", "1", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json(result.stdout)
    assert report["conditions"] == ["nominal", "eval-delay10ms"] and "over ROS 2" in report["mode"]
    assert [r["perturbation"] for r in report["rows"]] == ["none", "eval-delay10ms"]
    logs = {run.name: (run / "arm_sim.log").read_text() for run in tmp_path.iterdir() if run.is_dir()}
    assert len(logs) == 2
    perturbed = [name for name, log in logs.items() if "randomisation eval-delay10ms" in log]
    nominal = [name for name, log in logs.items() if "randomisation off" in log]
    assert len(perturbed) == 1 and "eval-delay10ms" in perturbed[0] and len(nominal) == 1
    for run in tmp_path.iterdir():
        if run.is_dir():
            assert "learning:=false" in (run / "commands.txt").read_text()


def test_the_demo_refuses_an_unknown_perturbation_before_starting_a_node(capsys: pytest.CaptureFixture,
                                                                        tmp_path: Path) -> None:
    assert main(["demo", "--perturb", "no_such_profile", "--out", str(tmp_path / "demo")]) == 2
    assert "unknown randomisation profile 'no_such_profile'" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_the_benchmarks_run_the_demo_with_its_own_defaults() -> None:
    """bench adapt and bench transfer --ros start the demo through run_arguments: the demo's command-line defaults,
    what they set, and nothing it does not know."""
    from snn_sac_ros.commands.demo import run_arguments

    args = run_arguments(reaches=3, perturb="eval-delay10ms")
    assert (args.reaches, args.perturb, args.control_rate, args.payload_kg, args.no_learning) == (
        3, "eval-delay10ms", 500.0, 2.0, False)
    with pytest.raises(TypeError, match="no_such_option"):
        run_arguments(no_such_option=1)


def test_a_last_action_another_step_rate_or_a_fine_tune_is_a_group_of_its_own() -> None:
    from snn_sac_ros.commands.bench_transfer import training_label

    contract = {"joint_names": ["a"]}
    assert training_label({"observation_contract": contract}) == "none"
    assert training_label({"observation_contract": contract, "randomization": {"name": "train"}}) == "train"
    assert training_label({"observation_contract": {**contract, "last_action": True},
                           "randomization": {"name": "train"}}) == "train+last-action"
    assert training_label({"observation_contract": contract, "control_hz": 100.0}) == "none@100Hz"
    assert training_label({"observation_contract": contract, "control_hz": 50.0}) == "none"
    assert training_label({"observation_contract": contract, "bags": [{"path": "run.mcap"}]}) == "none+from-bag"
    assert training_label({"observation_contract": contract, "bags": []}) == "none"


def test_a_checkpoint_trained_at_another_step_rate_is_evaluated_at_it_and_reaches_can_chain(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *SHORT, "--seed", "2", "--control-hz", "100", "--gamma", "0.995",
                 "--out", str(tmp_path)]) == 0
    meta = load_checkpoint(tmp_path / "checkpoint.npz").metadata
    assert meta["control_hz"] == 100.0 and meta["sac_config"]["gamma"] == 0.995
    assert meta["max_episode_steps"] == 200  # planar2's 2 s reach in 10 ms steps
    common = ["eval", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--episodes", "3", "--json"]
    assert main(common) == 0
    home = _last_json(capsys.readouterr().out)
    assert home["ticks_per_step"] == 10 and home["chained"] is False
    assert main([*common, "--chained"]) == 0
    out = capsys.readouterr().out
    chained = _last_json(out)
    assert chained["chained"] is True and "chained" in out
    assert chained["mean_final_distance_m"] != home["mean_final_distance_m"]  # reaches 2 and 3 started elsewhere


def test_eval_at_the_controllers_rate_steps_the_env_every_tick(checkpoints: dict[str, Path],
                                                               capsys: pytest.CaptureFixture) -> None:
    common = ["eval", "--checkpoint", str(checkpoints["nominal"]), "--episodes", "2", "--json"]
    assert main(common) == 0
    trained = _last_json(capsys.readouterr().out)
    assert main([*common, "--control-hz", "500", "--dt", "0.002"]) == 0
    out = capsys.readouterr().out
    deployed = _last_json(out)
    assert "env step 500 Hz (trained at 50)" in out
    assert (trained["control_hz"], trained["ticks_per_step"]) == (50.0, 20)
    assert (deployed["control_hz"], deployed["trained_control_hz"], deployed["ticks_per_step"]) == (500.0, 50.0, 1)
    assert deployed["mean_final_distance_m"] != trained["mean_final_distance_m"]
    assert main([*common, "--control-hz", "500", "--dt", "0.003"]) == 2
    assert "whole number of Nengo steps" in capsys.readouterr().err


def test_a_last_action_checkpoint_is_evaluated_at_its_own_rate_only(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *SHORT, "--steps", "200", "--learning-starts", "100", "--observe-last-action", "--out",
                 str(tmp_path)]) == 0
    checkpoint = str(tmp_path / "checkpoint.npz")
    assert main(["eval", "--checkpoint", checkpoint, "--episodes", "1", "--control-hz", "500"]) == 2
    assert "observes its last action" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", checkpoint, "--episodes", "1", "--control-hz", "50"]) == 0


def test_bench_transfer_at_the_controllers_rate_keeps_its_results_apart(checkpoints: dict[str, Path], tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    common = ["bench", "transfer", "--checkpoints", str(checkpoints["nominal"]), "--perturb", "eval-delay10ms",
              "--episodes", "1", "--rate", "--out", str(tmp_path)]
    assert main(common) == 0
    assert main([*common, "--control-hz", "500", "--dt", "0.002"]) == 0
    assert "env step 500 Hz, Nengo dt 0.002 s" in capsys.readouterr().out
    rates = sorted(json.loads(p.read_text())["control_hz"] for p in tmp_path.glob("*.json"))
    assert rates == [50.0, 50.0, 500.0, 500.0]  # nominal and delayed, at each rate, in files of their own
    assert main([*common, "--ros", "--control-hz", "500"]) == 2
    assert "over ROS the controller's parameters do" in capsys.readouterr().err


def test_bench_transfer_with_the_adaptation_pathway_is_a_group_of_its_own(checkpoints: dict[str, Path],
                                                                          tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    from snn_sac_ros.commands.bench_transfer import unrandomised

    assert unrandomised("train+adaptation") == "none+adaptation"
    assert unrandomised("train-wide+last-action@100Hz") == "none+last-action@100Hz"
    common = ["bench", "transfer", "--checkpoints", str(checkpoints["nominal"]), str(checkpoints["randomised"]),
              "--perturb", "eval-payload1kg", "--episodes", "1", "--rate", "--out", str(tmp_path), "--json"]
    assert main(common) == 0
    capsys.readouterr()
    assert main([*common, "--adaptation"]) == 0
    out = capsys.readouterr().out
    assert "the PES adaptation pathway beside the policy, learning" in out
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert [m["trained"] for m in summary] == ["none+adaptation"] * 2 + ["train+adaptation"] * 2
    assert all((m["vs_unrandomised_pts"] is None) == (m["trained"] == "none+adaptation") for m in summary)
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(results) == 8  # two checkpoints, two conditions, with and without the pathway: files of their own
    with_pathway = [r for r in results if r["adaptation"] is not None]
    assert len(with_pathway) == 4 and all(r["adaptation"]["teacher"] == "residual" for r in with_pathway)
