"""The local learning rules: LIF rate math against Nengo and finite differences, the rule against a NumPy
Adam reference, and the Nengo operators against the replay trainer (one online step == batch of one)."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from snn_sac_ros.core.learning import kernels
from snn_sac_ros.core.learning.feedback import FEEDBACK_MODES
from snn_sac_ros.core.learning.lif import LIFParams, LIFSpikes, lif_rate, lif_rate_derivative
from snn_sac_ros.core.learning.perturbation import PerturbationState, add_trial_cost, end_perturbation_trial
from snn_sac_ros.core.learning.rules import RuleState, anchor_pull, apply_local_rule
from snn_sac_ros.core.nengo_ext.learning_rules import LearnedConnection, LocalLearning, PerturbationDelta
from snn_sac_ros.core.nengo_ext.networks import Layers, LIFNetwork
from snn_sac_ros.core.nengo_ext.operators import ANCHOR_EVERY
from snn_sac_ros.core.networks.rate import LIFRateNet

LIF = LIFParams()


def test_lif_rate_matches_nengo_lifrate() -> None:
    j = np.linspace(-1.0, 8.0, 200)
    ref = nengo.LIFRate(tau_rc=LIF.tau_rc, tau_ref=LIF.tau_ref, amplitude=LIF.amplitude).rates(j, 1.0, 0.0)
    np.testing.assert_allclose(lif_rate(j, LIF), ref.ravel(), rtol=1e-6, atol=1e-9)


def test_lif_derivative_is_exact_above_threshold_and_bounded_below() -> None:
    j = np.linspace(1.0 + LIF.sigma + 1e-3, 10.0, 300)
    h = 1e-6
    fd = (lif_rate(j + h, LIF) - lif_rate(j - h, LIF)) / (2 * h)
    np.testing.assert_allclose(lif_rate_derivative(j, LIF), fd, rtol=1e-4)
    near = lif_rate_derivative(np.linspace(-2.0, 1.0 + LIF.sigma, 500), LIF)
    assert np.all(np.isfinite(near)) and np.all(near >= 0)
    assert near.max() <= lif_rate_derivative(np.array([1.0 + LIF.sigma]), LIF)[0] + 1e-9
    assert near[0] < 1e-6 < near[-1]  # decays below threshold but never a dead zero near it


def test_rule_math_never_makes_subnormal_floats() -> None:
    """Subnormal floats cost ~100x per operation: far below threshold the derivative is exactly 0, and the
    adaptive rule's second moment stays above float32's smallest normal value however small the gradient."""
    tiny = np.finfo(np.float32).tiny
    d = lif_rate_derivative(np.linspace(-50.0, 2.0, 100_001).astype(np.float32), LIF)
    assert not np.any((d != 0) & (np.abs(d) < tiny))
    assert d[0] == 0.0 and lif_rate_derivative(np.array([0.99], np.float32), LIF)[0] > 0
    state, rng = RuleState.zeros((4, 5)), np.random.default_rng(0)
    for _ in range(20):
        apply_local_rule(rng.random((8, 5)).astype(np.float32), 1e-24 * rng.normal(size=(8, 4)).astype(np.float32),
                         state, 1e-3, np.empty((4, 5), np.float32))
    assert np.all(state.v >= tiny)


def test_local_rule_matches_numpy_adam() -> None:
    rng = np.random.default_rng(0)
    state = RuleState.zeros((3, 4))
    m, v = np.zeros((3, 4)), np.zeros((3, 4))
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    for t in range(1, 6):
        pre, err = rng.normal(size=(8, 4)), rng.normal(size=(8, 3))
        delta = apply_local_rule(pre, err, state, lr, np.empty((3, 4)))
        g = err.T @ pre / 8
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(delta, ref, rtol=1e-4, atol=1e-9)


# Plain NumPy forms of the rule math (nengo.LIFRate's expression, the derivative and Adam written out op by
# op): the package computes the same numbers in fused numba kernels, and must match them bit for bit.


def _numpy_lif_rate(current: np.ndarray, p: LIFParams) -> np.ndarray:
    j = current - current.dtype.type(1.0)
    out = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / np.maximum(j, 1e-30)))
    out *= j > 0
    return out


def _numpy_lif_rate_derivative(current: np.ndarray, p: LIFParams) -> np.ndarray:
    j = current - current.dtype.type(1.0)
    jc = np.maximum(j, p.sigma)
    out = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / jc))
    out = out * out * (p.tau_rc / p.amplitude) / (jc * (jc + 1.0))
    out *= j >= 0
    rate_at_sigma = p.amplitude / (p.tau_ref + p.tau_rc * np.log1p(1.0 / p.sigma))
    at_sigma = float(p.tau_rc / p.amplitude * rate_at_sigma * rate_at_sigma / (p.sigma * (p.sigma + 1.0)))
    decaying = (j < 0) & (j >= -25.0 * p.sigma)
    out += np.exp(np.clip(j, -25.0 * p.sigma, 0.0) * (1.0 / p.sigma)) * at_sigma * decaying
    return out


def _numpy_adam(grad: np.ndarray, state: RuleState, lr: float, delta: np.ndarray) -> np.ndarray:
    b1, b2 = 0.9, 0.999
    state.t += 1.0
    t = float(state.t[0])
    state.v[...] = np.maximum(state.v * b2 + grad * (1.0 - b2) * grad, 1e-30)
    state.m[...] = state.m * b1 + grad * (1.0 - b1)
    delta[...] = state.m / (np.sqrt(state.v) + 1e-8)
    delta *= -(lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t))
    return delta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_rate_and_derivative_are_the_numpy_numbers_bit_for_bit(dtype: type) -> None:
    """Across threshold, the held band, the decay and its cut-off, huge and non-finite currents."""
    lif = LIFParams()
    edges = [1.0, 1.0 + lif.sigma, 1.0 - 25 * lif.sigma, 0.0, -1e30, 1e30, np.inf, -np.inf, np.nan]
    current = np.concatenate([np.linspace(-3.0, 6.0, 20000), 1.0 + np.linspace(-2e-6, 2e-6, 41),
                              1.0 + lif.sigma * np.linspace(0.0, 1.2, 101), edges]).astype(dtype)
    with np.errstate(all="ignore"):
        rate, ref_rate = lif_rate(current, lif), _numpy_lif_rate(current, lif)
        derivative, ref_derivative = lif_rate_derivative(current, lif), _numpy_lif_rate_derivative(current, lif)
    np.testing.assert_array_equal(rate, ref_rate)
    np.testing.assert_array_equal(derivative, ref_derivative)
    # replay training passes the forward pass's rates to skip a logarithm: the same numbers again
    np.testing.assert_array_equal(lif_rate_derivative(current, lif, ref_rate), ref_derivative)
    assert rate.dtype == derivative.dtype == dtype
    assert np.isnan(rate[-1]) and np.isnan(derivative[-1])  # bad input is not hidden as a silent neuron
    block = current[:20000].reshape(200, 100)  # batches come as 2-D arrays; strided ones too
    np.testing.assert_array_equal(lif_rate(block, lif), ref_rate[:20000].reshape(200, 100))
    np.testing.assert_array_equal(lif_rate_derivative(block[:, ::2], lif),
                                  ref_derivative[:20000].reshape(200, 100)[:, ::2])


@pytest.mark.parametrize(("grad_dtype", "delta_dtype"), [(np.float32, np.float32), (np.float64, np.float64)])
def test_fused_adam_step_is_the_numpy_number_bit_for_bit(grad_dtype: type, delta_dtype: type) -> None:
    """Replay updates (float32 throughout) and Nengo signals / the temperature (float64 with float32 moments)."""
    rng = np.random.default_rng(4)
    state, ref_state = RuleState.zeros((6, 5)), RuleState.zeros((6, 5))
    for _ in range(4):
        pre, err = rng.normal(size=(16, 5)).astype(grad_dtype), rng.normal(size=(16, 6)).astype(grad_dtype)
        delta = apply_local_rule(pre, err, state, 3e-4, np.empty((6, 5), delta_dtype))
        ref = _numpy_adam((err.T @ pre) / 16, ref_state, 3e-4, np.empty((6, 5), delta_dtype))
        np.testing.assert_array_equal(delta, ref)
        np.testing.assert_array_equal(state.m, ref_state.m)
        np.testing.assert_array_equal(state.v, ref_state.v)


def test_local_rule_refuses_state_it_could_not_write_in_place() -> None:
    state = RuleState(np.zeros((4, 6), np.float32)[:, ::2], np.zeros((4, 3), np.float32), np.zeros(1))
    with pytest.raises(ValueError, match="contiguous"):
        apply_local_rule(np.ones((2, 3)), np.ones((2, 4)), state, 1e-3, np.empty((4, 3)))


def test_exact_feedback_equals_finite_difference_gradient() -> None:
    """With exact feedback, e^T a for each layer is the loss gradient (where the LIF derivative is exact)."""
    lif = LIFParams(sigma=1e-9)  # no smoothing: the derivative is the LIF one (0 below threshold)
    net = LIFRateNet((5, 16, 12, 3), lif, "exact", seed=3, out_scale=1.0)
    net.W = [w.astype(np.float64) for w in net.W]
    net.b = [b.astype(np.float64) for b in net.b]
    rng = np.random.default_rng(1)
    x, target = rng.uniform(-1, 1, (6, 5)), rng.normal(size=(6, 3))
    net.calibrate(x, seed=1)
    net.b = [b.astype(np.float64) for b in net.b]

    def loss() -> float:
        y, _ = net.forward(x)
        return 0.5 * float(np.sum((y - target) ** 2)) / len(x)

    y, cache = net.forward(x)
    errors = net.layer_errors(cache, (y - target))
    for layer in range(3):
        grad = errors[layer].T @ cache.inputs[layer] / len(x)
        for _ in range(6):
            i, k = rng.integers(grad.shape[0]), rng.integers(grad.shape[1])
            old = net.W[layer][i, k]
            net.W[layer][i, k] = old + 1e-6
            up = loss()
            net.W[layer][i, k] = old - 1e-6
            down = loss()
            net.W[layer][i, k] = old
            assert grad[i, k] == pytest.approx((up - down) / 2e-6, rel=1e-3, abs=1e-8)


def _standalone(net: LIFRateNet, mode: str, x: np.ndarray, error: np.ndarray, learning: LocalLearning
                ) -> tuple[nengo.Network, LIFNetwork]:
    """A Nengo model of ``net`` (rate neurons) whose input is ``x`` and output error ``error``."""
    layers = Layers(tuple(net.W), tuple(net.b), tuple(m for m in (*net.B, *net.D) if m is not None), net.C)
    with nengo.Network(seed=0) as model:
        lifnet = LIFNetwork(layers, LIF, spiking=False, learning=learning, action_columns=net.input_columns)
        nengo.Connection(nengo.Node(x), lifnet.input, synapse=None)
        nengo.Connection(nengo.Node(error), lifnet.error, synapse=None)
    return model, lifnet


@pytest.mark.parametrize("mode", sorted(FEEDBACK_MODES))
def test_online_step_equals_batch_of_one_replay_step(mode: str) -> None:
    """One Nengo step with the rules on changes every weight, bias and learned feedback matrix as the replay
    network's error paths and the plain local rule do on a batch of one."""
    net = LIFRateNet((4, 20, 15, 2), LIF, mode, seed=7, out_scale=1.0, input_columns=(2, 4))
    rng = np.random.default_rng(2)
    net.calibrate(rng.uniform(-1, 1, (50, 4)), seed=2)
    x, e = rng.uniform(-1, 1, 4), rng.normal(size=2)
    lr = 1e-3
    model, lifnet = _standalone(net, mode, x, e, LocalLearning(lr, mode))
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.step()
        online = lifnet.read_layers(sim)

    _, cache = net.forward(x[None].astype(np.float32))
    errors = net.layer_errors(cache, e[None].astype(np.float32))
    changed = 0
    for i, err in enumerate(errors):
        if err is None:
            np.testing.assert_array_equal(online.weights[i], net.W[i])  # frozen hidden layers (pes)
            continue
        dw = apply_local_rule(cache.inputs[i], err, RuleState.zeros(net.W[i].shape), lr, np.empty(net.W[i].shape),
                              adaptive=False)
        db = apply_local_rule(None, err, RuleState.zeros(net.b[i].shape), lr, np.empty(net.b[i].shape), bias=True,
                              adaptive=False)
        np.testing.assert_allclose(online.weights[i] - net.W[i], dw, rtol=1e-3, atol=1e-7)
        np.testing.assert_allclose(online.biases[i] - net.b[i], db, rtol=1e-3, atol=1e-7)
        if i >= 1 and net.mode.learns_feedback:  # Kolen-Pollack: the feedback synapse takes its twin's update
            np.testing.assert_allclose(online.feedback[i - 1] - net.B[i - 1], dw, rtol=1e-3, atol=1e-7)
        if i == 0 and net.mode.learns_feedback:
            np.testing.assert_allclose(online.input_feedback - net.C, dw[:, 2:4], rtol=1e-3, atol=1e-7)
        changed += int(np.any(dw != 0))
    assert changed == (1 if mode == "pes" else 3)
    if not net.mode.learns_feedback:  # fixed feedback stays as it is
        for before, after in zip([m for m in (*net.B, *net.D) if m is not None], online.feedback):
            np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("mode", sorted(FEEDBACK_MODES))
