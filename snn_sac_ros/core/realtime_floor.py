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
from snn_sac_ros.core.learning.lif import lif_rate, lif_rate_derivative
from snn_sac_ros.core.learning.rules import random_feedback


def _layers(arrays: dict[str, np.ndarray], prefix: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = sum(1 for k in arrays if k.startswith(f"{prefix}/W"))
    return ([np.array(arrays[f"{prefix}/W{i}"], np.float64) for i in range(n)],
            [np.array(arrays[f"{prefix}/b{i}"], np.float64) for i in range(n)])


class FloorAgent:
    """One tick of the online agent in plain NumPy: ``step(obs, reward) -> action``.

    Parameters mirror :class:`~snn_sac_ros.core.agent.online.OnlineAgent` (``dt``, ``synapse``,
    ``online_lr``, ``learning``, ``control_hz``); the network comes from ``checkpoint``. The input layers'
    weights are kept transposed (``(n_in, n_hidden)``): with a handful of inputs, the update
    ``W += -eta e x^T`` then runs over long contiguous rows instead of rows of length ``n_in``.
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
        aw, self.ab = _layers(arrays, "actor")
        q1w, q1b = _layers(arrays, "q1")
        q2w, q2b = _layers(arrays, "q2")
        cw = [np.stack([a, b]) for a, b in zip(q1w, q2w)]  # (2, post, pre): both critics in one matmul
        self.cb = [np.stack([a, b]) for a, b in zip(q1b, q2b)]
        self.aw0t = np.ascontiguousarray(aw[0].T)  # (n_obs, n_hidden)
        self.cw0t = np.ascontiguousarray(np.swapaxes(cw[0], 1, 2))  # (2, n_obs + n_act, n_hidden)
        self.aw, self.cw = aw[1:], cw[1:]  # the layers after the input layer, (post, pre)
        self.exact = self.config.feedback == "exact"
        self.afb = [w if self.exact else random_feedback(w.shape, 1000 + i + 2) for i, w in enumerate(self.aw)]
        self.cfb = [w if self.exact else np.stack([random_feedback(w.shape[1:], 1000 + i + 2)] * 2)
                    for i, w in enumerate(self.cw)]
        sizes = [b.size for b in self.ab[:-1]]
        self.v = [np.zeros(n) for n in sizes]  # membrane voltage
        self.ref = [np.zeros(n) for n in sizes]  # refractory time left
        self.filt = [np.zeros(n) for n in sizes]  # Lowpass-filtered spike trains (also the rules' pre activity)
        self.decay = float(np.exp(-dt / synapse)) if synapse else 0.0
        self.raster = np.zeros(min(64, sizes[0]), bool)
        self.prev_q: np.ndarray | None = None
        self.action = np.zeros(self.act_dim)
        self._cbuf = np.empty_like(self.cw0t)

    @property
    def n_neurons(self) -> int:
        """Neurons in total: actor plus both critics' hidden layers."""
        return sum(b.size for b in self.ab[:-1]) + sum(b[0].size for b in self.cb[:-1]) * 2

    def _actor_forward(self, obs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        p, dt, a = self.lif, self.dt, self.decay
        x, currents = obs, []
        for i, b in enumerate(self.ab[:-1]):
            j = (x @ self.aw0t if i == 0 else self.aw[i - 1] @ x) + b
            currents.append(j)
            v, ref = self.v[i], self.ref[i]
            ref -= dt
            v -= (j - v) * np.expm1(np.clip(dt - ref, 0.0, dt) * (-1.0 / p.tau_rc))
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
        na, no, lr, p = self.act_dim, self.obs_dim, self.lr, self.lif
        out, a_cur = self._actor_forward(obs)
        mean, log_std, dlogstd = gaussian_head(out[None], na)
        eps = np.zeros((1, na))
        act, logp = sample_action(mean, log_std, eps)
        self.action = act[0]
        if not self.learning:
            return self.action
        # critics (LIF rate, no synapses), both at once: (2, n) per hidden layer
        x = np.concatenate([obs, self.action])
        h = np.matmul(x, self.cw0t) + self.cb[0]
        hs, ds = [x], []
        for i in range(len(self.cw)):
            ds.append(lif_rate_derivative(h, self.lif))
            h = lif_rate(h, p)
            hs.append(h)
            h = np.matmul(self.cw[i], h[..., None])[..., 0] + self.cb[i + 1]
        q = h[:, 0]
        td = np.zeros(2)
        if self.prev_q is not None and reward is not None:
            td = self.prev_q - (reward * self._k + self._gamma * (q.min() - self._alpha * logp[0, 0] * self._k))
        self.prev_q = q
        # backward from dq/dout = 1: the action gradient, and (exact feedback) the critics' hidden errors / td
        e = np.ones((2, 1))
        back = []
        for w, d in zip(self.cw[::-1], ds[::-1]):
            e = np.matmul(e[:, None, :], w)[:, 0] * d
            back.append(e)
        dq_da = np.matmul(self.cw0t[:, no:], e[..., None])[..., 0]
        # actor output error and its way back
        ea = actor_output_error(act, log_std, dlogstd, eps, dq_da[int(np.argmin(q))][None], alpha=self._alpha)[0]
        errs = [ea]
        for w, j in zip(self.afb[::-1], a_cur[::-1]):
            errs.append((errs[-1] @ w) * lif_rate_derivative(j, self.lif))
        errs.reverse()  # input layer first
        np.add(self.aw0t, np.multiply.outer(obs * -lr, errs[0]), out=self.aw0t)
        for w, err, pre in zip(self.aw, errs[1:], self.filt):
            np.add(w, np.multiply.outer(err * -lr, pre), out=w)
        for b, err in zip(self.ab, errs):
            np.add(b, err * -lr, out=b)
        # critic updates: output error td, hidden errors td * backward pass (exact) or through B (random)
        if td.any():
            cerrs = [td[:, None]]
            if self.exact:
                cerrs += [td[:, None] * e_h for e_h in back]
            else:
                for fb, d in zip(self.cfb[::-1], ds[::-1]):
                    cerrs.append(np.matmul(cerrs[-1][:, None, :], fb)[:, 0] * d)
            cerrs.reverse()
            np.multiply((x * -lr)[None, :, None], cerrs[0][:, None, :], out=self._cbuf)
            self.cw0t += self._cbuf
            for w, err, pre in zip(self.cw, cerrs[1:], hs[1:]):
                np.add(w, (err * -lr)[:, :, None] * pre[:, None, :], out=w)
            for b, err in zip(self.cb, cerrs):
                np.add(b, err * -lr, out=b)
        return self.action
