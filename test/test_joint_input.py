"""Joint-state validation by name: every way a message can be wrong is refused with its kind."""

from __future__ import annotations

import numpy as np
import pytest

from snn_sac_ros.core.joint_input import JointInputError, order_joint_state

JOINTS = ("shoulder", "elbow")
LIMITS = {"lower": np.array([-3.14, -2.8]), "upper": np.array([3.14, 2.8]), "velocity_limits": np.array([8.0, 10.0])}


def test_maps_by_name_not_index_and_ignores_extra_joints() -> None:
    q, dq = order_joint_state(["gripper", "elbow", "shoulder"], [0.01, 0.5, -0.2], [0.0, 1.0, 2.0], JOINTS,
                              **LIMITS)
    np.testing.assert_array_equal(q, [-0.2, 0.5])
    np.testing.assert_array_equal(dq, [2.0, 1.0])


@pytest.mark.parametrize(("names", "pos", "vel", "kind"), [
    (["shoulder"], [0.0], [0.0], "missing_joint"),
    (["shoulder", "shoulder", "elbow"], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], "duplicate_joint"),
    (["shoulder", "elbow"], [0.0], [0.0, 0.0], "wrong_length"),
    (["shoulder", "elbow"], [0.0, 0.0], [], "wrong_length"),
    (["shoulder", "elbow"], [np.nan, 0.0], [0.0, 0.0], "non_finite"),
    (["shoulder", "elbow"], [0.0, 0.0], [0.0, -np.inf], "non_finite"),
    (["shoulder", "elbow"], [1e9, 0.0], [0.0, 0.0], "out_of_range"),
    (["shoulder", "elbow"], [0.0, 0.0], [0.0, 25.0], "out_of_range"),
    ([], [], [], "missing_joint"),
])
def test_bad_messages_are_refused_by_kind(names: list[str], pos: list[float], vel: list[float], kind: str) -> None:
    with pytest.raises(JointInputError) as error:
        order_joint_state(names, pos, vel, JOINTS, **LIMITS)
    assert error.value.kind == kind


def test_the_reader_gives_what_order_joint_state_gives_when_the_names_repeat_or_change() -> None:
    """The reader keeps the index of the last name list: a new order, a refused message or a value out of range
    after a run of good ones must each be read as order_joint_state reads it, with the same error kind."""
    from snn_sac_ros.core.joint_input import JointStateReader

    read = JointStateReader(JOINTS, **LIMITS)
    messages = [
        (["shoulder", "elbow"], [0.1, 0.2], [0.0, 1.0]),
        (["shoulder", "elbow"], [0.3, 0.4], [0.5, 1.5]),
        (["elbow", "shoulder"], [0.3, 0.4], [0.5, 1.5]),  # same values, other order: must swap
        (["elbow", "shoulder"], [np.nan, 0.4], [0.5, 1.5]),
        (["elbow", "shoulder"], [0.3, 0.4], [0.5, 25.0]),
        (["elbow", "shoulder"], [9.0, 0.4], [0.5, 1.5]),
        (["elbow", "shoulder"], [0.3, 0.4], [0.5]),
        (["elbow"], [0.3], [0.5]),
        (["gripper", "elbow", "shoulder"], [0.0, 0.3, 0.4], [0.0, 0.5, 1.5]),
        (["gripper", "elbow", "shoulder"], [0.0, 0.7, 0.8], [0.0, 0.5, 1.5]),
    ]
    for names, pos, vel in messages:
        try:
            expected = order_joint_state(names, pos, vel, JOINTS, **LIMITS)
        except JointInputError as error:
            with pytest.raises(JointInputError) as got:
                read(names, pos, vel)
            assert got.value.kind == error.kind, names
            continue
        q, dq = read(names, pos, vel)
        np.testing.assert_array_equal(q, expected[0])
        np.testing.assert_array_equal(dq, expected[1])


def test_the_reader_orders_the_efforts_of_the_state_it_just_read() -> None:
    from snn_sac_ros.core.joint_input import JointStateReader

    read = JointStateReader(JOINTS, **LIMITS)
    read(["elbow", "shoulder"], [0.3, 0.4], [0.5, 1.5])
    assert read.effort([1.0, 2.0]).tolist() == [2.0, 1.0]  # in the reader's joint order
    assert read.effort([]) is None and read.effort([1.0]) is None and read.effort([np.nan, 2.0]) is None
