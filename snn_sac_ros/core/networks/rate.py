"""The rate twin of the Nengo networks: LIF-rate layers in NumPy, for batched replay training.

A :class:`LIFRateNet` is ``input -> LIF -> LIF -> linear output``: the same weights the Nengo network puts on its
connections, with the same LIF rate function (``nengo.LIFRate``), so the rate-mode Nengo simulator reproduces this
forward pass exactly. Learning goes through the shared learning math (:mod:`snn_sac_ros.core.learning`): the
feedback mode says how hidden layers get their errors (:mod:`~snn_sac_ros.core.learning.feedback`), and every
synapse, forward or feedback, changes by the local rule of :mod:`~snn_sac_ros.core.learning.rules`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from snn_sac_ros.core.learning.feedback import derivatives, feedback_mode, hidden_errors, send_back
from snn_sac_ros.core.learning.lif import LIFParams, lif_rate
from snn_sac_ros.core.learning.rules import (
    RuleState,
    adam_step,
    apply_local_rule,
    decay,
    local_gradient,
    random_feedback,
)


@dataclass
class Cache:
    """What a forward pass keeps for the learning step: each layer's input and hidden currents."""

    inputs: list[np.ndarray] = field(default_factory=list)  # pre activity of each layer
    currents: list[np.ndarray] = field(default_factory=list)  # hidden layers' input currents J


