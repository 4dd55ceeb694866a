"""Damping / power-sqrt losses, dynamic weights and `Joint(loss=...)`.

Gradients are checked against the closed forms of the paper ("Diminishing
Non-important Gradients for Training Dynamic Early-Exiting Networks",
Propositions 1-2 and Appendix B.2) with `tf.GradientTape`.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import regimes
from keras_eexit.data import load_arrays
from keras_eexit.losses import DampingLoss
from keras_eexit.losses import ExitDampingLoss
from keras_eexit.losses import PowerSqrtDampingLoss
from keras_eexit.losses import SelectiveCrossEntropy
from keras_eexit.losses import damping_components
from keras_eexit.losses import dynamic_weights
from keras_eexit.models import get_model

N = 5
BATCH = 6
K = 3


def _logits(seed=0, count=K, scale=2.0):
    rng = np.random.default_rng(seed)
    return [tf.constant(scale * rng.normal(size=(BATCH, N + 1)), "float32")
            for _ in range(count)]


def _labels(seed=0):
    return np.random.default_rng(seed + 100).integers(0, N, size=BATCH)


def _softmax(z):
    z = np.asarray(z, "float64")
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _grads(fn, logits):
    logits = [tf.Variable(z) for z in logits]
    with tf.GradientTape() as tape:
        value = fn(logits)
    return value, [g.numpy() for g in tape.gradient(value, logits)]


# ----------------------------------------------------------- damping loss
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
@pytest.mark.parametrize("one_hot", [False, True])
def test_damping_gradient_identities(lam, one_hot):
    # Propositions 1 and 2: d/dz_y = (1+λ)F[y] - 1, d/dz_{N+1} =
    # (1+λ)F[N+1] - λ, and (1+λ)F[j] on the other classes.
    y = _labels()
    labels = np.eye(N, dtype="float32")[y] if one_hot else y
    loss = DampingLoss(lam)
    [z] = _logits(count=1)
    _, [grad] = _grads(
        lambda zs: tf.reduce_sum(loss.per_classifier(labels, zs)[0]), [z])
    f = _softmax(z)
    rows = np.arange(BATCH)
    np.testing.assert_allclose(grad[rows, y], (1 + lam) * f[rows, y] - 1,
                               atol=1e-5)
    np.testing.assert_allclose(grad[:, -1], (1 + lam) * f[:, -1] - lam,
                               atol=1e-5)
    expected = (1 + lam) * f
    expected[rows, y] -= 1
    expected[:, -1] -= lam
    np.testing.assert_allclose(grad, expected, atol=1e-5)


def test_damping_loss_value_and_reduction():
    lam = 0.7
    logits, y = _logits(), _labels()
    value = float(DampingLoss(lam)(y, logits))
    expected = 0.0
    for z in logits:
        f = _softmax(z)
        expected += np.mean(-np.log(f[np.arange(BATCH), y])
                            - lam * np.log(f[:, -1]))
    assert value == pytest.approx(expected, rel=1e-5)
    # A single tensor is one classifier; sample weights reduce as in Keras.
    single = float(DampingLoss(lam)(y, logits[0]))
    ce, d = damping_components(y, logits[0])
    assert single == pytest.approx(float(np.mean(ce + lam * d)), rel=1e-5)
    weights = np.linspace(0, 1, BATCH).astype("float32")
    weighted = float(DampingLoss(lam)(y, logits[0], sample_weight=weights))
    assert weighted == pytest.approx(
        float(np.mean((ce + lam * d) * weights)), rel=1e-5)


def test_damping_loss_serializes():
    loss = DampingLoss(0.25, num_classes=N)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, DampingLoss)
    assert (clone.lam, clone.num_classes) == (0.25, N)
    power = PowerSqrtDampingLoss.from_config(
        PowerSqrtDampingLoss(2.0).get_config())
    assert isinstance(power, PowerSqrtDampingLoss) and power.lam == 2.0


# -------------------------------------------------------------- power-sqrt
def test_power_sqrt_value():
    lam = 0.5
    logits, y = _logits(), _labels()
    value = float(PowerSqrtDampingLoss(lam)(y, logits))
    rows = np.arange(BATCH)
    ce = sum(-np.log(_softmax(z)[rows, y]) for z in logits)
    d = np.stack([-np.log(_softmax(z)[:, -1]) for z in logits])
    expected = np.mean(ce + lam * np.sqrt((d ** 2).sum(0)))
    assert value == pytest.approx(expected, rel=1e-5)
    # One classifier: power-sqrt is the damping loss.
    assert float(PowerSqrtDampingLoss(lam)(y, logits[:1])) == pytest.approx(
        float(DampingLoss(lam)(y, logits[:1])), rel=1e-5)


@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_power_sqrt_damping_gradient_matches_appendix_b2(lam):
    # d/dz^k_y of λ·sqrt(Σ_j D_j²), D_j = -log F^j[N+1], is
    # λ · D_k / sqrt(Σ_j D_j²) · F^k[y]; on the damping unit
    # λ · D_k / sqrt(Σ_j D_j²) · (F^k[N+1] - 1). The cross-entropy part
    # adds F^k - e_y as usual.
    logits, y = _logits(seed=3), _labels(seed=3)
    loss = PowerSqrtDampingLoss(lam)
    _, grads = _grads(
        lambda zs: tf.reduce_sum(sum(loss.per_classifier(y, zs))), logits)
    rows = np.arange(BATCH)
    f = [_softmax(z) for z in logits]
    d = np.stack([-np.log(fk[:, -1]) for fk in f])
    norm = np.sqrt((d ** 2).sum(0))
    for k in range(K):
        ce_grad = f[k].copy()
        ce_grad[rows, y] -= 1
        damping_grad = grads[k] - ce_grad
        share = lam * d[k] / norm
        np.testing.assert_allclose(damping_grad[rows, y],
                                   share * f[k][rows, y], atol=1e-5)
        np.testing.assert_allclose(damping_grad[:, -1],
                                   share * (f[k][:, -1] - 1), atol=1e-5)
        expected = share[:, None] * f[k]
        expected[:, -1] -= share
        np.testing.assert_allclose(damping_grad, expected, atol=1e-5)


def test_power_sqrt_stays_finite_when_damping_is_zero():
    z = np.zeros((2, N + 1), "float32")
    z[:, -1] = 80.0  # F[N+1] == 1 in float32: every D_k is 0
    value, grads = _grads(
        lambda zs: PowerSqrtDampingLoss(1.0)([0, 1], zs),
        [tf.constant(z), tf.constant(z)])
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(g)) for g in grads)


# ---------------------------------------------------------- dynamic weights
@pytest.mark.parametrize("alpha", [0.3, 0.8, 1.0])
def test_dynamic_weights_range_and_mean(alpha):
    logits = _logits(seed=5)
    weights = np.stack([w.numpy() for w in dynamic_weights(logits, alpha)], 1)
    assert weights.shape == (BATCH, K)
    tilde = weights - 1
    assert tilde.min() >= -alpha - 1e-6 and tilde.max() <= alpha + 1e-6
    assert np.abs(tilde).max() == pytest.approx(alpha, rel=1e-5)
    assert weights.mean() == pytest.approx(1.0, abs=1e-6)
    # Monotone in D = -log F[N+1]: less damping mass, larger weight.
    d = np.stack([-np.log(_softmax(z)[:, -1]) for z in logits], 1)
    order = np.argsort(d.ravel())
    assert np.all(np.diff(weights.ravel()[order]) >= -1e-6)


def test_dynamic_weights_equal_scores_give_ones():
    z = tf.zeros((4, N + 1))
    for w in dynamic_weights([z, z], 0.8):
        np.testing.assert_allclose(w, 1.0)


def test_dynamic_weights_carry_no_gradient():
    logits = [tf.Variable(z) for z in _logits(seed=6)]
    coefficients = np.random.default_rng(0).normal(size=(K, BATCH))
    with tf.GradientTape(persistent=True) as tape:
        stopped = dynamic_weights(logits, 0.8)
        flowing = dynamic_weights(logits, 0.8, stop_gradient=False)
        # Σ w̃ is 0 by construction, so weight the sum with random numbers.
        value_stopped = sum(tf.reduce_sum(c * w)
                            for c, w in zip(coefficients, stopped))
        value_flowing = sum(tf.reduce_sum(c * w)
                            for c, w in zip(coefficients, flowing))
    for g in tape.gradient(value_stopped, logits):
        assert g is None or not np.any(g.numpy())
    grads = tape.gradient(value_flowing, logits)
    assert any(g is not None and np.any(g.numpy()) for g in grads)


class _Model:
    """The attributes an objective term reads from a model."""

    def __init__(self, num_exits, damping=True):
        from keras_eexit.layers import get_head

        self.num_exits = num_exits
        self.exit_names = [f"exit_{k + 1}" for k in range(num_exits)]
        self.heads = [get_head("linear", N, damping=damping)
                      for _ in range(num_exits)]
        self.exit_weights = tf.constant([1.0, 0.5, 2.0][:num_exits])


@pytest.mark.parametrize("loss_cls", [DampingLoss, PowerSqrtDampingLoss])
def test_dynamic_term_scales_each_sample_gradient_by_its_weight(loss_cls):
    # L = Σ_k w_k mean_i v_ik L_ik with v constant: the gradient is the
    # per-classifier loss gradient scaled by w_k v_ik / B.
    logits, y = _logits(seed=7), _labels(seed=7)
    model = _Model(K)
    names = model.exit_names
    loss = loss_cls(0.5)
    term = ExitDampingLoss(loss, alpha=0.8)
    labels = {n: y for n in names}

    def term_value(zs):
        return term(model, None, labels, dict(zip(names, zs)))[0]

    _, grads = _grads(term_value, logits)
    v = [w.numpy() for w in dynamic_weights(logits, 0.8)]
    exit_weights = model.exit_weights.numpy()
    # Gradient with the weights frozen at their values, by hand.
    frozen = [tf.constant(vk) for vk in v]

    def by_hand(zs):
        values = loss.per_classifier(y, zs)
        return sum(exit_weights[k] * tf.reduce_mean(frozen[k] * values[k])
                   for k in range(K))

    _, expected = _grads(by_hand, logits)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, atol=1e-6)
    # The "with gradient" ablation differs.
    flowing = ExitDampingLoss(loss, alpha=0.8, dynamic_gradient=True)
    _, other = _grads(
        lambda zs: flowing(model, None, labels, dict(zip(names, zs)))[0],
        logits)
    assert any(not np.allclose(g, o) for g, o in zip(grads, other))


def test_term_logs_unweighted_per_exit_losses():
    logits, y = _logits(seed=8), _labels(seed=8)
    model = _Model(K)
    names = model.exit_names
    term = ExitDampingLoss(PowerSqrtDampingLoss(0.5), alpha=0.5)
    _, per_exit = term(model, None, {n: y for n in names},
                       dict(zip(names, logits)))
    logged = sum(float(per_exit[n]) for n in names)
    assert logged == pytest.approx(
        float(PowerSqrtDampingLoss(0.5)(y, logits)), rel=1e-5)


# --------------------------------------------------------------- baselines
def test_threshold_selection_drops_confident_samples():
    logits, y = _logits(seed=9, count=1, scale=4.0), _labels(seed=9)
    z = logits[0][:, :N]  # plain heads: N logits
    f = _softmax(z)[np.arange(BATCH), y]
    tau = float(np.median(f))
    term = SelectiveCrossEntropy(threshold=tau)
    value, [grad] = _grads(
        lambda zs: tf.reduce_sum(term.exit_loss(y, zs[0])), [z])
    dropped = f > tau
    assert dropped.any() and (~dropped).any()
    per_sample = term.exit_loss(y, z).numpy()
    np.testing.assert_array_equal(per_sample[dropped], 0.0)
    np.testing.assert_array_equal(grad[dropped], 0.0)
    np.testing.assert_allclose(per_sample[~dropped], -np.log(f[~dropped]),
                               rtol=1e-5)


def test_label_smoothing_matches_keras():
    logits, y = _logits(seed=10, count=1), _labels(seed=10)
    z = logits[0][:, :N]
    ours = SelectiveCrossEntropy(label_smoothing=0.1).exit_loss(y, z)
    keras_loss = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1, reduction=None)
    np.testing.assert_allclose(
        ours, keras_loss(np.eye(N)[y], z), rtol=1e-5)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf"), True,
                                 "1"])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match="argument `lam`"):
        DampingLoss(lam)
    with pytest.raises(ValueError, match="argument `lam`"):
        regimes.Joint(loss="power_sqrt", lam=lam)


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, float("nan"), True])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="argument `alpha`"):
        dynamic_weights(_logits(count=1), alpha)
    with pytest.raises(ValueError, match="argument `dynamic`"):
        regimes.Joint(loss="damping", dynamic=alpha)


def test_bad_joint_combinations():
    with pytest.raises(ValueError, match="argument `lam`"):
        regimes.Joint(lam=0.5)  # cross-entropy has no λ
    with pytest.raises(ValueError, match="argument `dynamic`"):
        regimes.Joint(dynamic=0.8)
    with pytest.raises(ValueError, match="argument `dynamic_gradient`"):
        regimes.Joint(loss="damping", dynamic_gradient=True)
    with pytest.raises(ValueError, match="argument `loss`"):
        regimes.Joint(loss="damping", threshold=0.9)
    with pytest.raises(ValueError, match="Unknown loss"):
        regimes.Joint(loss="dampin")
    with pytest.raises(ValueError, match="argument `threshold`"):
        regimes.Joint(threshold=1.5)
    with pytest.raises(ValueError, match="argument `label_smoothing`"):
        regimes.Joint(label_smoothing=1.0)


def test_damping_loss_refuses_logits_without_the_damping_unit():
    plain = tf.zeros((BATCH, N))
    with pytest.raises(ValueError, match="num_classes \\+ 1 = 6"):
        DampingLoss(0.5, num_classes=N)(_labels(), [plain])
    with pytest.raises(ValueError, match="One-hot labels have 6 columns"):
        DampingLoss(0.5)(np.eye(N + 1)[_labels()], _logits(count=1))


def _tiny_data(num_classes=N, size=16):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(size, 40, 1)).astype("float32"),
            rng.integers(0, num_classes, size=size))


@pytest.mark.parametrize("loss", ["damping", "power_sqrt"])
def test_damping_loss_on_plain_heads_is_an_error(loss):
    model = get_model("cnn1d", num_classes=N, width=4)
    model.compile(optimizer="sgd")
    x, y = _tiny_data()
    with pytest.raises(ValueError, match="needs a damping unit"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint(loss=loss, verbose=False)])


@pytest.mark.parametrize("kwargs", [{}, {"threshold": 0.9},
                                    {"label_smoothing": 0.1}])
def test_plain_cross_entropy_on_damping_heads_is_an_error(kwargs):
    model = get_model("cnn1d", num_classes=N, width=4, damping=True)
    model.compile(optimizer="sgd")
    x, y = _tiny_data()
    with pytest.raises(ValueError, match="damping"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint(verbose=False, **kwargs)])


def test_joint_damping_refuses_a_compiled_loss():
    model = get_model("cnn1d", num_classes=N, width=4, damping=True)
    model.compile(optimizer="sgd", loss=DampingLoss(0.5))
    x, y = _tiny_data()
    with pytest.raises(ValueError, match="compiled with loss"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint(loss="damping", verbose=False)])
    # The compiled damping loss itself is a valid joint objective.
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[regimes.Joint(verbose=False)])


def test_joint_damping_replaces_cross_entropy_and_restores_it(tmp_path):
    model = get_model("cnn1d", num_classes=N, width=4, damping=True)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    x, y = _tiny_data()
    regime = regimes.Joint("han", loss="power_sqrt", lam=0.5, dynamic=0.8,
                           verbose=False)
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])
    assert {f"exit_{k}_loss" for k in range(1, 5)} <= set(history.history)
    assert np.all(np.isfinite(history.history["loss"]))
    # After fit the default objective is back.
    assert [t.name for t in model.objective.terms] == ["crossentropy"]
    assert type(model.objective.terms[0]).__name__ == "ExitCrossEntropy"
    path = tmp_path / "m.keras"
    model.save(path)
    keras.saving.load_model(path)


@pytest.mark.large
def test_joint_damping_learns_mnist1d():
    # Seeds 0-2 by hand: final-exit test accuracy 0.92-0.96 (damping λ=0.5)
    # and 0.94-0.95 (power-sqrt + dynamic α=0.8), first exit 0.36-0.40;
    # ~5 s per run on 2 CPUs (speed is benchmarks' business, not asserted).
    data = load_arrays("mnist1d", num_samples=4000)
    for kwargs in (dict(loss="damping", lam=0.5),
                   dict(loss="power_sqrt", lam=0.5, dynamic=0.8)):
        keras.utils.set_random_seed(0)
        model = get_model("cnn1d", damping=True)
        model.compile(optimizer=keras.optimizers.Adam(3e-3),
                      metrics=["accuracy"])
        model.fit(data["x_train"], data["y_train"], epochs=6, batch_size=64,
                  verbose=0,
                  callbacks=[regimes.Joint(verbose=False, **kwargs)])
        result = model.evaluate(data["x_test"], data["y_test"],
                                return_dict=True, verbose=0)
        accuracies = [result[f"exit_{k}_accuracy"] for k in range(1, 5)]
        assert accuracies[-1] >= 0.8, (kwargs, accuracies)  # chance: 0.1
        assert accuracies[0] < accuracies[-1], (kwargs, accuracies)
