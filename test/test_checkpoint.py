"""Checkpoints: round trip, refusal of a mismatched set-up or a corrupt file, atomic save."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from snn_sac_ros.core.agent.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from snn_sac_ros.core.contracts import ActionContract, ObservationContract

SHIPPED = ["planar2", "kuka_iiwa", "panda"]  # the arms the package ships a trained checkpoint for


def _contracts() -> tuple[ObservationContract, ActionContract]:
    obs = ObservationContract(joint_names=("shoulder", "elbow"), q_lower=(-3.0, -3.0), q_upper=(3.0, 3.0),
                              dq_scale=(10.0, 10.0), target_axes="xy", workspace_center=(0.0, 0.0, 0.0),
                              workspace_reach=0.6)
    act = ActionContract(joint_names=("shoulder", "elbow"), torque_scale=(2.0, 1.0), effort_limits=(2.0, 1.0),
                         gravity_compensation=False)
    return obs, act


def _meta() -> dict:
    obs, act = _contracts()
    return {"arm": "planar2", "joint_names": ["shoulder", "elbow"], "hidden": [8, 8],
            "observation_contract": obs.to_dict(), "action_contract": act.to_dict(), "seed": 3,
            "train_command": "snn-sac-ros train --steps 10"}


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    arrays = {"actor/W0": np.arange(6, dtype=np.float32).reshape(2, 3), "log_alpha": np.array([-1.5])}
    path = save_checkpoint(tmp_path / "c.npz", arrays, _meta())
    obs, act = _contracts()
    ckpt = load_checkpoint(path, obs, act)
    np.testing.assert_array_equal(ckpt.arrays["actor/W0"], arrays["actor/W0"])
    assert ckpt.metadata["seed"] == 3 and ckpt.metadata["format_version"] == 1
    assert ckpt.observation_contract == obs and ckpt.action_contract == act


def test_mismatch_names_what_differs(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.npz", {"x": np.zeros(1)}, _meta())
    obs, act = _contracts()
    with pytest.raises(CheckpointError, match=r"observation\.joint_names"):
        load_checkpoint(path, replace(obs, joint_names=("elbow", "shoulder")), act)
    with pytest.raises(CheckpointError, match=r"action\.torque_scale"):
        load_checkpoint(path, obs, replace(act, torque_scale=(5.0, 1.0)))
    # a policy trained without joint damping is refused on an arm that damps, and the other way round
    with pytest.raises(CheckpointError, match=r"action\.joint_damping"):
        load_checkpoint(path, obs, replace(act, joint_damping=(0.5, 0.1)))
    damped = save_checkpoint(tmp_path / "damped.npz", {"x": np.zeros(1)},
                             {**_meta(), "action_contract": replace(act, joint_damping=(0.5, 0.1)).to_dict()})
    with pytest.raises(CheckpointError, match=r"action\.joint_damping"):
        load_checkpoint(damped, obs, act)


def test_corrupt_and_foreign_files_get_clear_errors(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "c.npz", {"x": np.zeros(3)}, _meta())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(2))
    for path, pattern in ((truncated, "corrupt"), (garbage, "corrupt"), (foreign, "not an snn_sac_ros")):
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(path)
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "c.npz", {"x": np.ones(2)}, _meta())
    import snn_sac_ros.core.agent.checkpoint as ck

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"x": np.zeros(2)}, _meta())
    monkeypatch.undo()
    np.testing.assert_array_equal(load_checkpoint(path).arrays["x"], np.ones(2))  # the old one is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


@pytest.mark.parametrize("arm", SHIPPED)
def test_the_shipped_checkpoint_matches_its_env(arm: str) -> None:
    """``eval`` without ``--checkpoint`` loads the shipped policy into the env's own contracts."""
    import gymnasium as gym

    import snn_sac_ros  # noqa: F401  (registers the env)
    from snn_sac_ros.core.resources import shipped_checkpoint

    env = gym.make("snn_sac_ros/ArmReach-v0", arm=arm)
    base = env.unwrapped
    ckpt = load_checkpoint(shipped_checkpoint(arm), base.observation_contract, base.action_contract)
    env.close()
    assert ckpt.metadata["arm"] == arm
    assert ckpt.metadata["train_command"].startswith(f"snn-sac-ros train --arm {arm} ")
    assert isinstance(ckpt.metadata["seed"], int)
