"""Reward-modulated weight perturbation: each synapse tries ``w + sigma xi``, then ``w - sigma xi``, and steps
against the cost difference of the two trials (the math of ``PerturbationDelta``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PerturbationState:
    """Per-synapse state of the weight-perturbation rule, and the trial bookkeeping its synapses share.

    ``mean`` is the learned weight, ``xi`` the synapse's current perturbation direction (unit normal),
    ``trial`` holds ``[the running trial's cost so far (see :func:`add_trial_cost`), its ticks, the cost of
    the + trial]``, ``phase`` is 0 while the weights are ``mean + sigma xi`` and 1 while they are
    ``mean - sigma xi``, ``spread`` the running mean square of the two trials' cost difference (0 until the
    first pair ends).
    """

    mean: np.ndarray
    xi: np.ndarray
    trial: np.ndarray
    phase: np.ndarray
    spread: np.ndarray

    @classmethod
    def start(cls, weights: np.ndarray, rng: np.random.Generator) -> PerturbationState:
        w = np.array(weights, dtype=float)
        return cls(w, rng.standard_normal(w.shape), np.zeros(3), np.zeros(1), np.zeros(1))

    def weights(self, sigma: np.ndarray | float) -> np.ndarray:
        """The weights the synapses use in the running trial: ``mean +- sigma xi``."""
        return self.mean + (1.0 - 2.0 * self.phase[0]) * np.multiply(sigma, self.xi)


SPREAD_DECAY = 0.9  # memory of the cost-difference scale: about ten trial pairs


def add_trial_cost(state: PerturbationState, cost: float, recency: float) -> None:
    """Add one tick's cost to the running trial.

    ``recency`` 0: the trial's cost is the mean over its ticks. ``recency`` in (0, 1]: the cost is low-pass
    filtered with that weight per tick (``dt / tau``), so a trial is scored by its last ``tau`` seconds: for a
    reach, how well the arm settles on the target rather than how fast it left the start.
    """
    if recency <= 0.0:
        state.trial[0] += cost
    elif state.trial[1] == 0.0:
        state.trial[0] = cost
    else:
        state.trial[0] += recency * (cost - state.trial[0])
    state.trial[1] += 1.0


def end_perturbation_trial(state: PerturbationState, sigma: np.ndarray | float, learning_rate: float, *,
                           low: np.ndarray | float, high: np.ndarray | float, rng: np.random.Generator,
                           filtered: bool = False) -> bool:
    """Close the running trial; after the second of a pair, step every weight against its cost difference.

    .. math:: \\Delta \\bar w = -\\eta \\, \\sigma \\, \\xi \\, (c_+ - c_-) / \\sqrt{\\overline{(c_+ - c_-)^2}}

    Antithetic weight perturbation (a two-point estimate of the cost gradient, like evolution strategies):
    each synapse needs only its own ``xi`` and the one global number ``c_+ - c_-``, so the rule is local
    with a third, modulatory factor. Dividing by the running scale of the difference makes the step size
    independent of the cost's units. ``filtered``: the trial's cost was low-pass filtered (recency > 0 in
    :func:`add_trial_cost`), else summed. Trials without a tick are ignored. Returns True if the weights changed.
    """
    total, ticks = state.trial[0], state.trial[1]
    state.trial[:2] = 0.0
    if ticks <= 0:
        return False
    cost = total if filtered else total / ticks
    if state.phase[0] == 0.0:
        state.trial[2] = cost
        state.phase[0] = 1.0
        return True
    diff = state.trial[2] - cost
    state.spread[0] = diff * diff if state.spread[0] == 0.0 else (
        SPREAD_DECAY * state.spread[0] + (1.0 - SPREAD_DECAY) * diff * diff)
    if state.spread[0] > 0.0:
        state.mean -= learning_rate * np.multiply(sigma, state.xi) * (diff / np.sqrt(state.spread[0]))
        np.clip(state.mean, low, high, out=state.mean)
    state.xi[...] = rng.standard_normal(state.xi.shape)
    state.phase[0] = 0.0
    return True
