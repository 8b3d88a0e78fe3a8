"""The deployed agent: a Nengo simulator that acts and keeps learning, one ``dt`` step per control tick.

:class:`OnlineAgent` builds, from a checkpoint, one Nengo model holding

* the actor: a :class:`~snn_sac_ros.core.networks.nengo_nets.LIFNetwork` of spiking LIF neurons (or
  LIF-rate with ``spiking=False``), whose output (mean, log-std) feeds a policy node that squashes it
  into an action in [-1, 1] (deterministic ``tanh(mean)`` unless ``explore``);
* the twin critics (LIF-rate ensembles: the TD error needs clean values) reading observation and action;
* the learning: ``LocalDelta`` rules on output connections, ``FeedbackDelta`` rules on hidden ones (their
  error travels back through the network), a TD-error node feeding the critics' output rules, two
  ``InputGradient`` nodes giving the critics' action gradient, and an actor-error node combining it with
  the entropy term (the same :func:`~snn_sac_ros.core.agent.sac.actor_output_error` the replay trainer uses);
* adaptive joint damping: a connection from the observation's joint velocities to the action, one synapse
  per joint (``torque -= gain * dq``), zero in a freshly trained checkpoint, learned online by
  :class:`~snn_sac_ros.core.nengo_ext.learning_rules.PerturbationDelta` from the reach error (see
  :class:`DampingLearning`). It is what adapts to a payload: the critics' action gradient, trained on the
  nominal arm, does not point to the damping a heavier arm needs.

Online learning is anchored: while the rules learn, every weight is also pulled back toward its reference
(the trained checkpoint's weights) with time constant ``anchor_tau`` (see
:func:`~snn_sac_ros.core.nengo_ext.learning_rules.anchor_pull`), so the policy can adapt around what was
trained but cannot drift away from it over hours. Saved online weights carry their reference
(``reference/<name>`` arrays), so a restart stays anchored to the same trained weights.

Online TD is per tick: the discount and reward are scaled to the tick length (``gamma ** (dt * control_hz)``,
``reward * dt * control_hz``), the critics bootstrap from themselves (no target copies online) and the
temperature stays at its trained value. The weight update of a tick uses that tick's presynaptic
activities, one tick (1 ms) after the state the TD error scores: at 1 kHz the difference is negligible.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import nengo
import numpy as np

from snn_sac_ros.core.agent.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn_sac_ros.core.agent.sac import SACConfig, actor_output_error, gaussian_head, sample_action
from snn_sac_ros.core.contracts import ActionContract, ObservationContract
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.nengo_ext.builder import InputGradient
from snn_sac_ros.core.nengo_ext.learning_rules import LearnedConnection, PerturbationDelta
from snn_sac_ros.core.networks.nengo_nets import LearningSpec, LIFNetwork

RASTER_NEURONS = 64
RASTER_TICKS = 2000
REFERENCE_PREFIX = "reference/"


def _layers(arrays: dict[str, np.ndarray], prefix: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = sum(1 for k in arrays if k.startswith(f"{prefix}/W"))
    return [arrays[f"{prefix}/W{i}"] for i in range(n)], [arrays[f"{prefix}/b{i}"] for i in range(n)]


def _reference(arrays: dict[str, np.ndarray], prefix: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights online learning is anchored to: saved ``reference/`` arrays, else the weights themselves."""
    if f"{REFERENCE_PREFIX}{prefix}/W0" in arrays:
        return _layers(arrays, REFERENCE_PREFIX + prefix)
    return _layers(arrays, prefix)


def learned_from(saved: Checkpoint, trained: Checkpoint) -> bool:
    """Whether online weights ``saved`` were learned from the checkpoint ``trained``: same reference actor.

    A controller resumes saved weights only then; weights learned from another checkpoint (an earlier
    release's, another training run's) would silently run that other policy.
    """
    mine, theirs = _reference(saved.arrays, "actor"), _reference(trained.arrays, "actor")
    return all(len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))
               for a, b in zip(mine, theirs))


