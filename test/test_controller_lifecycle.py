"""The controller's lifecycle over its lifecycle services, and the e-stop latch across it, over real DDS.

Every transition (configure, cleanup, activate, deactivate, shutdown from each state), in legal orders and
repeated, must leave exactly one of each topic, service and timer, one control thread while active and none
else, and a live node; an e-stop message in
any state must not kill it; a latched e-stop must outlive every transition (a transient_local true
published before the node started included) and give torque back only after ~/reset_estop and an
activation; a silent e-stop heartbeat must latch it. Shutdown must wait until the final zero command is
acknowledged.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import CONTROLLER, NodeProcess, RobotProbe, StoppableSubscriber, controller_params, planar2_target
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from snn_sac_ros.core.resources import shipped_checkpoint

#: what configure makes, by graph name: publishers and subscriptions (the e-stop ones live with the node)
CONFIGURED_PUBLISHERS = ("/effort_controller/commands", "/diagnostics")
CONFIGURED_SUBSCRIPTIONS = ("/joint_states", "/target")
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _start(name: str, tmp_path: object, **params: object) -> NodeProcess:
    return NodeProcess(CONTROLLER, controller_params(**{
        "autostart": False, "checkpoint": str(shipped_checkpoint("planar2")), "resume": False, "learning": False,
        "save_path": str(tmp_path / f"{name}.npz"), **params}), ["-r", f"__node:={name}"])


def _counts(probe: RobotProbe, name: str) -> dict[str, int]:
    """How many of each configure-made endpoint the graph shows for node ``name``, and its e-stop subscriptions."""
    graph = probe.node
    counts = {topic: sum(i.node_name == name for i in graph.get_publishers_info_by_topic(topic))
              for topic in CONFIGURED_PUBLISHERS}
    counts.update({topic: sum(i.node_name == name for i in graph.get_subscriptions_info_by_topic(topic))
                   for topic in CONFIGURED_SUBSCRIPTIONS})
    counts["estop"] = sum(i.node_name == name for i in graph.get_subscriptions_info_by_topic("/estop"))
    return counts


def _expect(probe: RobotProbe, node: NodeProcess, name: str, state: str) -> None:
    """The node is alive, in ``state``, with one of each configure-made endpoint when configured, none else."""
    assert node.process.poll() is None, node.stderr
    assert probe.lifecycle_state(name) == state
    configured = 1 if state in ("inactive", "active") else 0
    want = {t: configured for t in (*CONFIGURED_PUBLISHERS, *CONFIGURED_SUBSCRIPTIONS)}

    def as_wanted() -> bool:
        counts = _counts(probe, name)
        return counts.pop("estop") >= configured and counts == want  # e-stop: tested on its own below

    probe.spin_until(as_wanted, 20, f"endpoints {want} in state {state}")
    services = dict(probe.node.get_service_names_and_types_by_node(name, "/"))
    assert (f"/{name}/save" in services) == bool(configured), sorted(services)


def test_every_transition_in_legal_orders_leaves_one_of_each_entity_and_a_live_node(tmp_path: object) -> None:
    names = ("lc_full", "lc_inactive_shutdown", "lc_unconfigured_shutdown")
    nodes = {name: _start(name, tmp_path) for name in names}
    probe = RobotProbe("lifecycle_probe", controller="lc_full")
    try:
        probe.send_target(planar2_target())
        for name in names:
            probe.wait_lifecycle(name)
        full, node = "lc_full", nodes["lc_full"]
        entities: set[str] = set()
        steps = [("configure", "inactive"), ("cleanup", "unconfigured"), ("configure", "inactive"),
                 ("activate", "active"), ("deactivate", "inactive"), ("activate", "active"),
                 ("deactivate", "inactive"), ("cleanup", "unconfigured"), ("configure", "inactive"),
                 ("activate", "active")]
        for transition, state in steps:
            assert probe.transition(full, transition), f"{transition} failed:\n{node.stderr}"
            _expect(probe, node, full, state)
            if state != "unconfigured":  # the node's own count of its publishers, subscriptions, services, timers
                probe.diagnostics = {}
                probe.spin_until(lambda: "entities" in probe.diagnostics, 10, "diagnostics")
                entities.add(probe.diagnostics["entities"].replace(f"timers={2 if state == 'active' else 1}", "t"))
                # the tick runs in a thread of its own: exactly one while active (a restart joined the last), none else
                assert f"alive={1 if state == 'active' else 0};" in probe.diagnostics["control_thread"], (
                    state, probe.diagnostics["control_thread"])
            if state == "active":
                probe.wait_torque(f"torque after {transition}")
            if state == "unconfigured":  # an e-stop with nothing configured must not kill the node
                probe.estop_pub.publish(Bool(data=True))
                probe.spin_for(0.3)
                _expect(probe, node, full, state)
                probe.estop_pub.publish(Bool(data=False))
                assert probe.call(Trigger, f"/{full}/reset_estop", Trigger.Request()).success
        assert len(entities) == 1, f"entity counts changed across transitions: {entities}"
        services = dict(probe.node.get_service_names_and_types_by_node(full, "/"))
        assert f"/{full}/reset_estop" in services and f"/{full}/set_learning" in services  # the node's own
        assert probe.transition(full, "shutdown")
        assert probe.lifecycle_state(full) == "finalized" and node.process.poll() is None
        assert probe.transition("lc_inactive_shutdown", "configure")
        assert probe.transition("lc_inactive_shutdown", "shutdown")
        assert probe.transition("lc_unconfigured_shutdown", "shutdown")
        for name in names[1:]:
            assert probe.lifecycle_state(name) == "finalized" and nodes[name].process.poll() is None
    finally:
        probe.close()
        for node in nodes.values():
            node.stop_cleanly()


def test_a_latched_estop_survives_transitions_and_a_silent_heartbeat_latches_it(tmp_path: object) -> None:
    probe = RobotProbe("estop_probe", controller="estop_ctl")
    latched = probe.node.create_publisher(Bool, "estop", LATCHED)
    latched.publish(Bool(data=True))  # before the controller exists: transient_local keeps it for it
    node = _start("estop_ctl", tmp_path, estop_heartbeat_timeout=0.5)
    beating = threading.Event()
    probe.every(0.1, lambda: latched.publish(Bool(data=False)) if beating.is_set() else None)
    name = "estop_ctl"
    try:
        probe.send_target(planar2_target())
        probe.wait_lifecycle(name)
        for _ in range(2):  # the latch outlives configure / cleanup
            assert probe.transition(name, "configure")
            assert not probe.transition(name, "activate"), "activated with the e-stop latched"
            assert probe.transition(name, "cleanup")
        assert any("activation refused: e-stop latched" in line for line in node.lines), node.stderr
        assert probe.transition(name, "configure")
        assert not probe.call(Trigger, f"/{name}/reset_estop", Trigger.Request()).success  # still asserted
        beating.set()  # the e-stop is released and reports so every 0.1 s
        probe.spin_for(0.3)
        assert probe.call(Trigger, f"/{name}/reset_estop", Trigger.Request()).success
        assert probe.transition(name, "activate")
        probe.wait_torque("torque once reset and activated")
        beating.clear()  # the e-stop node goes silent: after 0.5 s the controller latches by itself
        probe.spin_until(lambda: probe.diagnostics.get("estop", "").startswith("latched (no e-stop message"), 10,
                         "the heartbeat latch on /diagnostics")
        assert all(np.all(c == 0) for c in probe.run_mode("valid", ticks=60))
    finally:
        probe.close()
        node.stop_cleanly()


def test_shutdown_waits_until_the_final_zero_command_is_acknowledged(tmp_path: Path) -> None:
    """A reliable subscriber of the commands (a driver) is SIGSTOPped for 2 s of commands, so that its transport
    queue overflows and the final zero can reach it only by a retransmission, which needs the controller's
    writer; the controller is stopped, the subscriber resumes 0.5 s later. The last command it gets is zero,
    before the controller has exited. (Without the wait, shutdown_ack_timeout 0, it got a non-zero one.)"""
    subscriber = StoppableSubscriber(tmp_path)
    node = _start("ack_ctl", tmp_path, autostart=True, shutdown_ack_timeout=5.0)
    probe = RobotProbe("ack_probe", controller="ack_ctl")
    try:
        probe.send_target(planar2_target())
        probe.wait_torque("torque from the controller", timeout=90)
        probe.spin_until(lambda: any(subscriber.last_command().get("values", [])), 30, "torque at the subscriber")
        subscriber.pause()
        probe.run_mode("valid", ticks=1000)
        node.process.send_signal(signal.SIGTERM)
        probe.spin_for(0.5)
        subscriber.resume()
        code = node.process.wait(30)
        exited_ns = time.time_ns()
        probe.spin_for(0.5)  # the subscriber writes what it got ten times a second
        last = subscriber.last_command()
        assert code == 0, node.stderr[-3000:]
        assert last["values"] == [0.0, 0.0], f"the last command the driver got was {last['values']}, not zero"
        assert last["received_ns"] < exited_ns
        assert "final zero command was not acknowledged" not in node.stderr
    finally:
        probe.close()
        subscriber.close()
        node.stop()
