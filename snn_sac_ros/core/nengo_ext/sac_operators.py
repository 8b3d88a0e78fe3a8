"""Operators of the SAC head: the action, the TD error and the actor's error, computed inside the network, and
weight perturbation (the joint damping's rule).

Each declares its data flow like Nengo's own operators; those that only serve learning return at once while
learning is off, so that then only the actor and :class:`SimPolicyHead` do work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nengo.builder import Operator, Signal

from snn_sac_ros.core.learning.perturbation import PerturbationState, add_trial_cost, end_perturbation_trial
from snn_sac_ros.core.learning.policy import (
    actor_output_error,
    gaussian_head,
    log_prob,
    mean_error,
    sample_action,
    squash_log_std,
)
from snn_sac_ros.core.nengo_ext.learning_rules import PerturbationDelta
from snn_sac_ros.core.nengo_ext.operators import FusedOperator


@dataclass
class HeadSignals:
    """The SAC head's signals: the agent's inputs, the action it takes, the errors it computes."""

    observation: Signal
    learning: Signal
    reward: Signal
    has_reward: Signal
    actor_output: Signal
    damping_weights: Signal
    action: Signal
    eps: Signal
    logp: Signal
    episode_steps: Signal
    q: list[Signal] = field(default_factory=list)
    td: Signal | None = None
    previous_q: Signal | None = None
    has_previous_q: Signal | None = None
    td_updates: Signal | None = None
    action_gradients: list[Signal] = field(default_factory=list)
    actor_error: Signal | None = None


class SimPolicyHead(FusedOperator):
    """The actor's squashed Gaussian as the action: ``clip(tanh(mean + std eps) + damping, -1, 1)`` and ``log pi``.

    ``eps`` is 0 (the deterministic ``tanh(mean)``) unless the head explores while learning: then a new sample
    every ``hold`` steps (one trained control period). ``damping`` is the learned joint damping, ``D dq_obs``.

    Notes
    -----
    1. sets ``[action, eps, logp]``
    2. incs ``[]``
    3. reads ``[actor output, damping weights, observation, learning]``
    4. updates ``[episode steps]``
    """

    def __init__(self, head: HeadSignals, velocity_columns: list[int], *, explore: bool, hold: int,
                 rng: np.random.Generator, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.velocity_columns, self.explore, self.hold, self.rng = np.array(velocity_columns), explore, hold, rng
        for kind, names in (("sets", ("action", "eps", "logp")),
                            ("reads", ("actor_output", "damping_weights", "observation", "learning")),
                            ("updates", ("episode_steps",))):
            for name in names:
                self.declare(kind, name, [getattr(head, name)])

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        out, damping, obs, learning = (self.one(signals, n) for n in ("actor_output", "damping_weights",
                                                                       "observation", "learning"))
        action, eps, logp, steps = (self.one(signals, n) for n in ("action", "eps", "logp", "episode_steps"))
        columns, n, hold, explore, sample = self.velocity_columns, action.size, self.hold, self.explore, self.rng

        zeros = np.zeros(n)

        def step_simpolicyhead() -> None:
            if explore:
                if not learning[0]:
                    eps[...] = 0.0
                elif steps[0] % hold == 0:
                    eps[...] = sample.standard_normal(n)
            if explore and learning[0]:
                mean, log_std, _ = gaussian_head(out[None], n)
                a, log_prob_ = sample_action(mean, log_std, eps[None])
                a, logp[...] = a[0], log_prob_[0]
            else:  # tanh(mean + std * 0) is tanh(mean): no exp, and log pi only where learning reads it
                a = np.tanh(out[:n])
                if learning[0]:
                    logp[...] = log_prob(a, squash_log_std(out[n:]), zeros)
            np.clip(a + np.dot(damping, obs[columns]), -1.0, 1.0, out=action)
            steps[...] += 1

        return step_simpolicyhead


class SimTDError(FusedOperator):
    """Per-step soft TD error of each critic: ``Q_prev - (r k + gamma_step (min Q - alpha log pi k))``.

    ``k`` is the share of a trained control step that one simulator step stands for (``dt * control_hz``), so the
    discount and the reward are per step; the critics bootstrap from themselves. No error without a reward, a
    previous value (the start of an episode) or learning.

    Notes
    -----
    1. sets ``[td]``
    2. incs ``[]``
    3. reads ``[q..., logp, reward, has reward, learning]``
    4. updates ``[previous q, has previous q, td updates]``
    """

    def __init__(self, head: HeadSignals, *, alpha: float, gamma_step: float, step_fraction: float,
                 tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.alpha, self.gamma_step, self.step_fraction = alpha, gamma_step, step_fraction
        self.declare("sets", "td", [head.td])
        self.declare("reads", "q", head.q)
        for name in ("logp", "reward", "has_reward", "learning"):
            self.declare("reads", name, [getattr(head, name)])
        for name in ("previous_q", "has_previous_q", "td_updates"):
            self.declare("updates", name, [getattr(head, name)])

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        q1, q2 = self.group(signals, "q")
        logp, reward, has_reward, learning = (self.one(signals, n) for n in ("logp", "reward", "has_reward",
                                                                              "learning"))
        td, previous, has_previous, count = (self.one(signals, n) for n in ("td", "previous_q", "has_previous_q",
                                                                             "td_updates"))
        alpha, gamma, k = self.alpha, self.gamma_step, self.step_fraction

        def step_simtderror() -> None:
            if not learning[0]:
                td[...] = 0.0
                return
            if has_previous[0] and has_reward[0]:
                target = float(reward[0]) * k + gamma * (min(q1[0], q2[0]) - alpha * logp[0] * k)
                np.subtract(previous, target, out=td)
                count[...] += 1
            else:
                td[...] = 0.0
            previous[0], previous[1] = q1[0], q2[0]
            has_previous[...] = 1.0

        return step_simtderror


class SimActorError(FusedOperator):
    """``d(alpha log pi - min Q) / d(actor output)`` for the action just taken (0 while not learning).

    Through the reparameterised sample, with the action gradient of the critic whose value is the smaller. Acting
    with ``tanh(mean)`` (no exploration) it is a deterministic-policy-gradient step on the mean only: an entropy push
    on an unused log-std would only drift the shared hidden layers.

    Notes
    -----
    1. sets ``[actor error]``
    2. incs ``[]``
    3. reads ``[actor output, action, eps, action gradients..., q..., learning]``
    4. updates ``[]``
    """

    def __init__(self, head: HeadSignals, *, alpha: float, explore: bool, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.alpha, self.explore = alpha, explore
        self.declare("sets", "actor_error", [head.actor_error])
        for name in ("actor_output", "action", "eps", "learning"):
            self.declare("reads", name, [getattr(head, name)])
        self.declare("reads", "action_gradients", head.action_gradients)
        self.declare("reads", "q", head.q)

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        out, action, eps, learning = (self.one(signals, n) for n in ("actor_output", "action", "eps", "learning"))
        dq1, dq2 = self.group(signals, "action_gradients")
        q1, q2 = self.group(signals, "q")
        error = self.one(signals, "actor_error")
        n, alpha, explore = action.size, self.alpha, self.explore

        def step_simactorerror() -> None:
            if not learning[0]:
                error[...] = 0.0
                return
            dq = dq1 if q1[0] <= q2[0] else dq2
            if explore:
                _, log_std, dlogstd = gaussian_head(out[None], n)
                error[...] = actor_output_error(action[None], log_std, dlogstd, eps[None], dq[None], alpha=alpha)[0]
            else:  # acting with tanh(mean): only the mean's error (the log-std's would only drift the hidden layers)
                error[:n] = mean_error(action, dq, alpha=alpha)

        return step_simactorerror


class SimPerturbationDelta(Operator):
    """Weight perturbation trials of one connection (:func:`end_perturbation_trial`), driven by its modulatory input.

    Every tick with learning on it adds the tick's cost to the running trial; on a trial's last tick it
    closes the trial and moves the weights to the next trial's ``mean +- sigma xi``, clipped to the rule's
    bounds (a perturbed damping gain never turns negative). When learning turns
    off it puts the weights back to their means (no perturbation is left in a policy that stops learning).

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[modulation, weights]``
    4. updates ``[delta, mean, xi, trial, phase, spread]``
    """

    def __init__(self, modulation: Signal, weights: Signal, delta: Signal, state: list[Signal],  # noqa: PLR0917
                 rule_type: PerturbationDelta, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.rule_type = rule_type
        self.sets, self.incs = [], []
        self.reads = [modulation, weights]
        self.updates = [delta, *state]

    def make_step(self, signals: object, dt: float, rng: object) -> object:
        modulation, weights = (signals[s] for s in self.reads)
        delta = signals[self.updates[0]]
        state = PerturbationState(*(signals[s] for s in self.updates[1:]))
        r = self.rule_type
        sigma = np.asarray(r.sigma, dtype=float)
        low, high = np.asarray(r.low, dtype=float), np.asarray(r.high, dtype=float)
        perturbation_rng = np.random.default_rng(r.seed)
        recency = min(1.0, dt / r.cost_tau) if r.cost_tau > 0 else 0.0
        was_on, dirty = [False], [False]

        def move_to(target: np.ndarray) -> None:
            np.subtract(target, weights, out=delta)
            dirty[0] = True

        def start_trial() -> None:  # the running trial's perturbed weights, within the bounds
            move_to(np.clip(state.weights(sigma), low, high))

        def step_simperturbationdelta() -> None:
            if dirty[0]:
                delta[...] = 0.0
                dirty[0] = False
            on = modulation[2] > 0.5
            if on:
                if not was_on[0]:  # (re)start: a fresh + trial
                    state.trial[:2] = 0.0
                    state.phase[0] = 0.0
                    start_trial()
                add_trial_cost(state, float(modulation[0]), recency)
                if modulation[1] > 0.5 and end_perturbation_trial(state, sigma, r.learning_rate, low=low, high=high,
                                                                  rng=perturbation_rng, filtered=recency > 0):
                    start_trial()
            elif was_on[0]:
                move_to(state.mean)
            was_on[0] = on

        return step_simperturbationdelta
