"""The feedback modes of the replay networks: what each one's error paths read, that every mode learns, and
that Kolen-Pollack's feedback converges to the forward weights without reading them."""

from __future__ import annotations

import numpy as np
import pytest

from snn_sac_ros.core.learning.feedback import FEEDBACK_MODES, feedback_mode
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.networks.rate import LIFRateNet

LIF = LIFParams()


def _regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (256, 6)).astype(np.float32)
    y = np.concatenate([np.sin(2 * x[:, :1]) * x[:, 1:2], 0.5 * x[:, 2:3] ** 2 - x[:, 4:5] * x[:, 5:6]], axis=1)
    return x, y.astype(np.float32)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


@pytest.mark.parametrize("mode", sorted(FEEDBACK_MODES))
def test_error_paths_read_forward_weights_only_where_the_mode_says_it_transports_them(mode: str) -> None:
    """Scramble every forward matrix after the forward pass: the hidden errors and dQ/da of a mode without weight
    transport do not change, because their paths never read a forward weight; the other modes' do."""
    net = LIFRateNet((6, 24, 20, 1), LIF, mode, seed=1, input_columns=(4, 6), weight_decay=1e-3)
    x, _ = _regression()
    net.calibrate(x)
    _, cache = net.forward(x[:32])
    error = np.random.default_rng(2).normal(size=(32, 1)).astype(np.float32)
    before = net.layer_errors(cache, error), net.input_gradient(cache, np.ones((32, 1), np.float32))
    rng = np.random.default_rng(3)
    for w in net.W:
        w[...] = rng.normal(size=w.shape)
    after = net.layer_errors(cache, error), net.input_gradient(cache, np.ones((32, 1), np.float32))
    pairs = [(a, b) for a, b in zip(before[0], after[0]) if a is not None] + [(before[1], after[1])]
    changed = any(not np.array_equal(a, b) for a, b in pairs)
    assert changed == feedback_mode(mode).weight_transport, FEEDBACK_MODES[mode].transports


@pytest.mark.parametrize("mode", sorted(FEEDBACK_MODES))
def test_every_mode_fits_a_regression(mode: str) -> None:
    x, y = _regression()
    net = LIFRateNet((6, 64, 64, 2), LIF, mode, seed=0, weight_decay=1e-4)
    net.calibrate(x)
    first = float(np.mean((net.forward(x)[0] - y) ** 2))
    for k in range(300):
        batch = slice(64 * (k % 4), 64 * (k % 4 + 1))
        out, cache = net.forward(x[batch])
        net.learn(cache, out - y[batch], 3e-3)
    last = float(np.mean((net.forward(x)[0] - y) ** 2))
    # fixed random hidden layers (pes) only fit what a linear readout of random features can
    assert last < (0.5 if mode == "pes" else 0.3) * first, f"{mode}: mse {first:.4f} -> {last:.4f}"


KP_DECAY, KP_UPDATES, KP_BOUND_DEG = 0.01, 600, 5.0


@pytest.mark.parametrize("mode", ["kp", "fa"])
def test_kolen_pollack_feedback_converges_to_the_forward_weights(mode: str) -> None:
    """With the same update at the feedback synapses and the same decay (0.01 per update), the angle between every
    feedback matrix and its forward twin falls from about 90 degrees to under 5 within 600 updates, and so does
    the critic's input feedback against its action columns; dQ/da through it then points where backprop's does.
    Fixed random feedback (fa) does not change, and its input feedback stays far from the action columns."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (256, 6)).astype(np.float32)
    y = np.sin(2 * x[:, :1]) * x[:, 1:2] + x[:, 4:5] - 0.5 * x[:, 5:6] ** 2 + 0.5 * x[:, 4:5] * x[:, 2:3]
    net = LIFRateNet((6, 64, 48, 1), LIF, mode, seed=0, input_columns=(4, 6), weight_decay=KP_DECAY)
    net.calibrate(x)
    start = [b.copy() for b in (*net.B, net.C)]

    def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
        return [(net.W[i + 1], b) for i, b in enumerate(net.B)] + [(net.W[0][:, 4:6], net.C)]

    assert all(_angle(w, b) > 60 for w, b in pairs())
    for k in range(KP_UPDATES):
        batch = slice(64 * (k % 4), 64 * (k % 4 + 1))
        out, cache = net.forward(x[batch])
        net.learn(cache, out - y[batch], 3e-3)
    angles = [_angle(w, b) for w, b in pairs()]
    _, cache = net.forward(x[:64])
    ones = np.ones((64, 1), np.float32)
    exact = LIFRateNet(net.sizes, LIF, "exact", input_columns=(4, 6))
    exact.W, exact.b = net.W, net.b
    ours, backprop = net.input_gradient(cache, ones), exact.input_gradient(cache, ones)
    cosine = np.sum(ours * backprop) / (np.linalg.norm(ours) * np.linalg.norm(backprop))
    if mode == "kp":
        assert max(angles) < KP_BOUND_DEG, angles
        assert cosine > 0.99
    else:
        assert all(np.array_equal(a, b) for a, b in zip(start, (*net.B, net.C)))
        assert angles[-1] > 60 and cosine < 0.9, (angles, cosine)
