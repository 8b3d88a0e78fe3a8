"""The floor of one control tick: the online agent's arithmetic as one numba function.

:class:`~snn_sac_ros.core.agent.online.OnlineAgent` runs one ``nengo.Simulator`` step per tick, a dozen fused
operators each called from Python. :class:`FloorAgent` does the same tick's work in one compiled call, from the
same checkpoint arrays: the spiking actor (Nengo's LIF step, its synapses, spikes sent only along the columns of
the neurons that spiked), the policy head, the twin LIF-rate critics, the per-tick TD error, each critic's sweep
(its errors and updates, the action gradient), the actor error and the actor's sweep, with the same learning
kernels (:mod:`snn_sac_ros.core.learning.kernels`) the Nengo operators call; the anchor every 16th learning step.
It is the yardstick of ``snn-sac-ros bench realtime`` (Nengo step / floor): not wired to the controller, it saves
nothing, and its transcendental functions are the C library's where the operators use NumPy's, so its numbers
agree with the agent's to rounding, not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from snn_sac_ros.core.agent.checkpoint import Checkpoint
from snn_sac_ros.core.agent.sac import SACConfig
from snn_sac_ros.core.learning import kernels
from snn_sac_ros.core.learning.lif import LIFParams, _constants, _rate_at_sigma
from snn_sac_ros.core.learning.modes import feedback_mode
from snn_sac_ros.core.learning.policy import LOG_2PI, LOG_STD_MAX, LOG_STD_MIN
from snn_sac_ros.core.nengo_ext.networks import Layers
from snn_sac_ros.core.nengo_ext.operators import ANCHOR_EVERY

_HALF_RANGE = 0.5 * (LOG_STD_MAX - LOG_STD_MIN)


@kernels.kernel
def _lif_spikes(dt: float, current: np.ndarray, out: np.ndarray, voltage: np.ndarray,  # noqa: PLR0917
                refractory: np.ndarray, tau_rc: float, tau_ref: float, amplitude: float) -> None:
    """``nengo.LIF.step`` for one layer, in one pass."""
    for i in range(current.size):
        refractory[i] -= dt
        delta_t = min(max(dt - refractory[i], 0.0), dt)
        voltage[i] -= (current[i] - voltage[i]) * math.expm1(-delta_t / tau_rc)
        if voltage[i] > 1.0:
            out[i] = amplitude / dt
            refractory[i] = tau_ref + dt + tau_rc * math.log1p(-(voltage[i] - 1.0) / (current[i] - 1.0))
            voltage[i] = 0.0
        else:
            out[i] = 0.0
            voltage[i] = max(voltage[i], 0.0)


@kernels.kernel
def _rate(current: np.ndarray, out: np.ndarray, lif: tuple) -> None:
    """The LIF rate (the kernels ``lif_rate`` is built from, with the C library's log1p between them)."""
    tau_rc, tau_ref, amplitude = lif[0], lif[1], lif[2]
    kernels.rate_log1p_argument(current, out, 1.0, 1e-30)
    for i in range(out.size):
        out[i] = math.log1p(out[i])
    kernels.rate_from_log1p(out, amplitude, tau_ref, tau_rc)


@kernels.kernel
def _derivative(current: np.ndarray, rate: np.ndarray, out: np.ndarray, scratch: np.ndarray, lif: tuple) -> None:
    """The bounded LIF derivative (the kernels ``lif_rate_derivative`` is built from, the C library's exp)."""
    sigma, rate_at_sigma, scale, floor, at_sigma = lif[3], lif[4], lif[5], lif[6], lif[7]
    kernels.derivative_parts(current, rate, out, scratch, 1.0, sigma, rate_at_sigma, scale, floor, 1.0 / sigma)
    for i in range(scratch.size):
        scratch[i] = math.exp(scratch[i])
    kernels.add_decay(out, scratch, at_sigma)


@kernels.kernel
def _sweep(weights: tuple, biases: tuple, paths: tuple, pre: tuple, error: np.ndarray, scale: float,  # noqa: PLR0917
           derivative: tuple, backs: tuple, neg_lr: float, mirror: bool, anchored: bool, references: tuple,
           bias_references: tuple, path_references: tuple, neg_pull: float) -> np.ndarray:
    """A network's learning sweep from the output layer down (``SimLIFLearn``): carries ``error`` down, updates
    every layer with ``scale`` times it; returns the first hidden layer's carried error."""
    carried = error
    for layer in range(len(weights) - 1, -1, -1):
        update = carried * scale
        if layer > 0:
            if anchored:
                kernels.backward_update_anchored(weights[layer], biases[layer], update, pre[layer], neg_lr,
                                                 paths[layer - 1], carried, backs[layer], mirror, references[layer],
                                                 bias_references[layer], path_references[layer - 1], neg_pull)
            else:
                kernels.backward_update(weights[layer], biases[layer], update, pre[layer], neg_lr, paths[layer - 1],
                                        carried, backs[layer], mirror)
            carried = backs[layer] * derivative[layer - 1]
        elif anchored:
            kernels.rank1_update_anchored(weights[0], biases[0], update, pre[0], neg_lr, references[0],
                                          bias_references[0], neg_pull)
        else:
            kernels.rank1_update(weights[0], biases[0], update, pre[0], neg_lr)
    return carried


class FloorAgent:
    """One tick of the online agent as one numba call: ``step(obs, reward) -> action``.

    Parameters mirror :class:`~snn_sac_ros.core.agent.online.OnlineAgent` (``dt``, ``synapse``, ``online_lr``,
    ``anchor_tau``, ``learning``, ``control_hz``); the network comes from ``checkpoint``. Feedback modes whose
    errors go down layer by layer (``exact``, ``fa``, ``kp``, ``fa-hidden`` without its separate dQ/da) are timed.
    """

    def __init__(self, checkpoint: Checkpoint, *, learning: bool = True, dt: float = 0.001, synapse: float = 0.005,
                 online_lr: float = 1e-5, anchor_tau: float = 30.0, control_hz: float | None = None) -> None:
        arrays, meta = checkpoint.arrays, checkpoint.metadata
        config = SACConfig.from_dict(meta["sac_config"])
        mode = feedback_mode(config.feedback)
        if mode.hidden not in ("transpose", "random", "learned"):
            raise ValueError(f"the floor times feedback that goes down layer by layer, not {mode.name!r}")
        self.obs_dim, self.act_dim = checkpoint.observation_contract.size, checkpoint.action_contract.size
        self.dt, self.learning, self.neg_lr = dt, learning, -online_lr
        control_hz = float(control_hz or checkpoint.control_hz)
        k = dt * control_hz
        self.head = (float(np.exp(arrays["log_alpha"][0])), config.gamma ** k, k)
        p: LIFParams = config.lif
        at_sigma, scale = _constants(p)
        self.lif = (p.tau_rc, p.tau_ref, p.amplitude, p.sigma, float(_rate_at_sigma(p, np.dtype(np.float64))),
                    scale, -25.0 * p.sigma, at_sigma)
        self.decay = float(np.exp(-dt / synapse))
        self.anchored, self.neg_pull = anchor_tau > 0, -ANCHOR_EVERY * dt / anchor_tau if anchor_tau > 0 else 0.0
        self.mirror = mode.learns_feedback
        self.transpose = mode.hidden == "transpose"
        self.nets = {name: self._network(Layers.from_arrays(arrays, name)) for name in ("actor", "q1", "q2")}
        columns = [checkpoint.observation_contract.layout().index(f"dq/{j}")
                   for j in checkpoint.action_contract.joint_names]
        self.velocity_columns = np.array(columns)
        self.damping = np.zeros((self.act_dim, self.act_dim))
        hidden = [b.size for b in self.nets["actor"]["b"][:-1]]
        self.voltage = tuple(np.random.default_rng(i).uniform(0, 1, n) for i, n in enumerate(hidden))
        self.refractory = tuple(np.zeros(n) for n in hidden)
        self.synapse = tuple(np.zeros(b.size) for b in self.nets["actor"]["b"][1:])
        self.pre = tuple(np.zeros(n) for n in hidden)
        self.previous_q, self.has_previous, self.learning_steps = np.zeros(2), False, [0, 0]
        self.action = np.zeros(self.act_dim)

    def _network(self, layers: Layers) -> dict:
        weights = tuple(np.array(w, np.float64) for w in layers.weights)
        paths = weights[1:] if self.transpose else tuple(np.array(m, np.float64) for m in layers.feedback)
        return {"W": weights, "b": tuple(np.array(b, np.float64) for b in layers.biases), "paths": paths,
                "ref": tuple(w.copy() for w in weights), "bref": tuple(np.array(b, np.float64) for b in layers.biases),
                "pref": tuple(m.copy() for m in paths), "J": tuple(np.zeros(b.size) for b in layers.biases[:-1]),
                "a": tuple(np.zeros(b.size) for b in layers.biases[:-1]),
                "d": tuple(np.zeros(b.size) for b in layers.biases[:-1]),
                "scratch": tuple(np.zeros(b.size) for b in layers.biases[:-1]),
                "back": tuple(np.zeros(w.shape[1]) for w in weights)}

    @property
    def n_neurons(self) -> int:
        """Neurons in total: actor plus both critics' hidden layers."""
        return sum(sum(b.size for b in net["b"][:-1]) for net in self.nets.values())

    def step(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        """Advance one tick with this observation; learn from ``reward`` when learning is on."""
        actor, q1, q2 = self.nets["actor"], self.nets["q1"], self.nets["q2"]
        # as in the operators, a network counts the steps on which its error was not zero, the critics' from their
        # first TD error
        anchored = np.zeros(2, dtype=np.bool_)
        if self.learning:
            self.learning_steps[0] += 1
            critics_learn = self.has_previous and reward is not None
            self.learning_steps[1] += critics_learn
            anchored[:] = self.anchored and [self.learning_steps[0] % ANCHOR_EVERY == 0,
                                             critics_learn and self.learning_steps[1] % ANCHOR_EVERY == 0]
        _tick(np.asarray(obs, np.float64), 0.0 if reward is None else float(reward), reward is not None,
                         self.learning, self.dt, self.lif, self.head, self.decay, self.neg_lr, self.mirror, anchored,
                         self.neg_pull, self.damping, self.velocity_columns, self.action,
                         self.voltage, self.refractory, self.synapse, self.pre, self.previous_q,
                         np.array([self.has_previous]),
                         *(net[key] for net in (actor, q1, q2)
                           for key in ("W", "b", "paths", "ref", "bref", "pref", "J", "a", "d", "scratch", "back")))
        self.has_previous = self.learning
        return self.action


@kernels.kernel
def _tick(obs: np.ndarray, reward: float, has_reward: bool, learning: bool, dt: float, lif: tuple,  # noqa: PLR0917
          head: tuple, decay: float, neg_lr: float, mirror: bool, anchored: np.ndarray, neg_pull: float,
          damping: np.ndarray, velocity_columns: np.ndarray, action: np.ndarray, voltage: tuple, refractory: tuple,
          synapse: tuple, pre: tuple, previous_q: np.ndarray, has_previous: np.ndarray,
          aw: tuple, ab: tuple, apaths: tuple, aref: tuple, abref: tuple, apref: tuple, aj: tuple, aa: tuple,
          ad: tuple, ascratch: tuple, aback: tuple,
          q1w: tuple, q1b: tuple, q1paths: tuple, q1ref: tuple, q1bref: tuple, q1pref: tuple, q1j: tuple,
          q1a: tuple, q1d: tuple, q1scratch: tuple, q1back: tuple,
          q2w: tuple, q2b: tuple, q2paths: tuple, q2ref: tuple, q2bref: tuple, q2pref: tuple, q2j: tuple,
          q2a: tuple, q2d: tuple, q2scratch: tuple, q2back: tuple) -> int:
    tau_rc, tau_ref, amplitude = lif[0], lif[1], lif[2]
    alpha, gamma, k = head[0], head[1], head[2]
    n_hidden = len(aj)
    na = action.size
    # the spiking actor: currents, neurons, filtered synapses (delivering last step's value), the output
    out = np.zeros(2 * na)
    for layer in range(n_hidden + 1):
        target = aj[layer] if layer < n_hidden else out
        if layer == 0:
            target[:] = aw[0] @ obs
        else:
            target[:] = synapse[layer - 1]
        target += ab[layer]
        if layer < n_hidden:
            _lif_spikes(dt, aj[layer], aa[layer], voltage[layer], refractory[layer], tau_rc, tau_ref, amplitude)
    for layer in range(1, n_hidden + 1):
        incoming = aw[layer] @ aa[layer - 1]
        state = synapse[layer - 1]
        for i in range(incoming.size):
            state[i] = state[i] * decay + (1.0 - decay) * incoming[i]
    # the policy head: the squashed Gaussian's mean (no exploration), log pi, the learned damping
    log_prob = 0.0
    for i in range(na):
        t = math.tanh(out[na + i])
        log_std = LOG_STD_MIN + _HALF_RANGE * (t + 1.0)
        a = math.tanh(out[i])
        log_prob += -log_std - 0.5 * LOG_2PI - math.log(1.0 - a * a + 1e-6)
        damp = 0.0
        for j in range(na):
            damp += damping[i, j] * obs[velocity_columns[j]]
        action[i] = min(max(a + damp, -1.0), 1.0)
    if not learning:
        return 0
    # the pre filters, the twin critics (LIF rate), the TD error
    for layer in range(n_hidden):
        for i in range(pre[layer].size):
            pre[layer][i] = pre[layer][i] * decay + (1.0 - decay) * aa[layer][i]
    x = np.concatenate((obs, action))
    q = np.zeros(2)
    for c in range(2):
        w, b, j, r = (q1w, q1b, q1j, q1a) if c == 0 else (q2w, q2b, q2j, q2a)
        h = x
        for layer in range(n_hidden):
            j[layer][:] = w[layer] @ h + b[layer]
            _rate(j[layer], r[layer], lif)
            h = r[layer]
        q[c] = (w[n_hidden] @ h)[0] + b[n_hidden][0]
    td = np.zeros(2)
    if has_previous[0] and has_reward:
        target_value = reward * k + gamma * (min(q[0], q[1]) - alpha * log_prob * k)
        td[0], td[1] = previous_q[0] - target_value, previous_q[1] - target_value
    previous_q[:] = q
    # each critic's sweep: errors for a unit output error, updates scaled by its TD error, dQ/da
    dq = np.zeros((2, na))
    unit = np.ones(1)
    for c in range(2):
        w, b, paths, ref, bref, pref, j, r, d, scratch, back = (
            (q1w, q1b, q1paths, q1ref, q1bref, q1pref, q1j, q1a, q1d, q1scratch, q1back) if c == 0 else
            (q2w, q2b, q2paths, q2ref, q2bref, q2pref, q2j, q2a, q2d, q2scratch, q2back))
        for layer in range(n_hidden):
            _derivative(j[layer], r[layer], d[layer], scratch[layer], lif)
        pre_c = (x,) + r  # noqa: RUF005 (numba builds tuples by concatenation, not by unpacking)
        first = _sweep(w, b, paths, pre_c, unit, td[c], d, back, neg_lr, mirror, anchored[1], ref, bref, pref,
                       neg_pull)
        dq[c] = first @ np.ascontiguousarray(w[0][:, obs.size:])
    # the actor error and the actor's sweep
    use = 0 if q[0] <= q[1] else 1
    error = np.zeros(2 * na)
    for i in range(na):
        a = action[i]
        one_minus = 1.0 - a * a
        error[i] = alpha * (2.0 * a * one_minus / (one_minus + 1e-6)) - dq[use, i] * one_minus
    for layer in range(n_hidden):
        rate = np.empty(aj[layer].size)
        _rate(aj[layer], rate, lif)
        _derivative(aj[layer], rate, ad[layer], ascratch[layer], lif)
    pre_a = (obs,) + pre  # noqa: RUF005
    _sweep(aw, ab, apaths, pre_a, error, 1.0, ad, aback, neg_lr, mirror, anchored[0], aref, abref, apref, neg_pull)
    return 1