def test_online_input_gradient_matches_the_trainers(mode: str) -> None:
    """A critic's dQ/da in Nengo (a unit output error through its feedback mode's path) is the replay network's."""
    net = LIFRateNet((6, 18, 14, 1), LIF, mode, seed=4, out_scale=1.0, input_columns=(4, 6))
    rng = np.random.default_rng(3)
    net.calibrate(rng.uniform(-1, 1, (40, 6)), seed=3)
    x = rng.uniform(-1, 1, 6)
    model, lifnet = _standalone(net, mode, x, np.zeros(1), LocalLearning(0.0, mode))
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.step()
        gradient = sim.signals[sim.model.sig[lifnet]["input_gradient"]].copy()
    _, cache = net.forward(x[None].astype(np.float32))
    np.testing.assert_allclose(gradient, net.input_gradient(cache, np.ones((1, 1), np.float32))[0], rtol=1e-3,
                               atol=1e-6)


def test_learning_validates_its_feedback_mode() -> None:
    with pytest.raises(ValueError, match="feedback"):
        LocalLearning(feedback="sideways")


def test_anchor_pulls_weights_back_to_the_reference_at_its_time_constant() -> None:
    """With no error-driven change (learning rate 0) the anchor alone relaxes W - W_ref by exp(-t / tau)."""
    net = LIFRateNet((3, 8, 2), LIF, "exact", seed=5, out_scale=1.0)
    rng = np.random.default_rng(4)
    ref_w = tuple(w + rng.normal(scale=0.1, size=w.shape).astype(np.float32) for w in net.W)
    ref_b = tuple(b + 0.2 for b in net.b)
    dt, tau, steps = 0.001, 0.05, ANCHOR_EVERY * 10
    with nengo.Network(seed=0) as model:
        lifnet = LIFNetwork(Layers(tuple(net.W), tuple(net.b)), LIF, spiking=False,
                            learning=LocalLearning(0.0, anchor_tau=tau), reference=Layers(ref_w, ref_b))
        nengo.Connection(nengo.Node(rng.uniform(-1, 1, 3)), lifnet.input, synapse=None)
        nengo.Connection(nengo.Node(np.ones(2)), lifnet.error, synapse=None)  # an error, but a zero step size
    with nengo.Simulator(model, dt=dt, progress_bar=False) as sim:
        sim.run_steps(steps)
        now = lifnet.read_layers(sim)
    factor = (1.0 - ANCHOR_EVERY * dt / tau) ** (steps // ANCHOR_EVERY)
    for w, w0, r in zip(now.weights + now.biases, net.W + net.b, ref_w + ref_b):
        np.testing.assert_allclose(w - r, factor * (w0 - r), rtol=1e-4, atol=1e-6)
    assert factor < 0.05


def test_anchor_pull_is_the_local_decay_term() -> None:
    w, ref = np.array([[1.0, -2.0]]), np.array([[0.5, 0.0]])
    delta = np.array([[0.1, 0.1]])
    np.testing.assert_allclose(anchor_pull(w, ref, 0.2, delta), [[0.0, 0.5]])


# --- weight perturbation ---------------------------------------------------------------------------


def _perturbation_model(target: np.ndarray, trial_ticks: int, enabled: object, **rule: object
                        ) -> tuple[nengo.Network, nengo.Connection, list[np.ndarray]]:
    """Two synapses from a constant input, cost = squared distance of their output from ``target``."""
    seen: list[np.ndarray] = []
    with nengo.Network(seed=0) as model:
        one = nengo.Node([1.0])
        out = nengo.Node(size_in=2)
        conn = LearnedConnection(one, out, transform=np.zeros((2, 1)), synapse=None,
                                 learning_rule_type=PerturbationDelta(**rule))

        def modulation(t: float, y: np.ndarray) -> np.ndarray:
            seen.append(y.copy())
            tick = len(seen)
            return np.array([np.sum((y - target) ** 2), float(tick % trial_ticks == 0), float(enabled(tick))])

        mod = nengo.Node(modulation, size_in=2, size_out=3)
        nengo.Connection(out, mod, synapse=None)
        nengo.Connection(mod, conn.learning_rule, synapse=None)
    return model, conn, seen


def test_weight_perturbation_descends_the_cost_within_its_bounds() -> None:
    target = np.array([0.7, -0.4])
    model, conn, seen = _perturbation_model(target, 5, lambda tick: True, learning_rate=0.2, sigma=0.05,
                                            low=-0.3, high=1.0, seed=3)
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.run_steps(4000)  # 400 trial pairs
        mean = sim.signals[sim.model.sig[conn.learning_rule]["mean"]][:, 0]
    assert mean[0] == pytest.approx(0.7, abs=0.05)
    assert mean[1] == pytest.approx(-0.3, abs=0.01)  # at its bound (the cost wants -0.4)
    # the weights in use, perturbed or not, never left the bounds
    assert np.min(seen) >= -0.3 - 1e-9 and np.max(seen) <= 1.0 + 1e-9


def test_weight_perturbation_is_antithetic_and_leaves_no_perturbation_when_switched_off() -> None:
    sigma = 0.1
    model, _, seen = _perturbation_model(np.zeros(2), 10, lambda tick: tick <= 45, learning_rate=0.0,
                                         sigma=sigma, seed=1)
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.run_steps(60)
    out = np.array(seen)
    # learning rate 0: the mean stays 0; trials alternate +sigma xi, -sigma xi (a new xi after each pair)
    plus, minus = out[5], out[15]
    assert np.linalg.norm(plus) > 0.01
    np.testing.assert_allclose(minus, -plus)
    assert not np.allclose(out[25], plus)  # the next pair tries a new direction
    np.testing.assert_allclose(out[3:10], np.repeat(plus[None], 7, axis=0))  # held for the whole trial
    np.testing.assert_allclose(out[-10:], 0.0)  # off: back to the unperturbed weights


def test_a_trial_is_scored_by_its_mean_or_by_its_recent_cost() -> None:
    costs = np.r_[np.full(900, 5.0), np.full(100, 1.0)]  # a slow start, a good finish
    for recency, expected in ((0.0, 4.6), (0.02, 1.0 + 4.0 * 0.98**100)):  # filtered: mostly the last 50 ticks
        state = PerturbationState.start(np.zeros(1), np.random.default_rng(0))
        for c in costs:
            add_trial_cost(state, c, recency)
        rng = np.random.default_rng(0)
        assert end_perturbation_trial(state, 0.1, 0.2, low=-1, high=1, rng=rng, filtered=recency > 0)
        assert state.trial[2] == pytest.approx(expected, abs=0.01)  # the + trial's cost, kept for its pair


def test_fused_lif_step_is_nengos_bit_for_bit() -> None:
    """The spiking neurons' fused step computes nengo.LIF.step's voltages, refractory times and spikes exactly."""
    lif, dt, n = LIFParams(), 0.001, 500
    nengo_lif = nengo.LIF(tau_rc=lif.tau_rc, tau_ref=lif.tau_ref, amplitude=lif.amplitude)
    fused = LIFSpikes(n, lif, dt)
    rng = np.random.default_rng(0)
    theirs = {"voltage": rng.uniform(0, 1, n), "refractory_time": np.zeros(n)}
    ours = {k: v.copy() for k, v in theirs.items()}
    out_theirs, out_ours = np.zeros(n), np.zeros(n)
    spikes = 0
    for _ in range(400):
        current = rng.normal(1.2, 1.0, n)
        nengo_lif.step(dt, current, out_theirs, **theirs)
        fused.step(current, out_ours, ours["voltage"], ours["refractory_time"])
        np.testing.assert_array_equal(out_ours, out_theirs)
        for key, value in theirs.items():
            np.testing.assert_array_equal(ours[key], value)
        spikes += int(np.count_nonzero(out_ours))
    assert spikes > 1000


def test_the_pes_rung_rule_is_nengos_pes() -> None:
    """The output rule of every rung (and all the `pes` rung learns) is PES in neuron space: one step of it on a
    connection from neurons changes the decoders as nengo.PES does, at learning rate ``eta = kappa dt / n``."""
    n, dt, kappa = 40, 0.001, 1e-2
    rng = np.random.default_rng(5)
    x, error = rng.uniform(-1, 1, 3), rng.normal(size=2)
    decoders = rng.normal(scale=0.1, size=(2, n))
    with nengo.Network(seed=3) as model:
        ens = nengo.Ensemble(n, 3, neuron_type=nengo.LIFRate())
        nengo.Connection(nengo.Node(x), ens, synapse=None)
        out = nengo.Node(size_in=2)
        conn = nengo.Connection(ens.neurons, out, transform=decoders, synapse=None,
                                learning_rule_type=nengo.PES(learning_rate=kappa, pre_synapse=None))
        nengo.Connection(nengo.Node(error), conn.learning_rule, synapse=None)
        activities = nengo.Probe(ens.neurons, synapse=None)
    with nengo.Simulator(model, dt=dt, progress_bar=False) as sim:
        sim.step()
        sim.step()  # the first step's change is applied at the second
        changed = sim.signals[sim.model.sig[conn]["weights"]] - decoders
        first = sim.data[activities][0]
    ours = decoders.copy()
    kernels.rank1_update(ours, np.zeros(0), error, first, -kappa * dt / n)
    np.testing.assert_allclose(changed, ours - decoders, rtol=1e-10, atol=1e-15)
    assert np.abs(changed).max() > 1e-6
