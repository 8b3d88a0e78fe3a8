"""The LIF rate function and its bounded derivative, as ``nengo.LIFRate`` computes the rate.

Training (replay, in rate mode) and deployment (Nengo, spiking or rate) use the same constants and the same
numbers: a batch of one here is what a Nengo operator computes for one simulator step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from snn_sac_ros.core.learning import kernels


@dataclass(frozen=True)
class LIFParams:
    """LIF constants: membrane and refractory time constants [s], output amplitude, smoothing.

    ``amplitude`` scales rates [Hz] into O(1) activities (0.01: 100 Hz -> 1.0), so the hidden layers
    behave like an MLP's units. ``sigma`` bounds the derivative: the exact LIF derivative is infinite at
    threshold, ours is held at its value ``sigma`` above threshold and decays over ``sigma`` below it.
    """

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    amplitude: float = 0.01
    sigma: float = 0.05

    def to_dict(self) -> dict:
        return {"tau_rc": self.tau_rc, "tau_ref": self.tau_ref, "amplitude": self.amplitude, "sigma": self.sigma}


SILENT_EXPONENT_FLOOR = -25.0
"""Below threshold the derivative ``exp(j / sigma)`` is exactly 0 past this exponent: letting exp underflow
instead passes through subnormal floats, which the CPU handles ~100x slower."""


def flat(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A 1-D contiguous view of an input (a copy only if it is strided or of another dtype)."""
    return np.ascontiguousarray(x, dtype=dtype).reshape(-1)


def flat_out(x: np.ndarray) -> np.ndarray:
    """A 1-D view of an array the kernels write into; a copy would silently drop the writes."""
    if not x.flags.c_contiguous:
        raise ValueError("the learning rule writes in place: its state and delta arrays must be contiguous")
    return x.reshape(-1)


