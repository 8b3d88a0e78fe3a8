"""The NumPy floor of one control tick: the online agent's arithmetic as few vectorised calls as we can.

:class:`~snn_sac_ros.core.agent.online.OnlineAgent` runs one ``nengo.Simulator`` step per tick: about
80 operators, five Python nodes, each a Python call with its own small NumPy calls. :class:`FloorAgent`
does the same tick's work in one method, from the same checkpoint arrays:

* the actor: spiking LIF layers (Nengo's ``LIF.step``: exponential Euler, refractory period, spike
  times inside the step), ``Lowpass(synapse)`` filters on the connections leaving neurons, linear readout;
* the policy head (``tanh`` squash, log-probability), the twin LIF-rate critics stacked into one batched
  matmul per layer, the per-tick soft TD error;
* with learning on: the critics' action gradient, the actor output error, every hidden layer's error sent
  back through the network (bounded LIF derivative), and the plain ``-eta e a^T`` update of every weight
  and bias, applied in place.

It is the yardstick for ``snn-sac-ros bench realtime`` (Nengo step / floor), not a second agent: it is
not wired to the controller, it saves nothing. With exact feedback, a critic's hidden errors are its TD
error times the action-gradient backward pass (both start from ``dq/dout = 1``), so one backward pass
serves both; that, sharing the LIF derivative, and stacking the critics are the floor's only tricks.
With learning off the critics are skipped: their values only feed learning.
"""

from __future__ import annotations

import numpy as np

from snn_sac_ros.core.agent.checkpoint import Checkpoint
from snn_sac_ros.core.agent.sac import SACConfig, actor_output_error, gaussian_head, sample_action
from snn_sac_ros.core.nengo_ext.learning_rules import lif_rate, lif_rate_derivative, random_feedback