class LIFRateNet:
    """Weights ``W[l]`` (post, pre), biases ``b[l]`` (post,) and feedback matrices of a feed-forward LIF-rate network.

    Parameters
    ----------
    sizes: layer widths, input first, output last (hidden layers are LIF, the output is linear).
    lif: neuron constants. feedback: the feedback mode's name (:data:`~snn_sac_ros.core.learning.feedback.
        FEEDBACK_MODES`). seed: initialisation and feedback-matrix seed. out_scale: initial output weights' scale.
    input_columns: ``(start, stop)`` of the inputs whose gradient :meth:`input_gradient` gives (a critic's
        action); they get an input feedback matrix ``C`` where the mode does not use the forward weights.
    weight_decay: per update, for modes that learn their feedback (Kolen-Pollack): every learned feedback matrix
        and its forward twin shrink by this factor, which makes their difference vanish.
    input_decay: the same for the input feedback ``C`` and the input columns it mirrors (default: ``weight_decay``).

    Attributes
    ----------
    B: per hidden layer ``l``, the matrix (``W[l + 1]``'s shape) that carries errors down to it (random and
        learned paths); D: per hidden layer, ``(n_out, n_l)`` from the output (direct path); C: the input
        feedback ``(n_hidden_0, n_columns)``. Each is None where the mode does not use it.
    """

    def __init__(self, sizes: tuple[int, ...], lif: LIFParams, feedback: str = "exact", seed: int = 0,
                 out_scale: float = 0.1, *, input_columns: tuple[int, int] | None = None,
                 weight_decay: float = 0.0, input_decay: float | None = None) -> None:
        self.mode = feedback_mode(feedback)
        self.sizes, self.lif, self.feedback, self.seed = tuple(sizes), lif, self.mode.name, seed
        self.input_columns = input_columns
        self.weight_decay = float(weight_decay) if self.mode.learns_feedback else 0.0
        self.input_decay = self.weight_decay if input_decay is None or not self.mode.learns_feedback else input_decay
        rng = np.random.default_rng(seed)
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = i == len(sizes) - 2
            scale = out_scale if last else 1.0
            self.W.append((rng.uniform(-1, 1, (n_out, n_in)) * scale * np.sqrt(3.0 / n_in)).astype(np.float32))
            self.b.append(np.zeros(n_out, np.float32) if last else np.ones(n_out, np.float32))
        n_hidden = len(self.W) - 1
        hidden, action = self.mode.hidden, self.mode.action
        # the seeds feedback alignment's matrices always had (seed + 1000 + index of the forward layer they mirror)
        self.B = [random_feedback(self.W[i + 1].shape, seed + 1000 + i + 1).astype(np.float32)
                  if hidden in ("random", "learned") else None for i in range(n_hidden)]
        self.D = [random_feedback((sizes[-1], sizes[i + 1]), seed + 2000 + i).astype(np.float32)
                  if hidden == "direct" else None for i in range(n_hidden)]
        self.C = None
        if input_columns is not None and action != "transpose":
            # like the action columns of W_0 it stands for (fan-in: every input)
            self.C = random_feedback((sizes[1], input_columns[1] - input_columns[0]), seed + 3000,
                                     fan_in=sizes[0]).astype(np.float32)
        self.states_W = [RuleState.zeros(w.shape) for w in self.W]
        self.states_b = [RuleState.zeros(b.shape) for b in self.b]
        learned = self.mode.learns_feedback
        self.states_B = [RuleState.zeros(b.shape) if learned and b is not None else None for b in self.B]
        self.state_C = RuleState.zeros(self.C.shape) if learned and self.C is not None else None

    @property
    def n_hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]

    def calibrate(self, x: np.ndarray, seed: int = 0) -> None:
        """Set hidden biases so each neuron fires for a random 20-80 % share of the sampled inputs.

        Neurons that never fire, or always fire, carry no information and no gradient.
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
        """Output for a batch ``x`` (batch, n_in), and the cache for learning."""
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

    def _paths(self, transpose: bool) -> list[np.ndarray]:
        if transpose:
            return self.W[1:]
        return self.D if self.mode.hidden == "direct" else self.B

    def _derivatives(self, cache: Cache) -> list[np.ndarray]:
        return derivatives(cache.currents, self.lif, cache.inputs[1:])

    def layer_errors(self, cache: Cache, error_out: np.ndarray) -> list[np.ndarray | None]:
        """Post error of every layer (input layer first) from the output error, by the network's feedback mode."""
        hidden = self.mode.hidden
        return hidden_errors(hidden, error_out, self._paths(hidden == "transpose"),
                             None if hidden == "frozen" else self._derivatives(cache))

    def input_gradient(self, cache: Cache, error_out: np.ndarray) -> np.ndarray:
        """d output / d input at ``input_columns``, times ``error_out``: a critic's action gradient.

        Through the transposed forward weights where the mode's action path is ``transpose``, else through the
        network's own feedback path and its input feedback ``C``.
        """
        start, stop = self.input_columns
        derivative = self._derivatives(cache)
        if self.mode.action == "transpose":
            return (hidden_errors("transpose", error_out, self.W[1:], derivative)[0] @ self.W[0])[:, start:stop]
        if self.mode.hidden == "direct":
            return send_back(error_out, self.D[0], derivative[0]) @ self.C
        return hidden_errors(self.mode.hidden, error_out, self.B, derivative)[0] @ self.C

    def learn(self, cache: Cache, error_out: np.ndarray, learning_rate: float) -> None:
        """Apply the local rule to every learning connection, and to learned feedback, from the output error."""
        learned = self.mode.learns_feedback
        for i, err in enumerate(self.layer_errors(cache, error_out)):
            if err is None:
                continue
            if learned:
                self._learn_mirrored(i, cache.inputs[i], err, learning_rate)
            else:
                self.W[i] += apply_local_rule(cache.inputs[i], err, self.states_W[i], learning_rate,
                                              np.empty(self.W[i].shape, np.float32))
            self.b[i] += apply_local_rule(cache.inputs[i], err, self.states_b[i], learning_rate,
                                          np.empty(self.b[i].shape, np.float32), bias=True)
        if self.weight_decay > 0:  # each learned feedback matrix and its forward twin, alike
            for i, path in enumerate(self.B):
                decay(self.W[i + 1], self.weight_decay)
                decay(path, self.weight_decay)
        if self.input_decay > 0 and self.C is not None:
            start, stop = self.input_columns
            self.W[0][:, start:stop] *= np.float32(1.0 - self.input_decay)
            decay(self.C, self.input_decay)

    def _learn_mirrored(self, i: int, pre: np.ndarray, error: np.ndarray, learning_rate: float) -> None:
        """Layer ``i``'s forward update and the same update at its feedback synapses (Kolen-Pollack).

        A feedback synapse of ``B[i - 1]`` joins the same two neurons as its forward twin in ``W[i]`` and sees the
        same pre activity and post error, so its gradient is the same product: computed once, then each synapse
        takes its own Adam step from its own moments.
        """
        grad = local_gradient(pre, error)
        self.W[i] += adam_step(grad, self.states_W[i], learning_rate, np.empty(self.W[i].shape, np.float32))
        if i >= 1 and self.B[i - 1] is not None:
            self.B[i - 1] += adam_step(grad, self.states_B[i - 1], learning_rate, np.empty(grad.shape, np.float32))
        if i == 0 and self.C is not None:
            start, stop = self.input_columns
            self.C += adam_step(grad[:, start:stop], self.state_C, learning_rate, np.empty(self.C.shape, np.float32))

    def feedback_and_weights(self) -> list[np.ndarray]:
        """Every forward matrix and every feedback matrix the network holds."""
        return [*self.W, *(m for m in (*self.B, *self.D, self.C) if m is not None)]

    def copy_weights_from(self, other: LIFRateNet) -> None:
        for dst, src in zip(self.W + self.b, other.W + other.b):
            dst[...] = src

    def polyak_from(self, other: LIFRateNet, tau: float) -> None:
        """Slow weights: ``theta_slow <- tau theta + (1 - tau) theta_slow``, each synapse from its own twin."""
        for target, src in zip(self.W + self.b, other.W + other.b):
            np.multiply(target, 1.0 - tau, out=target)
            np.add(target, tau * src, out=target)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Weights (and feedback matrices) as named arrays for a checkpoint."""
        out = {f"{prefix}/W{i}": w for i, w in enumerate(self.W)}
        out.update({f"{prefix}/b{i}": b for i, b in enumerate(self.b)})
        out.update({f"{prefix}/B{i}": m for i, m in enumerate(self.B) if m is not None})
        out.update({f"{prefix}/D{i}": m for i, m in enumerate(self.D) if m is not None})
        if self.C is not None:
            out[f"{prefix}/C"] = self.C
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        """Weights from a checkpoint; feedback matrices too where the mode has them (they are part of the net)."""
        def take(key: str, like: np.ndarray) -> np.ndarray:
            if key not in arrays:
                raise ValueError(f"checkpoint lacks {key}, which {self.feedback!r} feedback needs")
            if arrays[key].shape != like.shape:
                raise ValueError(f"{key}: checkpoint shape {arrays[key].shape} does not match {like.shape}")
            return np.array(arrays[key], np.float32)

        self.W = [take(f"{prefix}/W{i}", w) for i, w in enumerate(self.W)]
        self.b = [take(f"{prefix}/b{i}", b) for i, b in enumerate(self.b)]
        self.B = [None if m is None else take(f"{prefix}/B{i}", m) for i, m in enumerate(self.B)]
        self.D = [None if m is None else take(f"{prefix}/D{i}", m) for i, m in enumerate(self.D)]
        if self.C is not None:
            self.C = take(f"{prefix}/C", self.C)
