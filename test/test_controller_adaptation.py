"""The controller's PES adaptation pathway over real DDS: off by default, learning only while learning is on, what
it learned saved with the weights and continued from on a restart."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, controlling
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.core.agent.adaptation import DECODERS_KEY
from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.resources import shipped_checkpoint

NODE = "adapting"
CHECKPOINT = shipped_checkpoint("planar2")


def _decoders(node: NodeProcess, probe: RobotProbe, name: str = NODE) -> np.ndarray:
    """The pathway's decoders as the controller ``name`` holds them now (it saves them; we load the file)."""
    mark = len(node.lines)
    response = probe.call(Trigger, f"/{name}/save", Trigger.Request())
    assert response.success, response.message
    probe.spin_until(lambda: any("weights saved to" in line for line in node.lines[mark:]), 30, "the save")
    path = Path(re.search(r"saving to (\S+)$", next(ln for ln in node.lines if "configured:" in ln)).group(1))
    return load_checkpoint(path).arrays[DECODERS_KEY]


def test_the_adaptation_learns_only_while_learning_is_on_and_is_saved_and_resumed(tmp_path: Path) -> None:
    save = tmp_path / "weights.npz"
    params = controller_params(checkpoint=str(CHECKPOINT), learning=False, save_period_s=0.0, adaptation=True,
                               adaptation_neurons=200, save_path=str(save))
    node = NodeProcess(CONTROLLER, params, ["-r", f"__node:={NODE}"])
    with controlling(node, RobotProbe("adaptation_probe", controller=NODE)) as (node, probe):
        probe.run_mode("valid", ticks=200)
        assert not np.any(_decoders(node, probe)), "the pathway learned with learning off"
        probe.spin_until(lambda: "adaptation_torque" in probe.diagnostics, 15, "the controller's diagnostics")
        assert probe.diagnostics["adaptation_torque"] == "0.000,0.000"
        response = probe.call(SetBool, f"/{NODE}/set_learning", SetBool.Request(data=True))
        assert response.success, response.message
        probe.run_mode("valid", ticks=400)
        probe.call(SetBool, f"/{NODE}/set_learning", SetBool.Request(data=False))
        probe.run_mode("valid", ticks=50)
        learned = _decoders(node, probe)
        assert np.any(learned), "learning on, and the pathway learned nothing"
        probe.run_mode("valid", ticks=200)
        assert np.array_equal(learned, _decoders(node, probe)), "the pathway learned with learning off"
    resumed = NodeProcess(CONTROLLER, {**params, "resume": True}, ["-r", f"__node:={NODE}"])
    with controlling(resumed, RobotProbe("adaptation_probe_2", controller=NODE)) as (resumed, probe):
        assert any("adaptation: continuing from the saved decoders" in line for line in resumed.lines)
        assert np.array_equal(learned, _decoders(resumed, probe))


def test_with_adaptation_while_frozen_the_pathway_learns_while_the_policy_is_frozen(tmp_path: Path) -> None:
    """``adaptation_while_frozen``: learning off (the policy's weights fixed), the pathway learns all the same."""
    name, save = f"{NODE}_frozen", tmp_path / "weights.npz"
    params = controller_params(checkpoint=str(CHECKPOINT), learning=False, save_period_s=0.0, adaptation=True,
                               adaptation_neurons=200, adaptation_while_frozen=True, save_path=str(save))
    node = NodeProcess(CONTROLLER, params, ["-r", f"__node:={name}"])
    with controlling(node, RobotProbe("adaptation_frozen_probe", controller=name)) as (node, probe):
        probe.run_mode("valid", ticks=400)
        assert np.any(_decoders(node, probe, name)), "adaptation_while_frozen, and the pathway learned nothing"
        assert load_checkpoint(save).metadata.get("online_updates", 0) == 0, "the policy learned with learning off"
