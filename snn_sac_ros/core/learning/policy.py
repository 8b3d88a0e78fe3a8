"""The actor's squashed Gaussian: its action, log-probability and the error at the actor's output (SAC's policy).

Shared by the replay trainer (batches) and the Nengo policy head (one sample, a batch of one).
"""

from __future__ import annotations

import numpy as np

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
LOG_2PI = float(np.log(2.0 * np.pi))


def squash_log_std(raw: np.ndarray) -> np.ndarray:
    """The log-std from the actor's raw output, squashed into [LOG_STD_MIN, LOG_STD_MAX] as in CleanRL."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (np.tanh(raw) + 1.0)


def gaussian_head(out: np.ndarray, act_dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, log-std (squashed into [LOG_STD_MIN, LOG_STD_MAX] as in CleanRL), and d log-std / d raw."""
    mean, t = out[:, :act_dim], np.tanh(out[:, act_dim:])
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (t + 1.0)
    return mean, log_std, 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (1.0 - t * t)


def log_prob(a: np.ndarray, log_std: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The log-probability of the squashed sample ``a = tanh(mean + std eps)`` (tanh-corrected), over the last axis."""
    return np.sum(-0.5 * eps * eps - log_std - 0.5 * LOG_2PI - np.log(1.0 - a * a + 1e-6), axis=-1, keepdims=True)


def sample_action(mean: np.ndarray, log_std: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reparameterised sample ``a = tanh(mean + std * eps)`` and its log-probability (tanh-corrected)."""
    a = np.tanh(mean + np.exp(log_std) * eps)
    return a, log_prob(a, log_std, eps)


def mean_error(a: np.ndarray, dq_da: np.ndarray, *, alpha: float) -> np.ndarray:
    """d(alpha log pi - Q) / du at ``u = mean + std eps``, ``a = tanh(u)``: the error at the actor's mean.

    d log pi / du = 2a(1-a^2)/(1-a^2+1e-6), dQ/du = dQ/da (1 - a^2).
    """
    one_minus = 1.0 - a * a
    dlogp_du = 2.0 * a * one_minus / (one_minus + 1e-6)
    dq_du = dq_da * one_minus
    return alpha * dlogp_du - dq_du


def actor_output_error(a: np.ndarray, log_std: np.ndarray, dlogstd_draw: np.ndarray, eps: np.ndarray,
                       dq_da: np.ndarray, *, alpha: float) -> np.ndarray:
    """d(alpha log pi - Q) / d(actor output), per sample, through the reparameterised sample.

    d/dmean = d/du (:func:`mean_error`) and d/dlog_std = -alpha [entropy] + d/du * std * eps.
    """
    d_u = mean_error(a, dq_da, alpha=alpha)
    d_logstd = -alpha + d_u * np.exp(log_std) * eps
    return np.concatenate([d_u, d_logstd * dlogstd_draw], axis=1)
