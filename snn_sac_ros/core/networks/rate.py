"""The rate twin of the Nengo networks: LIF-rate layers in NumPy, for batched replay training.

A :class:`LIFRateNet` is ``input -> LIF -> LIF -> linear output``: the same weights the Nengo network
(:mod:`snn_sac_ros.core.networks.nengo_nets`) puts on its connections, with the same LIF rate function
(``nengo.LIFRate``), so the rate-mode Nengo simulator reproduces this forward pass exactly. Learning
goes through the local rule functions of :mod:`snn_sac_ros.core.nengo_ext.learning_rules`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from snn_sac_ros.core.nengo_ext.learning_rules import (
    LIFParams,
    RuleState,
    apply_local_rule,
    feedback_error,
    lif_rate,
    random_feedback,
)

FEEDBACK_MODES = ("exact", "random")


@dataclass
class Cache:
    """What a forward pass keeps for the learning step: each layer's input and hidden currents."""

    inputs: list[np.ndarray] = field(default_factory=list)  # pre activity of each layer
    currents: list[np.ndarray] = field(default_factory=list)  # hidden layers' input currents J


class LIFRateNet:
    """Weights ``W[l]`` (post, pre) and biases ``b[l]`` of a feed-forward LIF-rate network.

    Parameters
    ----------
    sizes: layer widths, input first, output last (hidden layers are LIF, the output is linear).
    lif: neuron constants. feedback: how hidden errors are formed (``"exact"`` or ``"random"``).
    seed: initialisation and feedback-matrix seed. out_scale: initial output weights' scale.
    """

    def __init__(self, sizes: tuple[int, ...], lif: LIFParams, feedback: str = "exact", seed: int = 0,
                 out_scale: float = 0.1) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        self.sizes, self.lif, self.feedback, self.seed = tuple(sizes), lif, feedback, seed
        rng = np.random.default_rng(seed)
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = i == len(sizes) - 2
            scale = out_scale if last else 1.0
            self.W.append((rng.uniform(-1, 1, (n_out, n_in)) * scale * np.sqrt(3.0 / n_in)).astype(np.float32))
            self.b.append(np.zeros(n_out, np.float32) if last else np.ones(n_out, np.float32))
        self.B = [random_feedback(w.shape, seed + 1000 + i).astype(np.float32) for i, w in enumerate(self.W)]
        self.states_W = [RuleState.zeros(w.shape) for w in self.W]
        self.states_b = [RuleState.zeros(b.shape) for b in self.b]

    @property
    def n_hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]

    def calibrate(self, x: np.ndarray, seed: int = 0) -> None:
        """Set hidden biases so each neuron fires for a random 20-80 % share of the sampled inputs.

        Matches the intercepts to the input distribution the prototype warned about: neurons that never
        fire, or always fire, carry no information and no gradient.
        """
        rng = np.random.default_rng(seed)
        h = np.asarray(x, np.float32)
        for i in range(len(self.W) - 1):
            drive = h @ self.W[i].T
            q = rng.uniform(0.2, 0.8, drive.shape[1])
            thresholds = np.array([np.quantile(drive[:, k], q[k]) for k in range(drive.shape[1])])
            self.b[i] = (1.0 - thresholds).astype(np.float32)
            h = lif_rate(drive + self.b[i], self.lif)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Cache]:
        """Output for a batch ``x`` (batch, n_in), and the cache for :meth:`backward`."""
        cache = Cache()
        h = x
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            cache.inputs.append(h)
            j = h @ w.T
            j += b
            if i == len(self.W) - 1:
                return j, cache
            cache.currents.append(j)
            h = lif_rate(j, self.lif)
        raise AssertionError("unreachable")

    def layer_errors(self, cache: Cache, error_out: np.ndarray, exact: bool | None = None) -> list[np.ndarray]:
        """Error at every layer's post side, from the output error, sent back through the network.

        ``exact=None`` uses the network's feedback mode; the critic's action gradient always needs
        exact feedback (``exact=True``).
        """
        exact = self.feedback == "exact" if exact is None else exact
        errors = [error_out]
        for i in range(len(self.W) - 1, 0, -1):
            fb = self.W[i] if exact else self.B[i]
            errors.append(feedback_error(errors[-1], fb, cache.currents[i - 1], self.lif, cache.inputs[i]))
        return errors[::-1]

    def input_gradient(self, cache: Cache, error_out: np.ndarray) -> np.ndarray:
        """d output / d input times ``error_out`` (exact feedback), e.g. a critic's action gradient."""
        return self.layer_errors(cache, error_out, exact=True)[0] @ self.W[0]

    def learn(self, cache: Cache, error_out: np.ndarray, learning_rate: float) -> None:
        """Apply the local rule to every connection, from the output error."""
        for i, err in enumerate(self.layer_errors(cache, error_out)):
            self.W[i] += apply_local_rule(cache.inputs[i], err, self.states_W[i], learning_rate,
                                          np.empty(self.W[i].shape, np.float32))
            self.b[i] += apply_local_rule(cache.inputs[i], err, self.states_b[i], learning_rate,
                                          np.empty(self.b[i].shape, np.float32), bias=True)

    def copy_weights_from(self, other: LIFRateNet) -> None:
        for dst, src in zip(self.W + self.b, other.W + other.b):
            dst[...] = src

    def polyak_from(self, other: LIFRateNet, tau: float) -> None:
        """Target-network update: ``theta_target <- tau theta + (1 - tau) theta_target``."""
        for target, src in zip(self.W + self.b, other.W + other.b):
            np.multiply(target, 1.0 - tau, out=target)
            np.add(target, tau * src, out=target)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Weights as named arrays for a checkpoint."""
        out = {f"{prefix}/W{i}": w for i, w in enumerate(self.W)}
        out.update({f"{prefix}/b{i}": b for i, b in enumerate(self.b)})
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        for i in range(len(self.W)):
            w, b = arrays[f"{prefix}/W{i}"], arrays[f"{prefix}/b{i}"]
            if w.shape != self.W[i].shape or b.shape != self.b[i].shape:
                raise ValueError(f"{prefix} layer {i}: checkpoint shape {w.shape} does not match {self.W[i].shape}")
            self.W[i] = np.array(w, np.float32)
            self.b[i] = np.array(b, np.float32)