def resume_source(save_path: str | Path, checkpoint_path: str | Path) -> tuple[Path, Path | None]:
    """Where a restarted controller starts: ``(file to load, where foreign saved weights were moved)``.

    The saved online weights at ``save_path`` when they were learned from ``checkpoint_path``; otherwise the
    checkpoint, and the saved file is renamed aside (``<name>.other-checkpoint-<time>.npz``), so what it
    learned is neither run by mistake nor overwritten by the next save. Raises ``CheckpointError`` for a
    corrupt saved file (a controller must not guess).
    """
    save_path, checkpoint_path = Path(save_path), Path(checkpoint_path)
    if not save_path.is_file():
        return checkpoint_path, None
    if learned_from(load_checkpoint(save_path), load_checkpoint(checkpoint_path)):
        return save_path, None
    aside = save_path.with_name(f"{save_path.stem}.other-checkpoint-{time.strftime('%Y%m%dT%H%M%S')}.npz")
    save_path.rename(aside)
    return checkpoint_path, aside


@dataclass(frozen=True)
class DampingLearning:
    """How the adaptive joint damping learns: antithetic perturbation trials, one per reach.

    Each reach runs with every joint's damping gain perturbed by ``+sigma xi`` and the next with ``-sigma xi``;
    after the pair, each gain steps by ``rate * sigma`` (per unit of normalised cost difference) toward the
    better of the two. The cost of a reach is minus the reward (the distance to the target), low-pass
    filtered over ``cost_tau``: how well the arm settles on the target, which is what damping is for (the
    whole reach's mean would also count the slower start that damping brings). Gains stay within
    ``[0, max_gain]``: damping only ever takes energy out of the arm.
    """

    sigma: float = 0.3
    """perturbation of each gain [Nm s/rad]"""
    rate: float = 0.17
    """step per trial pair, in units of sigma"""
    max_gain: float = 3.0
    """upper bound of each gain [Nm s/rad]"""
    cost_tau: float = 1.0
    """a reach is scored by its last ``cost_tau`` seconds (low-pass filtered cost; 0: the whole reach)"""

    def __post_init__(self) -> None:
        for name in ("sigma", "rate", "max_gain", "cost_tau"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"damping {name} must be a finite value >= 0, got {value}")


DAMPING_KEY = "damping/gain"


