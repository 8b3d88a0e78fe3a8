"""Soft Actor-Critic with LIF-rate networks and local learning rules, trained from replay.

Reads top to bottom like CleanRL's ``sac_continuous_action.py``: config, the actor's squashed Gaussian,
the agent (actor, twin critics, their slow target weights, the temperature), its update, then the training
loop. The difference from deep SAC is how weights change: no autograd. Every synapse changes by
:func:`~snn_sac_ros.core.learning.rules.apply_local_rule` from its presynaptic activity, the error at its
postsynaptic neurons and its own Adam moments. How that error reaches the hidden layers, and how the critics
form the actor's action gradient dQ/da, is the feedback mode (:mod:`snn_sac_ros.core.learning.feedback`):
``exact`` is backpropagation computed by these local updates (it reads the forward weights: weight
transport); ``kp`` (Kolen-Pollack), ``fa`` and ``dfa`` read no forward weight anywhere. The critics learn from
the TD error, the actor from the action gradient minus the entropy term. The same math runs inside the Nengo
operators for online learning (:mod:`snn_sac_ros.core.nengo_ext.builder`).

The TD target uses each critic synapse's slow copy of its own weight (Polyak averaging, SAC's target
network): a synapse reads only its own weight for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from snn_sac_ros.core.agent.replay import ReplayBuffer
from snn_sac_ros.core.learning.feedback import feedback_mode
from snn_sac_ros.core.learning.lif import LIFParams
from snn_sac_ros.core.learning.policy import actor_output_error, gaussian_head, sample_action
from snn_sac_ros.core.learning.rules import RuleState, apply_local_rule
from snn_sac_ros.core.networks.rate import LIFRateNet


@dataclass
class SACConfig:
    """Hyperparameters (defaults follow SB3/CleanRL SAC where they apply)."""

    hidden: tuple[int, ...] = (256, 256)
    """neurons per hidden LIF layer (actor and each critic)"""
    gamma: float = 0.99
    """discount per control step"""
    tau: float = 0.005
    """Polyak rate of the target critics"""
    batch_size: int = 256
    """replay minibatch size"""
    buffer_size: int = 1_000_000
    """replay capacity"""
    learning_starts: int = 1000
    """random-action steps before learning (their observations also calibrate the neurons' biases)"""
    actor_lr: float = 3e-4
    """local-rule step size of the actor's connections"""
    critic_lr: float = 1e-3
    """local-rule step size of the critics' connections"""
    alpha_lr: float = 1e-3
    """step size of log(alpha)"""
    target_entropy_per_action: float = -0.5
    """entropy the temperature is tuned toward, per action dimension. SB3 and CleanRL use -1; -0.5 keeps
    more exploration, which reaches more of planar2's targets behind the arm: see README"""
    feedback: str = "exact"
    """how errors reach hidden layers and dQ/da is formed (``feedback.FEEDBACK_MODES``): "exact" is backprop"""
    feedback_weight_decay: float = 1e-4
    """per update, for feedback that learns (Kolen-Pollack): forward and feedback matrices decay alike"""
    input_feedback_decay: float = 1e-3
    """the same for the critics' input feedback C and the action columns it mirrors: these start far apart (C is
    random, the action columns of a small input layer are large), and dQ/da needs them aligned early"""
    update_every: int = 1
    """env steps per gradient update"""
    lif: LIFParams = field(default_factory=LIFParams)
    """LIF neuron constants"""

    def __post_init__(self) -> None:
        self.feedback = feedback_mode(self.feedback).name
        for name in ("feedback_weight_decay", "input_feedback_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SACConfig:
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        d["lif"] = LIFParams(**d["lif"])
        d.setdefault("target_entropy_per_action", -1.0)  # what checkpoints from before the field trained with
        d.setdefault("feedback_weight_decay", 0.0)
        d.setdefault("input_feedback_decay", 0.0)
        d.pop("feedback_scale", None)
        return cls(**d)


# --- the agent --------------------------------------------------------------------------------------


class SpikingSAC:
    """Actor, twin critics with Polyak targets, auto-tuned temperature; all LIF-rate, all local rules."""

    def __init__(self, obs_dim: int, act_dim: int, config: SACConfig | None = None, seed: int = 0) -> None:
        self.config = c = config or SACConfig()
        self.obs_dim, self.act_dim, self.seed = obs_dim, act_dim, seed
        self.rng = np.random.default_rng(seed)
        action = (obs_dim, obs_dim + act_dim)
        learned = {"weight_decay": c.feedback_weight_decay}
        critic = {**learned, "input_decay": c.input_feedback_decay}
        self.actor = LIFRateNet((obs_dim, *c.hidden, 2 * act_dim), c.lif, c.feedback, seed=seed * 10 + 1,
                                out_scale=0.01, **learned)
        self.q1 = LIFRateNet((obs_dim + act_dim, *c.hidden, 1), c.lif, c.feedback, seed=seed * 10 + 2,
                             input_columns=action, **critic)
        self.q2 = LIFRateNet((obs_dim + act_dim, *c.hidden, 1), c.lif, c.feedback, seed=seed * 10 + 3,
                             input_columns=action, **critic)
        # the critics' slow weights (forward only: they never learn, so they carry no feedback)
        self.q1_target = LIFRateNet(self.q1.sizes, c.lif, "exact", seed=seed * 10 + 2)
        self.q2_target = LIFRateNet(self.q2.sizes, c.lif, "exact", seed=seed * 10 + 3)
        self.target_entropy = c.target_entropy_per_action * act_dim
        self.log_alpha = np.zeros(1)
        self._alpha_state = RuleState.zeros((1,))
        self.updates = 0

    @property
    def alpha(self) -> float:
        return float(np.exp(self.log_alpha[0]))

    def calibrate(self, obs: np.ndarray, actions: np.ndarray) -> None:
        """Match the hidden neurons' biases to the observed input distribution; sync the targets."""
        self.actor.calibrate(obs, seed=self.seed * 10 + 1)
        critic_in = np.concatenate([obs, actions], axis=1)
        self.q1.calibrate(critic_in, seed=self.seed * 10 + 2)
        self.q2.calibrate(critic_in, seed=self.seed * 10 + 3)
        self.q1_target.copy_weights_from(self.q1)
        self.q2_target.copy_weights_from(self.q2)

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action in [-1, 1] for one observation (rate mode)."""
        out, _ = self.actor.forward(np.asarray(obs, np.float32)[None])
        mean, log_std, _ = gaussian_head(out, self.act_dim)
        if deterministic:
            return np.tanh(mean[0])
        return sample_action(mean, log_std, self.rng.standard_normal(mean.shape))[0][0]

    def update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
               dones: np.ndarray) -> dict[str, float]:
        """One SAC update on a minibatch, every weight changed by its local rule."""
        c, alpha = self.config, self.alpha

        # soft Bellman target: min of the twin targets, minus the entropy term, at a fresh next action
        out_next, _ = self.actor.forward(next_obs)
        mean, log_std, _ = gaussian_head(out_next, self.act_dim)
        next_a, next_logp = sample_action(mean, log_std, self.rng.standard_normal(mean.shape))
        next_in = np.concatenate([next_obs, next_a], axis=1).astype(np.float32)
        q_next = np.minimum(self.q1_target.forward(next_in)[0], self.q2_target.forward(next_in)[0])
        y = rewards + c.gamma * (1.0 - dones) * (q_next - alpha * next_logp)

        # critics: the TD error is the output error of each critic
        critic_in = np.concatenate([obs, actions], axis=1)
        q1, cache1 = self.q1.forward(critic_in)
        q2, cache2 = self.q2.forward(critic_in)
        td1, td2 = q1 - y, q2 - y
        self.q1.learn(cache1, td1.astype(np.float32), c.critic_lr)
        self.q2.learn(cache2, td2.astype(np.float32), c.critic_lr)

        # actor: the critic's action gradient minus the entropy term, sent back through the actor
        out, actor_cache = self.actor.forward(obs)
        mean, log_std, dlogstd_draw = gaussian_head(out, self.act_dim)
        eps = self.rng.standard_normal(mean.shape)
        a, logp = sample_action(mean, log_std, eps)
        pi_in = np.concatenate([obs, a], axis=1).astype(np.float32)
        qa1, qc1 = self.q1.forward(pi_in)
        qa2, qc2 = self.q2.forward(pi_in)
        use1 = qa1 <= qa2  # gradient of the min of the twins
        ones = np.ones_like(qa1, dtype=np.float32)
        grad1 = self.q1.input_gradient(qc1, ones)
        grad2 = self.q2.input_gradient(qc2, ones)
        dq_da = np.where(use1, grad1, grad2)
        error = actor_output_error(a, log_std, dlogstd_draw, eps, dq_da, alpha=alpha)
        self.actor.learn(actor_cache, error.astype(np.float32), c.actor_lr)

        # temperature: d(-log_alpha (log pi + target entropy)) / d log_alpha
        alpha_err = -(logp + self.target_entropy)
        self.log_alpha += apply_local_rule(None, alpha_err, self._alpha_state, c.alpha_lr, np.empty(1), bias=True)

        # the critics' slow weights follow their weights (Polyak averaging)
        self.q1_target.polyak_from(self.q1, c.tau)
        self.q2_target.polyak_from(self.q2, c.tau)
        self.updates += 1
        return {"qf_loss": float(0.5 * (np.mean(td1**2) + np.mean(td2**2))),
                "actor_loss": float(np.mean(alpha * logp - np.minimum(qa1, qa2))), "alpha": alpha}

    # --- weights as arrays, for checkpoints -------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in ("actor", "q1", "q2", "q1_target", "q2_target"):
            out.update(getattr(self, name).arrays(name))
        out["log_alpha"] = self.log_alpha.copy()
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name in ("actor", "q1", "q2", "q1_target", "q2_target"):
            getattr(self, name).load_arrays(arrays, name)
        self.log_alpha = np.array(arrays["log_alpha"], float)


# --- training loop ----------------------------------------------------------------------------------


@dataclass
class EpisodeRecord:
    step: int
    episode: int
    episode_return: float
    final_distance: float
    success_2cm: bool
    success_5cm: bool


def train(env: object, agent: SpikingSAC, steps: int, seed: int,
          on_step: Callable[[int, list[EpisodeRecord], dict[str, float]], None] | None = None
          ) -> tuple[list[EpisodeRecord], float]:
    """Train ``agent`` on ``env`` for ``steps`` env steps; returns the episode records and wall time [s]."""
    c = agent.config
    rb = ReplayBuffer(agent.obs_dim, agent.act_dim, min(c.buffer_size, max(steps, 1)), seed=seed)
    rng = np.random.default_rng(seed + 7)
    episodes: list[EpisodeRecord] = []
    metrics: dict[str, float] = {}
    episode_return = 0.0
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    for global_step in range(steps):
        # act: random at first, then the stochastic policy
        if global_step < c.learning_starts:
            action = rng.uniform(-1.0, 1.0, agent.act_dim).astype(np.float32)
        else:
            action = agent.act(obs).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        rb.add(obs, action, reward, next_obs, terminated)  # truncation bootstraps: done only if terminated
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            d = float(info["distance"])
            episodes.append(EpisodeRecord(global_step + 1, len(episodes), episode_return, d, d <= 0.02, d <= 0.05))
            episode_return = 0.0
            obs, _ = env.reset()

        # learn: calibrate the neurons once on the random-action data, then one update per step
        if global_step + 1 == c.learning_starts or (c.learning_starts == 0 and global_step == 0):
            agent.calibrate(rb.obs[: rb.size], rb.actions[: rb.size])
        if global_step + 1 >= c.learning_starts and rb.size >= c.batch_size and global_step % c.update_every == 0:
            metrics = agent.update(*rb.sample(c.batch_size))
        if on_step is not None:
            on_step(global_step, episodes, metrics)
    return episodes, time.perf_counter() - start