def _float_array(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def lif_rate(current: np.ndarray, p: LIFParams) -> np.ndarray:
    """Steady-state LIF activity for input current ``J`` (threshold 1), as ``nengo.LIFRate`` computes it.

    .. math:: r(J) = a / (\\tau_{ref} + \\tau_{rc} \\log(1 + 1/(J - 1)))  for J > 1, else 0

    Three passes: a kernel, NumPy's log1p, a kernel.
    """
    current = _float_array(current)
    t = current.dtype.type
    out = np.empty(current.shape, current.dtype)
    out_flat = out.reshape(-1)
    kernels.rate_log1p_argument(flat(current, current.dtype), out_flat, t(1.0), t(1e-30))
    np.log1p(out_flat, out=out_flat)
    kernels.rate_from_log1p(out_flat, t(p.amplitude), t(p.tau_ref), t(p.tau_rc))
    return out


def lif_rate_derivative(current: np.ndarray, p: LIFParams, rate: np.ndarray | None = None) -> np.ndarray:
    """Bounded d rate / d J of the LIF rate function.

    Above threshold it is the exact derivative ``tau_rc r^2 / (a j (j + 1))`` with ``j = J - 1``, held at its
    value at ``j = sigma`` closer to threshold (where the exact one goes to infinity); below threshold it
    decays as ``exp(j / sigma)`` (to exactly 0 past ``exp(-25)``), so silent neurons still receive a small
    error and can come back.
    ``rate``, when the caller has it (``lif_rate(current)``, kept from the forward pass), saves the
    logarithm: the rate rises with ``J``, so the rate at ``max(j, sigma)`` is ``max(rate, rate at sigma)``.
    """
    current = _float_array(current)
    dtype, t = current.dtype, current.dtype.type
    at_sigma, scale = _constants(p)
    flat_current = flat(current, dtype)
    flat_rate = lif_rate(flat_current, p) if rate is None else flat(rate, dtype)
    out = np.empty(current.shape, dtype)
    decay = np.empty(flat_current.size, dtype)
    kernels.derivative_parts(flat_current, flat_rate, out.reshape(-1), decay, t(1.0), t(p.sigma),
                             _rate_at_sigma(p, dtype), t(scale), t(SILENT_EXPONENT_FLOOR * p.sigma), t(1.0 / p.sigma))
    np.exp(decay, out=decay)
    kernels.add_decay(out.reshape(-1), decay, t(at_sigma))
    return out


class LIFDerivative:
    """:func:`lif_rate_derivative` of one layer's current, with its constants and buffers made once (an operator
    calls it every step): the same kernels, the same numbers."""

    def __init__(self, size: int, p: LIFParams) -> None:
        self.p = p
        self.at_sigma, self.scale = _constants(p)
        self.rate_at_sigma = _rate_at_sigma(p, np.dtype(np.float64))
        self.floor, self.inv_sigma = SILENT_EXPONENT_FLOOR * p.sigma, 1.0 / p.sigma
        self._rate, self._decay = np.empty(size), np.empty(size)

    def __call__(self, current: np.ndarray, out: np.ndarray, rate: np.ndarray | None = None) -> np.ndarray:
        """``out`` = the derivative at ``current`` (float64, 1-D); ``rate`` (the LIF rate there, if known) saves a
        logarithm."""
        p = self.p
        if rate is None:
            rate = self._rate
            kernels.rate_log1p_argument(current, rate, 1.0, 1e-30)
            np.log1p(rate, out=rate)
            kernels.rate_from_log1p(rate, p.amplitude, p.tau_ref, p.tau_rc)
        kernels.derivative_parts(current, rate, out, self._decay, 1.0, p.sigma, self.rate_at_sigma, self.scale,
                                 self.floor, self.inv_sigma)
        np.exp(self._decay, out=self._decay)
        kernels.add_decay(out, self._decay, self.at_sigma)
        return out


def _held_rate(jc: np.ndarray, p: LIFParams) -> np.ndarray:
    """The LIF rate at ``jc = J - 1 > 0``, in NumPy (for the one constant the kernels need)."""
    out = np.log1p(1.0 / jc)
    out *= p.tau_rc
    out += p.tau_ref
    np.divide(p.amplitude, out, out=out)
    return out


@functools.lru_cache(maxsize=16)
def _rate_at_sigma(p: LIFParams, dtype: np.dtype) -> np.ndarray:
    return _held_rate(np.full(1, p.sigma, dtype), p)[0]  # the number lif_rate gives at J - 1 = sigma


@functools.lru_cache(maxsize=16)
def _constants(p: LIFParams) -> tuple[float, float]:
    return _derivative_at(p.sigma, p), p.tau_rc / p.amplitude


def _derivative_at(j: float, p: LIFParams) -> float:
    r = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / j))
    return float(p.tau_rc / p.amplitude * r * r / (j * (j + 1.0)))


class LIFSpikes:
    """``nengo.LIF.step`` for one layer in three fused passes, the same numbers bit for bit.

    Nengo's step is a dozen NumPy expressions with masks; here the element-wise work is numba kernels and the two
    transcendental functions are NumPy's ``expm1`` and ``log1p`` between them (as in :func:`lif_rate`), so that
    every operation and every rounding is Nengo's own. Buffers are allocated once per layer.
    """

    def __init__(self, size: int, p: LIFParams, dt: float, min_voltage: float = 0.0) -> None:
        self.p, self.dt, self.min_voltage = p, dt, min_voltage
        self.spike = p.amplitude / dt
        self._argument, self._spiked = np.empty(size), np.empty(size, np.int64)
        self._spike_argument = np.empty(size)

    def step(self, current: np.ndarray, out: np.ndarray, voltage: np.ndarray, refractory: np.ndarray) -> None:
        p, dt, argument = self.p, self.dt, self._argument
        kernels.lif_voltage_argument(refractory, argument, dt, p.tau_rc)
        np.expm1(argument, out=argument)
        count = kernels.lif_integrate(current, voltage, argument, out, self._spiked, self._spike_argument,
                                      self.spike)
        log1p = self._spike_argument[:count]
        np.log1p(log1p, out=log1p)
        kernels.lif_reset(voltage, refractory, self._spiked, log1p, count, dt, p.tau_rc, p.tau_ref, self.min_voltage)
