"""The controller learning online, over real DDS: what it learns from, when, and where it keeps it.

One controller (planar2, hardware-style: no sim time, the default save path) is fed by a fake robot; its
weights are read by asking it to save (``~/save``) and loading the file. States that teleport (farther
apart than the arm can move between them) are acted on but never learned from; valid states are learned
from while learning is on and not while it is off. Two more controllers show that a simulation run saves
apart from a hardware one by default, and that resuming saved weights is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, controller_params, controlling
from std_srvs.srv import SetBool, Trigger

from snn_sac_ros.core.agent.checkpoint import load_checkpoint
from snn_sac_ros.core.resources import shipped_checkpoint

NODE = "learner"
CHECKPOINT = shipped_checkpoint("planar2")

Running = tuple[NodeProcess, RobotProbe]


def _saved_path(node: NodeProcess) -> Path:
    """Where the controller saves, from its configure line."""
    line = next(line for line in node.lines if "configured:" in line)
    return Path(re.search(r"saving to (\S+)$", line).group(1))


@pytest.fixture(scope="module")
def learner() -> Iterator[Running]:
    node = NodeProcess(CONTROLLER, controller_params(checkpoint=str(CHECKPOINT), learning=False, save_period_s=0.0),
                       ["-r", f"__node:={NODE}"])
    with controlling(node, RobotProbe("learning_probe", controller=NODE)) as running:
        yield running


def _weights(node: NodeProcess, probe: RobotProbe) -> dict[str, np.ndarray]:
    """The network weights as the controller holds them now (it saves them; we load the file)."""
    mark = len(node.lines)
    response = probe.call(Trigger, f"/{NODE}/save", Trigger.Request())
    assert response.success, response.message
    probe.spin_until(lambda: any("weights saved to" in line for line in node.lines[mark:]), 30, "the save")
    arrays = load_checkpoint(_saved_path(node)).arrays
    return {k: a for k, a in arrays.items() if k.split("/")[0] in ("actor", "q1", "q2")}


def _changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> list[str]:
    assert set(before) == set(after) and before
    return [k for k in before if not np.array_equal(before[k], after[k])]


def _set_learning(probe: RobotProbe, on: bool) -> None:
    response = probe.call(SetBool, f"/{NODE}/set_learning", SetBool.Request(data=on))
    assert response.success, response.message


def test_teleporting_states_are_acted_on_but_never_learned_from(learner: Running) -> None:
    node, probe = learner
    trained = {k: a for k, a in load_checkpoint(CHECKPOINT).arrays.items() if k.split("/")[0] in ("actor", "q1", "q2")}
    probe.mode = "jumping"
    probe.run_mode("jumping", ticks=40)  # the last valid state is behind
    _set_learning(probe, True)
    try:
        commands = probe.run_mode("jumping", ticks=300)
        assert any(np.any(c != 0) for c in commands), "teleporting states must still be acted on"
        probe.spin_until(lambda: int(probe.diagnostics.get("unlearned_jumps", 0)) > 100, 10, "jumps counted")
    finally:
        _set_learning(probe, False)
    assert not _changed(trained, _weights(node, probe)), "weights learned from states the arm cannot reach"


def test_weights_change_while_learning_is_on_and_stand_still_while_it_is_off(learner: Running) -> None:
    node, probe = learner
    probe.run_mode("valid", ticks=50)
    off = _weights(node, probe)
    probe.run_mode("valid", ticks=200)
    assert not _changed(off, _weights(node, probe)), "weights changed with learning off"
    _set_learning(probe, True)
    try:
        probe.run_mode("valid", ticks=200)
        learned = _weights(node, probe)
        assert _changed(off, learned), "learning on, and no weight changed in 200 ticks"
    finally:
        _set_learning(probe, False)
    probe.run_mode("valid", ticks=50)  # a tick may still have been learning when the switch came
    stopped = _weights(node, probe)
    probe.run_mode("valid", ticks=200)
    assert not _changed(stopped, _weights(node, probe)), "weights changed after learning was switched off"
    assert probe.get_parameter(NODE, "learning") is False


def test_simulation_saves_apart_from_hardware_and_resuming_is_a_warning(learner: Running) -> None:
    node, probe = learner
    hardware = _saved_path(node)
    _weights(node, probe)  # the file exists, learned from the checkpoint
    sim = NodeProcess(CONTROLLER, controller_params(checkpoint=str(CHECKPOINT), use_sim_time=True),
                      ["-r", "__node:=sim_run"])
    resumed = NodeProcess(CONTROLLER, controller_params(checkpoint=str(CHECKPOINT), save_path=str(hardware),
                                                        resume=True), ["-r", "__node:=resumed_run"])
    try:
        for process in (sim, resumed):
            probe.spin_until(lambda p=process: any("configured:" in line for line in p.lines)
                             or p.process.poll() is not None, 120, "the controller configured")
            assert process.process.poll() is None, process.stderr[-3000:]
        simulated = _saved_path(sim)
        assert simulated != hardware and simulated.parent.name == "sim" and hardware.parent.name == "hardware"
        assert simulated.parent.parent == hardware.parent.parent  # both under $ROS_HOME/snn_sac_ros
        assert not any("RESUMING" in line for line in sim.lines), "a new run resumed another's weights"
        warning = [line for line in resumed.lines if "RESUMING the online weights" in line]
        assert warning and warning[0].startswith("[WARN]") and str(hardware) in warning[0], resumed.stderr[-3000:]
    finally:
        sim.stop_cleanly()
        resumed.stop_cleanly()