def _layers(arrays: dict[str, np.ndarray], prefix: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = sum(1 for k in arrays if k.startswith(f"{prefix}/W"))
    return ([np.array(arrays[f"{prefix}/W{i}"], np.float64) for i in range(n)],
            [np.array(arrays[f"{prefix}/b{i}"], np.float64) for i in range(n)])


class FloorAgent:
    """One tick of the online agent in plain NumPy: ``step(obs, reward) -> action``.

    Parameters mirror :class:`~snn_sac_ros.core.agent.online.OnlineAgent` (``dt``, ``synapse``,
    ``online_lr``, ``learning``, ``control_hz``); the network comes from ``checkpoint``.
    """

    def __init__(self, checkpoint: Checkpoint, *, learning: bool = True, dt: float = 0.001,
                 synapse: float = 0.005, online_lr: float = 1e-4, control_hz: float | None = None) -> None:
        arrays = checkpoint.arrays
        meta = checkpoint.metadata
        self.config = SACConfig.from_dict(meta["sac_config"])
        self.lif = self.config.lif
        self.obs_dim = checkpoint.observation_contract.size
        self.act_dim = checkpoint.action_contract.size
        self.dt, self.lr, self.learning = dt, online_lr, learning
        control_hz = float(control_hz or meta.get("control_hz", 50.0))
        self._k = dt * control_hz
        self._gamma = self.config.gamma ** self._k
        self._alpha = float(np.exp(arrays["log_alpha"][0]))
        self.aw, self.ab = _layers(arrays, "actor")
        q1w, q1b = _layers(arrays, "q1")
        q2w, q2b = _layers(arrays, "q2")
        self.cw = [np.stack([a, b]) for a, b in zip(q1w, q2w)]  # (2, post, pre): both critics in one matmul
        self.cb = [np.stack([a, b]) for a, b in zip(q1b, q2b)]
        self.exact = self.config.feedback == "exact"
        self.afb = [w if self.exact else random_feedback(w.shape, 1000 + i + 1) for i, w in enumerate(self.aw)]
        self.cfb = [w if self.exact else np.stack([random_feedback(w.shape[1:], 1000 + i + 1)] * 2)
                    for i, w in enumerate(self.cw)]
        sizes = [w.shape[0] for w in self.aw[:-1]]
        self.v = [np.zeros(n) for n in sizes]  # membrane voltage
        self.ref = [np.zeros(n) for n in sizes]  # refractory time left
        self.filt = [np.zeros(n) for n in sizes]  # Lowpass-filtered spike trains (also the rules' pre activity)
        self.decay = float(np.exp(-dt / synapse)) if synapse else 0.0
        self.raster = np.zeros(min(64, sizes[0]), bool)
        self.prev_q: np.ndarray | None = None
        self.action = np.zeros(self.act_dim)

    @property
    def n_neurons(self) -> int:
        """Neurons in total: actor plus both critics' hidden layers."""
        return sum(w.shape[0] for w in self.aw[:-1]) + sum(2 * w.shape[1] for w in self.cw[:-1])

    def _actor_forward(self, obs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        p, dt, a = self.lif, self.dt, self.decay
        x, currents = obs, []
        for i, (w, b) in enumerate(zip(self.aw[:-1], self.ab[:-1])):
            j = w @ x + b
            currents.append(j)
            v, ref = self.v[i], self.ref[i]
            ref -= dt
            v -= (j - v) * np.expm1(-np.clip(dt - ref, 0.0, dt) / p.tau_rc)
            spiked = np.flatnonzero(v > 1.0)
            t_spike = dt + p.tau_rc * np.log1p(-(v[spiked] - 1.0) / (j[spiked] - 1.0))
            np.maximum(v, 0.0, out=v)
            v[spiked] = 0.0
            ref[spiked] = p.tau_ref + t_spike
            f = self.filt[i]
            f *= a
            f[spiked] += (1.0 - a) * p.amplitude / dt
            if i == 0:
                self.raster[:] = False
                self.raster[spiked[spiked < self.raster.size]] = True
            x = f
        return self.aw[-1] @ x + self.ab[-1], currents

    def step(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        """Advance one tick with this observation; learn from ``reward`` when learning is on."""
        na, lr, p = self.act_dim, self.lr, self.lif
        out, a_cur = self._actor_forward(obs)
        mean, log_std, dlogstd = gaussian_head(out[None], na)
        eps = np.zeros((1, na))
        act, logp = sample_action(mean, log_std, eps)
        self.action = act[0]
        if not self.learning:
            return self.action
        # critics (LIF rate, no synapses), both at once
        x = np.concatenate([obs, self.action])
        hs, ds = [x], []
        h = x
        for w, b in zip(self.cw[:-1], self.cb[:-1]):
            j = np.matmul(w, h[..., None])[..., 0] + b if h.ndim > 1 else w @ h + b
            ds.append(lif_rate_derivative(j, p))
            h = lif_rate(j, p)
            hs.append(h)
        q = np.matmul(self.cw[-1], h[..., None])[:, 0, 0] + self.cb[-1][:, 0]
        td = np.zeros(2)
        if self.prev_q is not None and reward is not None:
            td = self.prev_q - (reward * self._k + self._gamma * (q.min() - self._alpha * logp[0, 0] * self._k))
        self.prev_q = q
        # backward from dq/dout = 1: the action gradient, and (exact feedback) the critics' hidden errors / td
        e = np.ones((2, 1))
        back = []
        for w, d in zip(self.cw[:0:-1], ds[::-1]):
            e = np.matmul(e[:, None, :], w)[:, 0] * d
            back.append(e)
        dq_da = np.matmul(e[:, None, :], self.cw[0][:, :, self.obs_dim:])[:, 0]
        # actor output error and its way back
        ea = actor_output_error(act, log_std, dlogstd, eps, dq_da[int(np.argmin(q))][None], alpha=self._alpha)[0]
        errs = [ea]
        for w, j in zip(self.afb[:0:-1], a_cur[::-1]):
            errs.append((errs[-1] @ w) * lif_rate_derivative(j, p))
        pres = [obs, *self.filt]
        for w, b, err, pre in zip(self.aw, self.ab, errs[::-1], pres):
            np.add(w, np.multiply.outer(err * -lr, pre), out=w)  # in place: the arrays in self.aw / self.ab
            np.add(b, err * -lr, out=b)
        # critic updates: output error td, hidden errors td * backward pass (exact) or through B (random)
        if td.any():
            cerrs = [td[:, None]]
            if self.exact:
                cerrs += [td[:, None] * e_h for e_h in back]
            else:
                for fb, d in zip(self.cfb[:0:-1], ds[::-1]):
                    cerrs.append(np.matmul(cerrs[-1][:, None, :], fb)[:, 0] * d)
            for i, err in enumerate(cerrs[::-1]):
                pre = hs[i] if hs[i].ndim > 1 else np.broadcast_to(hs[i], (2, hs[i].size))
                self.cw[i] -= lr * (err[:, :, None] * pre[:, None, :])
                self.cb[i] -= lr * err
        return self.action