class OnlineAgent:
    """A spiking SAC controller: ``step(obs, reward) -> action``, learning inside ``sim.step()``.

    Parameters
    ----------
    checkpoint: a loaded :class:`Checkpoint`.
    spiking: actor neurons ``nengo.LIF`` (True) or ``nengo.LIFRate``. learning: start with learning on.
    dt: simulator step [s]. steps_per_tick: simulator steps per :meth:`step` call (a control tick lasts
        ``steps_per_tick * dt``). seed: simulator seed (spike phases, exploration).
    synapse: actor synapse time constant [s] in spiking mode. online_lr: step size of the online rules
        (plain ``-eta e a^T`` per tick, no moments: see ``LocalDelta(adaptive=False)``).
    anchor_tau: time constant [s] of the pull of every learning weight back toward the trained weights
        (0: none, the weights may drift without bound).
    explore: act with the stochastic policy while learning (SAC exploration) instead of ``tanh(mean)``.
    actor_only: build no critics (evaluation; learning then cannot be switched on).
    control_hz: the rate the critics' discount was trained at (default: the checkpoint's).
    damping: learn the joint damping gains online (None: they stay as the checkpoint holds them, 0 if it
        holds none). Learning on/off switches it with the local SAC rules.
    """

    def __init__(self, checkpoint: Checkpoint, *, spiking: bool = True, learning: bool = True, dt: float = 0.001,
                 seed: int = 0, synapse: float = 0.005, online_lr: float = 1e-5, explore: bool = False,
                 actor_only: bool = False, control_hz: float | None = None, anchor_tau: float = 30.0,
                 damping: DampingLearning | None = None, steps_per_tick: int = 1) -> None:
        if int(steps_per_tick) != steps_per_tick or steps_per_tick < 1:
            raise ValueError(f"steps_per_tick must be a whole number >= 1, got {steps_per_tick}")
        self.steps_per_tick = int(steps_per_tick)
        if anchor_tau < 0 or not np.isfinite(anchor_tau):
            raise ValueError(f"anchor_tau must be a finite time >= 0 [s], got {anchor_tau}")
        self.checkpoint = checkpoint
        self.metadata = dict(checkpoint.metadata)
        self.observation_contract: ObservationContract = checkpoint.observation_contract
        self.action_contract: ActionContract = checkpoint.action_contract
        self.config = SACConfig.from_dict(self.metadata["sac_config"])
        self.lif: LIFParams = self.config.lif
        self.spiking, self.dt, self.explore, self.actor_only = spiking, dt, explore, actor_only
        self.obs_dim, self.act_dim = self.observation_contract.size, self.action_contract.size
        control_hz = float(control_hz or self.metadata.get("control_hz", 50.0))
        self._tick_fraction = dt * control_hz  # share of a trained control step one tick stands for
        self._gamma_tick = self.config.gamma ** self._tick_fraction
        self._alpha = float(np.exp(checkpoint.arrays["log_alpha"][0]))
        self._hold = max(1, round(1.0 / (control_hz * dt)))  # ticks an exploration sample is held
        self._rng = np.random.default_rng(seed)
        self._obs = np.zeros(self.obs_dim)
        self._reward: float | None = None
        self._learning = bool(learning) and not actor_only
        self._action = np.zeros(self.act_dim)
        self._eps = np.zeros(self.act_dim)
        self._steps_in_episode = 0  # simulator steps since the episode began (an exploration sample's hold)
        self._total_ticks = 0
        self._prev_q: np.ndarray | None = None
        self._raster = np.zeros((RASTER_TICKS, min(RASTER_NEURONS, self.config.hidden[0])), bool)
        self.updates = 0
        self.step_seconds = 0.0
        self.anchor_tau = float(anchor_tau)
        self.damping = damping
        self._trial_end = False
        self._modulation = np.zeros(3)
        self.model = self._build(checkpoint.arrays, synapse, online_lr, seed)
        with np.errstate(divide="ignore"):  # gain 1 / bias 0 ensembles: nengo's intercept read-out divides by 0
            self.sim = nengo.Simulator(self.model, dt=dt, seed=seed, progress_bar=False, optimize=True)
        # the raster reads the first hidden layer's spikes after each step: no Node (a Python call) for it
        self._spikes = self.sim.signals[self.sim.model.sig[self.actor.hidden[0].neurons]["out"]]

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, spiking: bool = True, learning: bool = True, dt: float = 0.001,
                        seed: int = 0, expected_observation: ObservationContract | None = None,
                        expected_action: ActionContract | None = None, **kwargs: object) -> OnlineAgent:
        """Load ``path`` (refusing a mismatch with the expected contracts) and build the Nengo model."""
        ckpt = load_checkpoint(path, expected_observation, expected_action)
        return cls(ckpt, spiking=spiking, learning=learning, dt=dt, seed=seed, **kwargs)

    # --- the model ----------------------------------------------------------------------------------

    def _build(self, arrays: dict[str, np.ndarray], synapse: float, online_lr: float, seed: int) -> nengo.Network:
        na, no = self.act_dim, self.obs_dim
        fb = self.config.feedback
        syn = synapse if self.spiking else None
        model = nengo.Network(label="spiking SAC", seed=seed)
        with model:
            obs = nengo.Node(lambda t: self._obs, label="observation")
            w, b = _layers(arrays, "actor")
            actor_learn = None if self.actor_only else LearningSpec(
                online_lr, fb, syn, seed, anchor_tau=self.anchor_tau, reference=_reference(arrays, "actor"))
            self.actor = LIFNetwork(w, b, self.lif, spiking=self.spiking, synapse=syn, learning=actor_learn,
                                    label="actor")
            nengo.Connection(obs, self.actor.input, synapse=None)
            policy = nengo.Node(self._policy, size_in=3 * na, size_out=3 * na + 1, label="policy")  # a, eps, u, logp
            nengo.Connection(self.actor.output, policy[: 2 * na], synapse=None)
            self._build_damping(arrays, obs, policy[2 * na:], seed)
            if self.actor_only:
                return model
            critic_in = nengo.Node(size_in=no + na, label="critic_input")
            nengo.Connection(obs, critic_in[:no], synapse=None)
            nengo.Connection(policy[:na], critic_in[no:], synapse=None)
            self.critics = []
            for k, name in enumerate(("q1", "q2")):
                w, b = _layers(arrays, name)
                learn = LearningSpec(online_lr, fb, None, seed + k, anchor_tau=self.anchor_tau,
                                     reference=_reference(arrays, name))
                net = LIFNetwork(w, b, self.lif, spiking=False, learning=learn, label=name)
                nengo.Connection(critic_in, net.input, synapse=None)
                self.critics.append(net)
            with nengo.Network(label="action_gradient"):  # built after the critics' connections
                grads = [InputGradient(c.weight_connections, c.hidden, slice(no, no + na), self.lif, label=f"dq{k}_da",
                                       enabled=lambda: self._learning)
                         for k, c in enumerate(self.critics)]
            # one node for both errors: [actor out, a, eps, dq1/da, dq2/da, q1, q2, log pi] -> [td1, td2, actor error]
            errors = nengo.Node(self._errors, size_in=6 * na + 3, size_out=2 + 2 * na, label="errors")
            nengo.Connection(self.actor.output, errors[: 2 * na], synapse=None)
            nengo.Connection(policy[: 2 * na], errors[2 * na: 4 * na], synapse=None)
            nengo.Connection(policy[3 * na], errors[6 * na + 2], synapse=None)
            for k, c in enumerate(self.critics):
                nengo.Connection(grads[k], errors[(4 + k) * na: (5 + k) * na], synapse=None)
                nengo.Connection(c.output, errors[6 * na + k], synapse=None)
                for rule in c.output_rules:
                    nengo.Connection(errors[k], rule, synapse=None)
            for rule in self.actor.output_rules:
                nengo.Connection(errors[2:], rule, synapse=None)
        return model

    def _damping_scale(self) -> np.ndarray:
        """Action per unit of observed velocity, per joint, for a gain of 1 Nm s/rad (``torque = -gain dq``)."""
        return -np.array(self.observation_contract.dq_scale) / np.array(self.action_contract.torque_scale)

    def _build_damping(self, arrays: dict[str, np.ndarray], obs: nengo.Node, out: object, seed: int) -> None:
        """Observed joint velocities -> action, one learned synapse per joint."""
        layout = self.observation_contract.layout()
        columns = [layout.index(f"dq/{j}") for j in self.action_contract.joint_names]
        gains = np.asarray(arrays.get(DAMPING_KEY, np.zeros(self.act_dim)), dtype=float)
        if gains.shape != (self.act_dim,) or not np.all(np.isfinite(gains)):
            raise ValueError(f"{DAMPING_KEY} must hold {self.act_dim} finite gains, got {gains!r}")
        scale = self._damping_scale()
        velocity = nengo.Node(size_in=self.act_dim, label="joint_velocity")
        nengo.Connection(obs[columns], velocity, synapse=None)
        rule = None
        if self.damping is not None and not self.actor_only:
            d = self.damping
            # scale < 0: a gain in [0, max_gain] is a weight in [max_gain * scale, 0]
            rule = PerturbationDelta(d.rate, sigma=np.diag(d.sigma * np.abs(scale)), low=np.diag(d.max_gain * scale),
                                     high=0.0, seed=seed + 77, cost_tau=d.cost_tau)
        self._damping_connection = LearnedConnection(velocity, out, transform=np.diag(gains * scale), synapse=None,
                                                     learning_rule_type=rule)
        if rule is not None:
            modulation = nengo.Node(self._damping_modulation, label="damping_modulation")
            nengo.Connection(modulation, self._damping_connection.learning_rule, synapse=None)

    def _damping_modulation(self, t: float) -> np.ndarray:
        """``[cost, trial end, enabled]`` for the damping rule; a trial ends on the first step of its tick only."""
        out = self._modulation.copy()
        self._modulation[1] = 0.0
        return out

    def damping_gains(self) -> np.ndarray:
        """The learned damping gains [Nm s/rad] per joint (without the running trial's perturbation)."""
        conn, sig = self._damping_connection, self.sim.model.sig
        if conn.learning_rule is not None:
            weights = self.sim.signals[sig[conn.learning_rule]["mean"]]
        else:
            weights = self.sim.signals[sig[conn]["weights"]]
        return np.diag(weights) / self._damping_scale()

    def _policy(self, t: float, x: np.ndarray) -> np.ndarray:
        """Squash the actor output into an action, add the damping; hold an exploration sample one control period."""
        na = self.act_dim
        mean, log_std, _ = gaussian_head(x[None, : 2 * na], na)
        if self._learning and self.explore:
            if self._steps_in_episode % self._hold == 0:
                self._eps = self._rng.standard_normal(self.act_dim)
        else:
            self._eps = np.zeros(self.act_dim)
        a, logp = sample_action(mean, log_std, self._eps[None])
        self._action = np.clip(a[0] + x[2 * na:], -1.0, 1.0)
        self._steps_in_episode += 1
        return np.concatenate([self._action, self._eps, mean[0], logp[0]])

    def _td_error(self, t: float, x: np.ndarray) -> np.ndarray:
        """Per-tick soft TD error of each critic: ``Q_prev - (r k + gamma_tick (min Q - alpha log pi k))``."""
        q, logp = x[:2], x[2]
        out = np.zeros(2)
        if self._learning and self._prev_q is not None and self._reward is not None:
            k = self._tick_fraction
            target = self._reward * k + self._gamma_tick * (min(q[0], q[1]) - self._alpha * logp * k)
            out = self._prev_q - target
            self.updates += 1
        self._prev_q = q.copy()
        return out

    def _actor_error(self, t: float, x: np.ndarray) -> np.ndarray:
        """d(alpha log pi - min Q)/d(actor output) for the action just taken (zero while not learning)."""
        na = self.act_dim
        if not self._learning:
            return np.zeros(2 * na)
        out, a, eps = x[None, : 2 * na], x[None, 2 * na: 3 * na], x[None, 3 * na: 4 * na]
        dq = x[4 * na: 5 * na] if x[6 * na] <= x[6 * na + 1] else x[5 * na: 6 * na]
        _, log_std, dlogstd = gaussian_head(out, na)
        error = actor_output_error(a, log_std, dlogstd, eps, dq[None], alpha=self._alpha)[0]
        if not self.explore:  # acting with tanh(mean): a deterministic-policy-gradient step on the mean only;
            error[na:] = 0.0  # the entropy push on an unused log-std would only drift the shared hidden layers
        return error

    def _errors(self, t: float, x: np.ndarray) -> np.ndarray:
        """TD errors of both critics and the actor output error, in one node (one Python call per tick)."""
        na = self.act_dim
        return np.concatenate([self._td_error(t, x[6 * na: 6 * na + 3]), self._actor_error(t, x[: 6 * na + 2])])

    # --- the API the controller node calls ------------------------------------------------------------

    def step(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        """Advance the simulator one tick (``steps_per_tick`` steps of ``dt``) with this observation; returns the
        action in [-1, 1].

        ``reward`` is the reward for the tick that led here (None: no learning from this tick).
        """
        obs = np.asarray(obs, dtype=float)
        if obs.shape != (self.obs_dim,) or not np.all(np.isfinite(obs)):
            raise ValueError(f"observation must be {self.obs_dim} finite values, got {obs!r}")
        start = time.perf_counter()
        self._obs[:] = obs
        self._reward = None if reward is None else float(reward)
        learning_damping = self._learning and self.damping is not None
        self._modulation[:] = (-self._reward if self._reward is not None else 0.0, self._trial_end, learning_damping)
        self._trial_end = False
        self.sim.run_steps(self.steps_per_tick)
        self._raster[self._total_ticks % RASTER_TICKS] = self._spikes[: self._raster.shape[1]] > 0
        self._total_ticks += 1
        self.step_seconds = time.perf_counter() - start
        action = np.clip(self._action, -1.0, 1.0)
        if not np.all(np.isfinite(action)):
            raise FloatingPointError("the actor produced a non-finite action")
        return action.copy()

    @property
    def learning(self) -> bool:
        return self._learning

    @learning.setter
    def learning(self, on: bool) -> None:
        if on and self.actor_only:
            raise ValueError("this agent was built with actor_only=True: it has no critics to learn from")
        self._learning = bool(on)
        self._prev_q = None

    def end_episode(self) -> None:
        """The target changed or the reach ended: no TD error across the boundary; new exploration sample;
        the damping's perturbation trial ends."""
        self._prev_q = None
        self._steps_in_episode = 0
        self._trial_end = True

    def current_arrays(self) -> dict[str, np.ndarray]:
        """Checkpoint arrays with the weights as they are now in the simulator, and their anchor reference."""
        arrays = dict(self.checkpoint.arrays)
        nets = [("actor", self.actor)] + ([] if self.actor_only else list(zip(("q1", "q2"), self.critics)))
        for name, net in nets:
            for i, (w, b) in enumerate(zip(*_reference(self.checkpoint.arrays, name))):
                arrays[f"{REFERENCE_PREFIX}{name}/W{i}"], arrays[f"{REFERENCE_PREFIX}{name}/b{i}"] = w, b
            ws, bs = net.read_weights(self.sim)
            for i, (w, b) in enumerate(zip(ws, bs)):
                arrays[f"{name}/W{i}"], arrays[f"{name}/b{i}"] = w, b
        arrays[DAMPING_KEY] = self.damping_gains()
        return arrays

    def weights_digest(self) -> str:
        """SHA-1 of the current actor and critic weights: changes when learning changed them."""
        h = hashlib.sha1()
        arrays = self.current_arrays()
        for key in sorted(arrays):
            h.update(key.encode())
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
        return h.hexdigest()

    def snapshot(self) -> tuple[dict[str, np.ndarray], dict]:
        """Copies of the current weights and the metadata to save with them.

        Taking the copy is fast; writing it (``save_checkpoint``) may be slow and can run in another
        thread, so a controller never delays a tick for a save.
        """
        meta = dict(self.metadata)
        meta.pop("format_version", None)
        meta["online_updates"] = int(meta.get("online_updates", 0)) + self.updates
        return {k: np.array(v, copy=True) for k, v in self.current_arrays().items()}, meta

    def save(self, path: str | Path) -> Path:
        """Write the current weights with the checkpoint's metadata, atomically."""
        return save_checkpoint(path, *self.snapshot())

    def spike_raster(self, n_neurons: int = 32) -> np.ndarray:
        """Spikes (bool, ticks x neurons) of the first actor neurons over the last ticks, oldest first."""
        n = min(n_neurons, self._raster.shape[1])
        ticks = min(self._total_ticks, RASTER_TICKS)
        idx = np.arange(self._total_ticks - ticks, self._total_ticks) % RASTER_TICKS
        return self._raster[idx, :n].copy()

    def close(self) -> None:
        self.sim.close()
