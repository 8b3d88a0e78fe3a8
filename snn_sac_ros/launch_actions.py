"""A :class:`~snn_sac_ros.bringup.Plan` as launch_ros actions, for ``ros2 launch`` on a ROS 2 install.

Imports ``launch`` and ``launch_ros`` (not on PyPI): only :func:`snn_sac_ros.bringup.launch_description`
imports this module. Every node gets the plan's namespace and log level. A lifecycle node is a
``LifecycleNode``; with ``autostart`` the launch configures it when its process starts and activates it
once configure has taken it to ``inactive`` (not after a later deactivate: that one is the user's). A node
that ends the launch (``reach_targets``) emits ``Shutdown`` when it exits, unless the launch is already
shutting down (Ctrl-C): a second Shutdown makes launch_ros stop its ROS adapter twice, which fails the launch.
An optional node whose package is not installed is skipped with a line in the log.
"""

from __future__ import annotations

from typing import Any

from launch.actions import EmitEvent, LogInfo, RegisterEventHandler
from launch.event_handlers import OnProcessExit, OnProcessStart
from launch.events import Shutdown, matches_action
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from snn_sac_ros.bringup import NodeSpec, Plan


def installed(package: str) -> bool:
    """Whether ``package`` is in the ament index (its executables can be launched)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory(package)
    except PackageNotFoundError:
        return False
    return True


def _transition(node: LifecycleNode, transition: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition))


def bring_up(node: LifecycleNode) -> list[Any]:
    """Configure ``node`` when its process starts; activate it when that configure reached ``inactive``."""
    return [RegisterEventHandler(OnProcessStart(target_action=node,
                                                on_start=[_transition(node, Transition.TRANSITION_CONFIGURE)])),
            RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state="configuring",
                                                   goal_state="inactive",
                                                   entities=[_transition(node, Transition.TRANSITION_ACTIVATE)]))]


def node_action(spec: NodeSpec, plan: Plan) -> Node:
    """The launch_ros action starting ``spec`` in ``plan``'s namespace, at its log level."""
    kind = LifecycleNode if spec.lifecycle else Node
    return kind(package=spec.package, executable=spec.executable, name=spec.name, namespace=plan.namespace,
                output="screen", parameters=[*(str(p) for p in spec.parameter_paths(plan.namespace)), spec.parameters],
                remappings=list(spec.remappings),
                arguments=[*spec.arguments, "--ros-args", "--log-level", plan.log_level])


def node_actions(plan: Plan) -> list[Any]:
    """Every action of ``plan``: the nodes, their bring-up and the launch's end."""
    actions: list[Any] = []
    for spec in plan.nodes:
        if spec.optional and not installed(spec.package):
            actions.append(LogInfo(msg=f"{spec.package} is not installed: {spec.name} is not started"))
            continue
        node = node_action(spec, plan)
        actions.append(node)
        if spec.lifecycle and plan.autostart:
            actions += bring_up(node)
        if spec.ends_launch:
            actions.append(RegisterEventHandler(OnProcessExit(target_action=node, on_exit=end_launch(spec.name))))
    return actions


def end_launch(name: str) -> Any:
    """The ``on_exit`` of the node that ends the launch: Shutdown, unless one is under way."""
    def on_exit(_event: Any, context: Any) -> list[Any] | None:
        return None if context.is_shutdown else [EmitEvent(event=Shutdown(reason=f"{name} finished"))]

    return on_exit
