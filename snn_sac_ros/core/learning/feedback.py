"""How errors reach a LIF network's hidden layers, and how a critic forms its action gradient dQ/da.

A layered network ``x -> J_0 = W_0 x + b_0 -> h_0 = r(J_0) -> ... -> y = W_{L-1} h_{L-2} + b_{L-1}`` learns
every connection by the local rule ``dW_l = -eta e_l h_{l-1}^T`` (:mod:`.rules`). What differs between the
modes is only where the post error ``e_l`` of a hidden layer comes from, and what it reads on the way:

* ``exact``: ``e_{l-1} = (e_l W_l) r'(J_{l-1})``, the transposed forward weights: backpropagation, which
  needs every hidden synapse to know the forward weights of the layer above (weight transport);
* ``random`` paths (feedback alignment): a fixed random ``B_l`` in place of ``W_l``;
* ``direct`` (direct feedback alignment): ``e_l = (e_out D_l) r'(J_l)``, the output error straight to each
  hidden layer through a fixed random ``D_l``;
* ``learned`` (Kolen-Pollack): ``B_l`` starts random and learns by the very update of ``W_l`` (the same pre
  activity and post error meet at the feedback synapse), both decaying at the same rate, so
  ``W_l - B_l`` shrinks by that rate every update and ``B_l`` converges to ``W_l`` without reading it;
* ``frozen``: the hidden layers do not learn (fixed random encoders; only the output layer, the decoders).

A critic's action gradient ``dQ/da`` is its input gradient at the action columns: through the transposed
forward weights (``transpose``), or through its own feedback path and an input feedback matrix ``C`` that is
random (``random``) or learned like ``W_0``'s action columns (``learned``). The functions take one batch
(``(batch, n)`` arrays; one online sample is a batch of one), so the replay trainer and the Nengo operators
compute the same numbers.
"""

from __future__ import annotations

import numpy as np

from snn_sac_ros.core.learning.lif import LIFParams, lif_rate_derivative
from snn_sac_ros.core.learning.modes import FEEDBACK_MODES, FeedbackMode, feedback_mode

__all__ = ["FEEDBACK_MODES", "FeedbackMode", "derivatives", "feedback_mode", "hidden_errors", "send_back"]


def send_back(error: np.ndarray, path: np.ndarray, derivative: np.ndarray) -> np.ndarray:
    """The error at a hidden layer's neurons from an error further up: ``(e path) * r'(J)``.

    ``path`` has the shape ``(n_up, n_hidden)`` of the forward matrix into the layer above (or of a direct
    matrix from the output); ``derivative`` is the layer's bounded LIF derivative (:func:`derivatives`).
    """
    out = error @ path
    out *= derivative
    return out


def derivatives(currents: list[np.ndarray], lif: LIFParams, rates: list[np.ndarray] | None = None
                ) -> list[np.ndarray]:
    """The bounded LIF derivative of every hidden layer (``rates``, if kept, only save a logarithm each)."""
    rates = rates if rates is not None else [None] * len(currents)
    return [lif_rate_derivative(j, lif, r) for j, r in zip(currents, rates)]


def hidden_errors(hidden: str, error_out: np.ndarray, paths: list[np.ndarray | None],
                  derivative: list[np.ndarray] | None) -> list[np.ndarray | None]:
    """The post error of every layer, input layer first, the last being ``error_out``.

    ``paths[l]`` carries errors to hidden layer ``l``: for ``transpose``, ``random`` and ``learned`` it has the
    shape of the forward matrix into layer ``l + 1`` (``W_{l+1}`` itself for ``transpose``); for ``direct`` the
    shape ``(n_out, n_l)``. ``derivative[l]`` is hidden layer ``l``'s. ``frozen``: hidden layers get no error
    (None), and need no derivative.
    """
    if hidden == "frozen":
        return [None] * len(paths) + [error_out]
    if hidden == "direct":
        return [send_back(error_out, p, d) for p, d in zip(paths, derivative)] + [error_out]
    errors = [error_out]
    for i in range(len(paths) - 1, -1, -1):
        errors.append(send_back(errors[-1], paths[i], derivative[i]))
    return errors[::-1]
