"""Fused numba kernels under the learning math: one pass over memory each.

NumPy runs the masked LIF rate as nine passes over memory and its bounded derivative as seventeen; on replay
batches (256 x 256) those passes, not the arithmetic, were most of an update's element-wise cost. Each kernel is
one pass; the transcendental functions stay NumPy's vectorised ``log1p`` and ``exp`` (called between the kernels),
and every operation keeps NumPy's order and dtype, so the results are bit for bit those of the plain NumPy
expressions (tested against them). ``error_model="numpy"``: IEEE results, no exceptions, so the loops vectorise.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

kernel = functools.partial(numba.njit, nogil=True, cache=True, error_model="numpy")


@kernel
def rate_log1p_argument(current: np.ndarray, out: np.ndarray, one: float, tiny: float) -> None:
    """``out = 1 / (J - 1)`` where ``J > 1``; -0.5 where silent (a marker: its log1p is negative); NaN kept."""
    for i in range(current.size):
        j = current[i] - one
        if j > 0.0:
            out[i] = one / max(j, tiny)
        elif math.isnan(j):  # bad input must not turn into a quiet zero
            out[i] = j
        else:
            out[i] = -0.5


@kernel
def rate_from_log1p(x: np.ndarray, amplitude: float, tau_ref: float, tau_rc: float) -> None:
    """``x = a / (tau_ref + tau_rc x)`` where ``x = log1p(...) >= 0``; 0 at the silent marker; NaN kept."""
    for i in range(x.size):
        if x[i] >= 0.0:
            x[i] = amplitude / (tau_ref + x[i] * tau_rc)
        elif not math.isnan(x[i]):
            x[i] = 0.0


@kernel
def derivative_parts(current: np.ndarray, rate: np.ndarray, out: np.ndarray, exp_arg: np.ndarray,  # noqa: PLR0917
                     one: float, sigma: float, rate_at_sigma: float, scale: float, floor: float,
                     inv_sigma: float) -> None:
    """The above-threshold derivative into ``out`` (0 below), and ``j / sigma`` where the decay applies
    (-inf elsewhere, so NumPy's exp gives exactly 0 there and no subnormal). NaN in, NaN out."""
    for i in range(current.size):
        j = current[i] - one
        jc = j if math.isnan(j) else max(j, sigma)
        r = rate[i] if math.isnan(rate[i]) else max(rate[i], rate_at_sigma)
        held = r * r
        held = held * scale
        held = held / (jc * (jc + one))
        if j < 0.0:
            out[i] = held * 0.0  # as NumPy's masked multiply: 0, or NaN from a non-finite held value
            exp_arg[i] = j * inv_sigma if j >= floor else -np.inf
        else:
            out[i] = held
            exp_arg[i] = -np.inf


@kernel
def add_decay(out: np.ndarray, decay: np.ndarray, at_sigma: float) -> None:
    """``out += at_sigma * exp(j / sigma)`` (``decay`` holds the exp, 0 where it does not apply)."""
    for i in range(out.size):
        out[i] = out[i] + decay[i] * at_sigma


@kernel
def adam_step(grad: np.ndarray, m: np.ndarray, v: np.ndarray, delta: np.ndarray,  # noqa: PLR0917
              one_minus_beta1: float, beta1: float, one_minus_beta2: float, beta2: float, floor: float,
              eps: float, neg_step: float) -> None:
    """Adam's moments and step for every synapse, in one pass (see ``rules.apply_local_rule``)."""
    for i in range(grad.size):
        g = grad[i]
        v[i] = v[i] * beta2 + (g * one_minus_beta2) * g
        v[i] = max(v[i], floor)
        m[i] = m[i] * beta1 + g * one_minus_beta1
        ratio = m[i] / (np.sqrt(v[i]) + eps)
        delta[i] = ratio * neg_step


@kernel
def rank1_update(weights: np.ndarray, bias: np.ndarray, error: np.ndarray, pre: np.ndarray, neg_rate: float) -> None:
    """``W += outer(error * neg_rate, pre)`` and ``b += error * neg_rate`` (a bias: weights from a constant 1) in one
    pass, rounding as the NumPy steps do; ``bias`` may be empty (a matrix without one)."""
    rows, cols = weights.shape
    for i in range(rows):
        scaled = error[i] * neg_rate
        if scaled == 0.0:
            continue  # adds +0.0 (or -0.0) to every weight: no change
        row = weights[i]
        for j in range(cols):
            row[j] = row[j] + scaled * pre[j]
        if bias.size:
            bias[i] = bias[i] + scaled * 1.0


@kernel
def rank1_update_anchored(weights: np.ndarray, bias: np.ndarray, error: np.ndarray, pre: np.ndarray,  # noqa: PLR0917
                          neg_rate: float, reference: np.ndarray, bias_reference: np.ndarray, neg_pull: float) -> None:
    """:func:`rank1_update` plus ``neg_pull * (W - reference)`` (and the bias's), rounding as the NumPy steps do."""
    rows, cols = weights.shape
    for i in range(rows):
        scaled = error[i] * neg_rate
        row, ref = weights[i], reference[i]
        for j in range(cols):
            row[j] = row[j] + (scaled * pre[j] + (row[j] - ref[j]) * neg_pull)
        if bias.size:
            bias[i] = bias[i] + (scaled * 1.0 + (bias[i] - bias_reference[i]) * neg_pull)


@kernel
def backward_update(weights: np.ndarray, bias: np.ndarray, update_error: np.ndarray, pre: np.ndarray,  # noqa: PLR0917
                    neg_rate: float, path: np.ndarray, back_error: np.ndarray, back: np.ndarray, mirror: bool) -> None:
    """One pass over a layer: ``back = back_error @ path`` with the path's values from before this step, and
    ``weights += outer(update_error * neg_rate, pre)``, ``bias += update_error * neg_rate`` (``path`` too, when it
    mirrors the weights).

    ``path`` is the matrix errors go back through: the weights themselves (backprop) or a feedback matrix; each
    row is read once for both the error and the update (the inner loops over a row that is still in cache
    vectorise, where one loop with both stores would not).
    """
    rows, cols = weights.shape
    back[:] = 0.0
    for i in range(rows):
        carried = back_error[i]
        scaled = update_error[i] * neg_rate
        path_row = path[i]
        for j in range(cols):
            back[j] += carried * path_row[j]
        if scaled != 0.0:
            row = weights[i]
            for j in range(cols):
                row[j] = row[j] + scaled * pre[j]
            bias[i] = bias[i] + scaled * 1.0
            if mirror:
                for j in range(cols):
                    path_row[j] = path_row[j] + scaled * pre[j]


@kernel
def backward_update_anchored(weights: np.ndarray, bias: np.ndarray, update_error: np.ndarray,  # noqa: PLR0917
                             pre: np.ndarray, neg_rate: float, path: np.ndarray, back_error: np.ndarray,
                             back: np.ndarray, mirror: bool, reference: np.ndarray, bias_reference: np.ndarray,
                             path_reference: np.ndarray, neg_pull: float) -> None:
    """:func:`backward_update` on a step that also pulls every updated synapse toward its reference."""
    rows, cols = weights.shape
    back[:] = 0.0
    for i in range(rows):
        carried = back_error[i]
        scaled = update_error[i] * neg_rate
        path_row, row, ref = path[i], weights[i], reference[i]
        for j in range(cols):
            back[j] += carried * path_row[j]
        for j in range(cols):
            row[j] = row[j] + (scaled * pre[j] + (row[j] - ref[j]) * neg_pull)
        bias[i] = bias[i] + (scaled * 1.0 + (bias[i] - bias_reference[i]) * neg_pull)
        if mirror:
            path_ref = path_reference[i]
            for j in range(cols):
                path_row[j] = path_row[j] + (scaled * pre[j] + (path_row[j] - path_ref[j]) * neg_pull)


@kernel
def lif_voltage_argument(refractory: np.ndarray, out: np.ndarray, dt: float, tau_rc: float) -> None:
    """Refractory times count down by ``dt``; ``out = -clip(dt - refractory, 0, dt) / tau_rc`` (for NumPy's expm1)."""
    for i in range(refractory.size):
        refractory[i] -= dt
        delta_t = min(max(dt - refractory[i], 0.0), dt)
        out[i] = -delta_t / tau_rc


@kernel
def lif_integrate(current: np.ndarray, voltage: np.ndarray, expm1: np.ndarray, out: np.ndarray,  # noqa: PLR0917
                  spiked: np.ndarray, spike_argument: np.ndarray, spike: float) -> int:
    """``v -= (J - v) expm1``; neurons over threshold emit ``spike`` (others 0) and are listed in ``spiked``, their
    ``-(v - 1) / (J - 1)`` in ``spike_argument`` (for NumPy's log1p); returns how many spiked."""
    count = 0
    for i in range(current.size):
        voltage[i] -= (current[i] - voltage[i]) * expm1[i]
        if voltage[i] > 1.0:
            out[i] = spike
            spiked[count] = i
            spike_argument[count] = -(voltage[i] - 1.0) / (current[i] - 1.0)
            count += 1
        else:
            out[i] = 0.0
    return count


@kernel
def lif_reset(voltage: np.ndarray, refractory: np.ndarray, spiked: np.ndarray, log1p: np.ndarray,  # noqa: PLR0917
              count: int, dt: float, tau_rc: float, tau_ref: float, min_voltage: float) -> None:
    """Voltages below ``min_voltage`` rise to it; spiking neurons reset to 0, refractory from their spike time."""
    for i in range(voltage.size):
        voltage[i] = max(voltage[i], min_voltage)
    for k in range(count):
        i = spiked[k]
        voltage[i] = 0.0
        refractory[i] = tau_ref + (dt + tau_rc * log1p[k])
