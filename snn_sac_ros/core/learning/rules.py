"""The per-synapse update: ``dW[post, pre]`` from the presynaptic activity, the error at the postsynaptic
neurons and the synapse's own state (Adam moments), plus the two terms a synapse applies to its own weight
alone (the anchor's pull toward a reference, weight decay).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from snn_sac_ros.core.learning import kernels
from snn_sac_ros.core.learning.lif import LIFParams, flat, flat_out, lif_rate, lif_rate_derivative

MOMENT_FLOOR = 1e-30
"""Lowest second moment of the adaptive rule: float32 values below ~1e-38 are subnormal (~100x slower)."""


@dataclass
class RuleState:
    """Per-synapse running moments of the local update (Adam), and the step count."""

    m: np.ndarray
    v: np.ndarray
    t: np.ndarray  # shape (1,), so a Nengo Signal can hold it

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> RuleState:
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(1))


def local_gradient(pre: np.ndarray | None, error: np.ndarray, bias: bool = False) -> np.ndarray:
    """``e^T a / B``: the product of each synapse's post error and pre activity, over a batch of ``B``.

    ``pre`` is ``(batch, n_pre)``, ``error`` ``(batch, n_post)``; with ``bias`` the synapses come from a
    constant 1 (``pre`` is ignored) and the result is ``(n_post,)``.
    """
    batch = error.shape[0]
    return error.sum(axis=0) / batch if bias else (error.T @ pre) / batch


def adam_step(grad: np.ndarray, state: RuleState, learning_rate: float, delta: np.ndarray, *,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
    """Write Adam's step for ``grad`` into ``delta``, updating the synapses' own moments in ``state``.

    .. math::
        m \\leftarrow \\beta_1 m + (1-\\beta_1) g, \\quad v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2,
        \\quad \\Delta W = -\\eta \\hat m / (\\sqrt{\\hat v} + \\epsilon)
    """
    state.t += 1.0
    t = float(state.t[0])
    step = learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    gt, mt = grad.dtype.type, state.m.dtype.type
    kernels.adam_step(flat(grad, grad.dtype), flat_out(state.m), flat_out(state.v), flat_out(delta),
                      gt(1.0 - beta1), mt(beta1), gt(1.0 - beta2), mt(beta2), mt(MOMENT_FLOOR), mt(eps), float(-step))
    return delta


def apply_local_rule(pre: np.ndarray | None, error: np.ndarray, state: RuleState, learning_rate: float,
                     delta: np.ndarray, *, adaptive: bool = True, bias: bool = False) -> np.ndarray:
    """Write the weight change for ``W[post, pre]`` (or a bias, ``bias=True``) into ``delta``, and return it.

    Adaptive: :func:`adam_step` on :func:`local_gradient`, as replay training does. ``adaptive=False``: the
    moments are skipped, ``Delta W = -eta e a^T``: the PES-like form online learning uses, cheap enough for
    every 1 ms tick.
    """
    if adaptive:
        return adam_step(local_gradient(pre, error, bias), state, learning_rate, delta)
    state.t += 1.0
    if error.shape[0] == 1 and not bias:  # the online case: one outer product, written in place
        np.multiply.outer(error[0] * -learning_rate, pre[0], out=delta)
        return delta
    np.multiply(local_gradient(pre, error, bias), -learning_rate, out=delta)
    return delta


def anchor_pull(weights: np.ndarray, reference: np.ndarray, rate: float, delta: np.ndarray) -> np.ndarray:
    """Add to ``delta`` the pull of every synapse back toward its reference weight: ``-rate (W - W_ref)``.

    Online learning on a robot must not wander away from the trained policy: with this term the weights
    relax toward the reference (the trained checkpoint's) with time constant ``dt / rate``, and stay only as
    far from it as a sustained error holds them (at most ``learning_rate * |e a| / rate``). Local: a
    synapse needs only its own weight and reference.
    """
    diff = np.subtract(weights, reference)
    diff *= -rate
    delta += diff
    return delta


def decay(weights: np.ndarray, rate: float) -> None:
    """Weight decay in place, ``W <- (1 - rate) W``: each synapse shrinks its own weight."""
    np.multiply(weights, weights.dtype.type(1.0 - rate), out=weights)


def random_feedback(shape: tuple[int, int], seed: int, fan_in: int | None = None) -> np.ndarray:
    """A random feedback matrix (feedback alignment's fixed one, Kolen-Pollack's start), scaled like the
    ``1/sqrt(fan_in)`` initialisation of the forward matrix it stands for (``fan_in`` default: ``shape[1]``)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, shape) * np.sqrt(3.0 / (shape[1] if fan_in is None else fan_in))


@functools.lru_cache(maxsize=1)
def compile_kernels() -> None:
    """Compile (or load from numba's cache) the kernels for the dtypes training and Nengo use.

    Nengo builders call this when the simulator is built, so the first control tick does not pay for it.
    """
    for dtype in (np.float32, np.float64):
        current = np.linspace(-1.0, 3.0, 8).astype(dtype)
        lif_rate_derivative(current, LIFParams(), lif_rate(current, LIFParams()))
        apply_local_rule(current[:, None], current[:, None], RuleState.zeros((1, 1)), 1e-3,
                         np.empty((1, 1), dtype))
