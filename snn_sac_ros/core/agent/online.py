"""The deployed agent: a Nengo simulator that acts and keeps learning, one control tick per :meth:`OnlineAgent.step`.

:class:`OnlineAgent` builds, from a checkpoint, one Nengo model
(:class:`~snn_sac_ros.core.nengo_ext.networks.SpikingSACNetwork`) holding

* the actor: a :class:`~snn_sac_ros.core.nengo_ext.networks.LIFNetwork` of spiking LIF neurons (or LIF rate with
  ``spiking=False``) whose output (mean, log-std) the policy head squashes into an action in [-1, 1]
  (deterministic ``tanh(mean)`` unless ``explore``);
* the twin critics (LIF-rate neurons: the TD error needs clean values) reading observation and action;
* the learning, all inside the network's operators: the per-step TD error, each critic's action gradient dQ/da,
  the actor's error from it and the entropy term, the hidden layers' errors by the checkpoint's feedback mode
  (``exact`` is backprop: weight transport; ``kp`` and the feedback-alignment modes read no forward weight), and
  every synapse's local update;
* adaptive joint damping: one learned gain per joint from the observed joint velocity to the action
  (``torque -= gain * dq``), zero in a freshly trained checkpoint, learned online by weight perturbation
  (:class:`~snn_sac_ros.core.nengo_ext.learning_rules.PerturbationDelta`) from the reach error (see
  :class:`DampingLearning`): the critics' action gradient, trained on the nominal arm, does not point to the
  damping a heavier arm needs.

With learning off only the actor and the policy head compute; switching learning on needs no rebuild.

Online learning is anchored: while the rules learn, every weight is also pulled back toward its reference
(the trained checkpoint's weights) with time constant ``anchor_tau``
(:func:`~snn_sac_ros.core.learning.rules.anchor_pull`), so the policy can adapt around what was trained but cannot
drift away from it over hours. Saved online weights carry their reference (``reference/<name>`` arrays), so a
restart stays anchored to the same trained weights.

Online TD is per step: the discount and reward are scaled to the step (``gamma ** (dt * control_hz)``,
``reward * dt * control_hz``), the critics bootstrap from themselves (no slow copies online) and the temperature
stays at its trained value. A step's weight update uses that step's presynaptic activities, one step after the
state the TD error scores: at 1 kHz the difference is negligible.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import nengo
import numpy as np

from snn_sac_ros.core.agent.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn_sac_ros.core.agent.sac import SACConfig
from snn_sac_ros.core.contracts import ActionContract, ObservationContract
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.learning.modes import feedback_mode
from snn_sac_ros.core.nengo_ext.learning_rules import LocalLearning, PerturbationDelta
from snn_sac_ros.core.nengo_ext.networks import HeadConfig, Layers, LIFNetwork, SpikingSACNetwork

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


def _reference_layers(arrays: dict[str, np.ndarray], prefix: str) -> Layers:
    """All parameters online learning is anchored to, feedback matrices included."""
    saved = f"{REFERENCE_PREFIX}{prefix}/W0" in arrays
    return Layers.from_arrays(arrays, REFERENCE_PREFIX + prefix if saved else prefix)


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
        (plain ``-eta e a^T`` per step, no moments).
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
        if anchor_tau < 0 or not np.isfinite(anchor_tau):
            raise ValueError(f"anchor_tau must be a finite time >= 0 [s], got {anchor_tau}")
        self.checkpoint = checkpoint
        self.metadata = dict(checkpoint.metadata)
        self.observation_contract: ObservationContract = checkpoint.observation_contract
        self.action_contract: ActionContract = checkpoint.action_contract
        self.config = SACConfig.from_dict(self.metadata["sac_config"])
        self.lif: LIFParams = self.config.lif
        self.feedback = feedback_mode(self.config.feedback)
        self.spiking, self.dt, self.explore, self.actor_only = spiking, dt, explore, actor_only
        self.steps_per_tick = int(steps_per_tick)
        self.obs_dim, self.act_dim = self.observation_contract.size, self.action_contract.size
        self.anchor_tau, self.damping = float(anchor_tau), damping
        control_hz = float(control_hz or checkpoint.control_hz)
        step_fraction = dt * control_hz  # share of a trained control step one simulator step stands for
        head = HeadConfig(alpha=float(np.exp(checkpoint.arrays["log_alpha"][0])),
                          gamma_step=self.config.gamma ** step_fraction, step_fraction=step_fraction,
                          hold=max(1, round(1.0 / (control_hz * dt))), explore=explore)
        self._raster = np.zeros((RASTER_TICKS, min(RASTER_NEURONS, self.config.hidden[0])), bool)
        self._total_ticks = 0
        self._trial_end = False
        self.model = self._build(checkpoint.arrays, head, synapse, online_lr, seed)
        with np.errstate(divide="ignore"):
            self.sim = nengo.Simulator(self.model, dt=dt, seed=seed, progress_bar=False, optimize=False)
        io = self.sim.model.sig[self.model]
        # an actor alone has no TD error and reads no reward: a signal no operator uses is not simulated, and
        # writes to it go nowhere
        self._io = {name: np.zeros(1) for name in ("reward", "has_reward", "has_previous_q", "td_updates")}
        self._io.update({name: self.sim.signals[signal] for name, signal in io.items() if signal in self.sim.signals})
        self._damping_mean = io.get("damping_mean")
        self._spikes = self.sim.signals[self.sim.model.sig[self.actor]["a0"]]
        # one simulator step's operator functions in the simulator's order, split after the policy head's: what gives
        # the action, and what learns from it (the Nengo simulator's own lists, ``_step_order`` and ``_steps``)
        head = next(k for k, op in enumerate(self.sim._step_order) if io["action"] in op.sets)
        self._to_action, self._after_action = self.sim._steps[:head + 1], self.sim._steps[head + 1:]
        self._unfinished = False
        self.learning = bool(learning) and not actor_only

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, spiking: bool = True, learning: bool = True, dt: float = 0.001,
                        seed: int = 0, expected_observation: ObservationContract | None = None,
                        expected_action: ActionContract | None = None, **kwargs: object) -> OnlineAgent:
        """Load ``path`` (refusing a mismatch with the expected contracts) and build the Nengo model."""
        ckpt = load_checkpoint(path, expected_observation, expected_action)
        return cls(ckpt, spiking=spiking, learning=learning, dt=dt, seed=seed, **kwargs)

    # --- the model ----------------------------------------------------------------------------------

    def _build(self, arrays: dict[str, np.ndarray], head: HeadConfig, synapse: float, online_lr: float,
               seed: int) -> SpikingSACNetwork:
        na, no = self.act_dim, self.obs_dim
        syn = synapse if self.spiking else None
        learns = not self.actor_only
        rule = LocalLearning(online_lr, self.feedback.name, anchor_tau=self.anchor_tau) if learns else None
        layout = self.observation_contract.layout()
        gains = np.asarray(arrays.get(DAMPING_KEY, np.zeros(na)), dtype=float)
        if gains.shape != (na,) or not np.all(np.isfinite(gains)):
            raise ValueError(f"{DAMPING_KEY} must hold {na} finite gains, got {gains!r}")
        scale = self._damping_scale()
        damping_rule = None
        if self.damping is not None and learns:
            d = self.damping
            # scale < 0: a gain in [0, max_gain] is a weight in [max_gain * scale, 0]
            damping_rule = PerturbationDelta(d.rate, sigma=np.diag(d.sigma * np.abs(scale)),
                                             low=np.diag(d.max_gain * scale), high=0.0, seed=seed + 77,
                                             cost_tau=d.cost_tau)
        model = SpikingSACNetwork(obs_dim=no, act_dim=na, head=head, damping_weights=np.diag(gains * scale),
                                  velocity_columns=[layout.index(f"dq/{j}") for j in self.action_contract.joint_names],
                                  damping_rule=damping_rule, rng=np.random.default_rng(seed), label="spiking SAC",
                                  seed=seed)
        with model:
            self.actor = model.actor = LIFNetwork(
                Layers.from_arrays(arrays, "actor"), self.lif, spiking=self.spiking, synapse=syn,
                learning=None if rule is None else LocalLearning(online_lr, self.feedback.name, pre_synapse=syn,
                                                                 anchor_tau=self.anchor_tau),
                reference=_reference_layers(arrays, "actor"), label="actor", seed=seed, io_nodes=False)
            self.critics = model.critics = [] if not learns else [
                LIFNetwork(Layers.from_arrays(arrays, name), self.lif, spiking=False, learning=rule,
                           reference=_reference_layers(arrays, name), action_columns=(no, no + na), label=name,
                           io_nodes=False)
                for name in ("q1", "q2")]
        return model

    def _damping_scale(self) -> np.ndarray:
        """Action per unit of observed velocity, per joint, for a gain of 1 Nm s/rad (``torque = -gain dq``)."""
        return -np.array(self.observation_contract.dq_scale) / np.array(self.action_contract.torque_scale)

    def damping_gains(self) -> np.ndarray:
        """The learned damping gains [Nm s/rad] per joint (without the running trial's perturbation)."""
        weights = self.sim.signals[self._damping_mean] if self._damping_mean is not None else self._io[
            "damping_weights"]
        return np.diag(weights) / self._damping_scale()

    # --- the API the controller node calls ------------------------------------------------------------

    def step(self, obs: np.ndarray, reward: float | None = None, *, checked: bool = False) -> np.ndarray:
        """Advance the simulator one tick (``steps_per_tick`` steps of ``dt``) with this observation; returns the
        action in [-1, 1]: :meth:`act` then :meth:`finish`.

        ``reward`` is the reward for the tick that led here (None: no learning from this tick). ``checked``: the
        caller encoded ``obs`` from values it validated (the control tick), so it is not checked again.
        """
        action = self.act(obs, reward, checked=checked)
        self.finish()
        return action

    def act(self, obs: np.ndarray, reward: float | None = None, *, checked: bool = False) -> np.ndarray:
        """The first part of :meth:`step`: the tick's operators up to the policy head, which gives the action; the
        critics and every learning operator wait for :meth:`finish`, so that a controller can send the command
        before the learning runs. The operators run in the simulator's own order either way: act then finish is
        :meth:`step`, bit for bit. A tick left unfinished is finished first. Raises ``FloatingPointError`` on a
        non-finite action, and the tick then learns nothing."""
        self.finish()
        if not checked:
            obs = np.asarray(obs, dtype=float)
            if obs.shape != (self.obs_dim,) or not np.all(np.isfinite(obs)):
                raise ValueError(f"observation must be {self.obs_dim} finite values, got {obs!r}")
        self.set_inputs(obs, reward)
        modulation, io = self._io.get("modulation"), self._io
        for _ in range(self.steps_per_tick - 1):
            self.sim.step()
            if modulation is not None:
                modulation[1] = 0.0  # a trial ends on the tick's first step only
        self._run(self._to_action)
        self._raster[self._total_ticks % RASTER_TICKS] = self._spikes[: self._raster.shape[1]] > 0
        self._total_ticks += 1
        action = io["action"].copy()
        if not np.isfinite(action).all():
            self._io["has_previous_q"][0] = 0.0  # the TD error restarts after the skipped learning
            raise FloatingPointError("the actor produced a non-finite action")
        self._unfinished = True
        return action

    def finish(self) -> None:
        """The rest of the tick :meth:`act` began (critics, errors, weight updates) and the simulator's probes; does
        nothing when no tick is unfinished."""
        if not self._unfinished:
            return
        self._unfinished = False
        self._run(self._after_action)
        self.sim._probe()

    def _run(self, steps: list) -> None:
        """Some of one simulator step's operator functions, under the error settings ``Simulator.step`` uses."""
        old = np.seterr(invalid="raise", divide="ignore")
        try:
            for step in steps:
                step()
        finally:
            np.seterr(**old)

    def set_inputs(self, obs: np.ndarray, reward: float | None) -> None:
        """Write a tick's observation and reward into the network, unchecked, without stepping it (:meth:`step`
        checks and steps; a benchmark times ``sim.step()`` alone)."""
        io = self._io
        io["observation"][...] = obs
        io["reward"][0] = 0.0 if reward is None else float(reward)
        io["has_reward"][0] = reward is not None
        modulation = io.get("modulation")
        if modulation is not None:
            modulation[...] = (-float(reward) if reward is not None else 0.0, self._trial_end, self.learning)
        self._trial_end = False

    @property
    def learning(self) -> bool:
        return bool(self._io["learning"][0])

    @learning.setter
    def learning(self, on: bool) -> None:
        if on and self.actor_only:
            raise ValueError("this agent was built with actor_only=True: it has no critics to learn from")
        self._io["learning"][0] = bool(on)
        self._io["has_previous_q"][0] = 0.0  # no TD error across the switch

    @property
    def updates(self) -> int:
        """TD updates since the agent was built."""
        return int(self._io["td_updates"][0])

    @property
    def exploration_noise(self) -> np.ndarray:
        """The policy's current exploration sample (zeros while it acts with ``tanh(mean)``)."""
        return self._io["eps"].copy()

    def activity(self) -> dict[str, list[np.ndarray]]:
        """The last simulator step's hidden-layer activities per network (``actor``, ``q1``, ``q2``; copies): the
        actor's spikes (``amplitude / dt`` where a neuron spiked, else 0) or rates, the critics' rates (they stand
        still while learning is off). What a cost model counts events from."""
        nets = [("actor", self.actor), *zip(("q1", "q2"), self.critics)]
        sig, signals = self.sim.model.sig, self.sim.signals
        return {name: [signals[sig[net][f"a{i}"]].copy() for i in range(len(net.sizes) - 2)] for name, net in nets}

    def end_episode(self) -> None:
        """The target changed or the reach ended: no TD error across the boundary; new exploration sample;
        the damping's perturbation trial ends."""
        self._io["has_previous_q"][0] = 0.0
        self._io["episode_steps"][0] = 0.0
        self._trial_end = True

    def current_arrays(self) -> dict[str, np.ndarray]:
        """Checkpoint arrays with the weights as they are now in the simulator, and their anchor reference."""
        arrays = dict(self.checkpoint.arrays)
        kind = "D" if self.feedback.hidden == "direct" else "B"
        for name, net in [("actor", self.actor), *zip(("q1", "q2"), self.critics)]:
            arrays.update({REFERENCE_PREFIX + k: v for k, v in
                           _reference_layers(self.checkpoint.arrays, name).arrays(name, kind).items()})
            arrays.update(net.read_layers(self.sim).arrays(name, kind))
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
