"""L2W (Han et al. 2022): weights, meta objective, the bi-level gradient
against finite differences, costs, saving and training under regimes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_eexit import MultiExitModel
from keras_eexit import regimes
from keras_eexit.data import load_arrays
from keras_eexit.evaluation import collect
from keras_eexit.layers import DampingHead
from keras_eexit.losses import ExitDampingLoss
from keras_eexit.losses import Objective
from keras_eexit.losses import PowerSqrtDampingLoss
from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy
from keras_eexit.methods import L2W
from keras_eexit.methods.l2w import exit_losses
from keras_eexit.methods import WeightPredictionNetwork
from keras_eexit.methods.l2w import allocate_samples
from keras_eexit.methods.l2w import meta_objective
from keras_eexit.methods.l2w import target_probabilities
from keras_eexit.methods.weight_prediction_network import centred_weights
from keras_eexit.models import get_model


def _smooth_chain(num_exits=3, seed=3):
    keras.utils.set_random_seed(seed)
    segments = [keras.Sequential(
        [keras.Input((5 if k == 0 else 6,)),
         keras.layers.Dense(6, activation="tanh")],
        name=f"segment_{k + 1}") for k in range(num_exits)]
    heads = [keras.layers.Dense(3, name=f"exit_{k + 1}")
             for k in range(num_exits)]
    return MultiExitModel(segments, heads, name="smooth")


def _halves(model, n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = rng.integers(0, 3, n)
    half = n // 2
    by_exit = {name: y[:half] for name in model.exit_names}
    meta = {name: y[half:] for name in model.exit_names}
    return (x[:half], by_exit, None), (x[half:], meta)


# ------------------------------------------------------------ weights
def test_centred_weights_average_one_on_the_chosen_axis():
    raw = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype("float32")
    for centering, axis in (("exits", 1), ("samples", 0), ("all", None)):
        w = ops.convert_to_numpy(centred_weights(raw, 0.8, centering))
        np.testing.assert_allclose(w.mean(axis=axis), 1.0, atol=1e-6)
        mean = raw.mean() if axis is None else raw.mean(axis, keepdims=True)
        np.testing.assert_allclose(w, 1.0 + 0.8 * (raw - mean), atol=1e-6)
        assert np.all(np.abs(w - 1.0) <= 2 * 0.8 + 1e-6)


def test_target_probabilities_are_geometric():
    probs = target_probabilities(4, 0.75)
    expected = 0.75 ** np.arange(1, 5)
    np.testing.assert_allclose(probs, expected / expected.sum(), rtol=1e-6)
    assert probs[0] > probs[-1]


def test_allocation_gives_each_exit_its_most_confident_samples():
    confidences = np.array([
        [0.9, 0.1, 0.5],
        [0.8, 0.9, 0.5],
        [0.2, 0.7, 0.5],
        [0.1, 0.6, 0.5],
        [0.3, 0.2, 0.5],
        [0.4, 0.8, 0.5],
    ], "float32")
    probs = np.array([1 / 3, 1 / 3, 1 / 3], "float32")
    masks = ops.convert_to_numpy(allocate_samples(confidences, probs))
    np.testing.assert_array_equal(masks.sum(1), 1.0)
    # Exit 1: its 2 most confident (samples 0, 1); exit 2: its 2 most
    # confident among the rest (5, 2); exit 3: what is left (3, 4).
    np.testing.assert_array_equal(np.argmax(masks, 1), [0, 0, 1, 2, 2, 1])


def test_allocation_quotas_round_down():
    confidences = np.random.default_rng(0).uniform(size=(7, 3))
    probs = target_probabilities(3, 0.75)
    masks = ops.convert_to_numpy(allocate_samples(confidences, probs))
    counts = masks.sum(0)
    assert counts[0] == np.floor(7 * probs[0])
    assert counts[1] == np.floor(7 * probs[1])
    assert counts.sum() == 7


def test_meta_objective_is_each_exits_mean_cross_entropy():
    model = _smooth_chain(num_exits=2)
    logits = {"exit_1": np.array([[4.0, 0, 0], [0, 1.0, 0],
                                  [0, 0, 0.5], [3.0, 0, 0]], "float32"),
              "exit_2": np.array([[0, 2.0, 0], [0, 0, 2.0],
                                  [1.0, 0, 0], [0, 0, 1.0]], "float32")}
    labels = np.array([0, 1, 2, 2])
    probs = np.array([0.5, 0.5], "float32")
    value = float(meta_objective(model, logits, labels, probs))
    ce = {n: ops.convert_to_numpy(per_sample_crossentropy(labels, z))
          for n, z in logits.items()}
    # Exit 1 is most confident on samples 0 and 3; exit 2 takes 1 and 2.
    expected = ce["exit_1"][[0, 3]].mean() + ce["exit_2"][[1, 2]].mean()
    assert value == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------- the meta-gradient
def _meta_loss_at(l2w, model, train, meta, direction, step, alpha):
    variables = l2w.network.trainable_variables
    saved = [v.numpy() for v in variables]
    offset = 0
    for v in variables:
        size = int(np.prod(v.shape))
        v.assign(v.numpy() + step * direction[offset:offset + size]
                 .reshape(v.shape))
        offset += size
    try:
        return float(l2w.meta_loss(model, train, meta, alpha))
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


@pytest.mark.parametrize("freeze_backbone", [False, True])
def test_meta_gradient_equals_finite_differences(freeze_backbone):
    model = _smooth_chain()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    if freeze_backbone:  # the look-ahead then moves the heads only
        for segment in model.segments:
            segment.trainable = False
    l2w = L2W(hidden_units=4).attach(model)
    train, meta = _halves(model)
    before = [v.numpy() for v in model.weights]
    grads, loss = l2w.meta_gradients(model, train, meta, alpha=0.5)
    gradient = np.concatenate([ops.convert_to_numpy(g).ravel()
                               for g in grads])
    assert np.linalg.norm(gradient) > 1e-3  # second-order path exists
    rng = np.random.default_rng(1)
    for direction in (gradient, rng.normal(size=gradient.shape)):
        direction = direction / np.linalg.norm(direction)
        h = 1e-2
        finite = (_meta_loss_at(l2w, model, train, meta, direction, h, 0.5)
                  - _meta_loss_at(l2w, model, train, meta, direction, -h,
                                  0.5)) / (2 * h)
        assert finite == pytest.approx(float(gradient @ direction),
                                       rel=2e-3, abs=1e-5)
    # The look-ahead is virtual: no weight of the model moved.
    for v, value in zip(model.weights, before):
        np.testing.assert_array_equal(v.numpy(), value)


def test_look_ahead_discards_batchnorm_updates():
    keras.utils.set_random_seed(0)
    segments = [keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                                  keras.layers.BatchNormalization()]),
                keras.Sequential([keras.Input((4,)), keras.layers.Dense(4),
                                  keras.layers.BatchNormalization()])]
    model = MultiExitModel(segments, [keras.layers.Dense(3),
                                      keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    l2w = L2W(hidden_units=4).attach(model)
    train, meta = _halves(model)
    statistics = [v.numpy() for v in model.non_trainable_variables]
    grads, _ = l2w.meta_gradients(model, train, meta)
    assert all(np.all(np.isfinite(ops.convert_to_numpy(g))) for g in grads)
    for v, value in zip(model.non_trainable_variables, statistics):
        np.testing.assert_array_equal(v.numpy(), value)


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.Adam(1e-2),
    lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1),
    lambda: keras.optimizers.Adam(1e-2, amsgrad=True),
    lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True,
                                 weight_decay=0.01),
    lambda: keras.optimizers.SGD(0.1, momentum=0.9),
], ids=["adam", "adamw", "amsgrad", "sgd_nesterov_wd", "sgd_momentum"])
def test_look_ahead_is_the_real_update_of_the_authors_loss(optimizer):
    """The meta loss is evaluated where the model's own optimizer would
    take it with the authors' loss `Σ_k mean_i w_ik ℓ_ik` (summed over the
    exits, not the regime's mean), from the optimizer's current state."""
    model = _smooth_chain()
    model.compile(optimizer=optimizer())
    model.exit_weights.assign([1 / 3] * 3)  # Joint()'s mean over exits
    l2w = L2W(hidden_units=4).attach(model)
    train, (meta_x, meta_y) = _halves(model)
    variables = model.trainable_variables
    model.optimizer.build(variables)
    rng = np.random.default_rng(5)
    for _ in range(3):  # some optimizer state: moments, momentum, steps
        model.optimizer.apply_gradients(
            [(rng.normal(size=v.shape).astype("float32"), v)
             for v in variables])
    value = float(l2w.meta_loss(model, train, (meta_x, meta_y)))
    x, y, _ = train
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        losses = exit_losses(model, x, y, outputs)
        weights = l2w.sample_weights(losses)
        loss = tf.reduce_sum(tf.reduce_mean(weights * losses, axis=0))
    grads = tape.gradient(loss, variables)
    model.optimizer.apply_gradients(zip(grads, variables))  # the real step
    expected = float(meta_objective(
        model, model(meta_x, training=True), meta_y["exit_1"],
        l2w.probabilities))
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_look_ahead_options_and_unsupported_optimizers():
    model = _smooth_chain()
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    model.optimizer.build(model.trainable_variables)
    train, meta = _halves(model)
    # lookahead="sgd": θ - lr·g, whatever the optimizer (the old step).
    plain = L2W(hidden_units=4, lookahead="sgd").attach(model)
    x, y, _ = train
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        losses = exit_losses(model, x, y, outputs)
        loss = tf.reduce_sum(tf.reduce_mean(
            plain.sample_weights(losses) * losses, axis=0))
    grads = tape.gradient(loss, model.trainable_variables)
    saved = [v.numpy() for v in model.trainable_variables]
    for v, g in zip(model.trainable_variables, grads):
        v.assign(v - 0.1 * g)
    expected = float(meta_objective(model, model(meta[0], training=True),
                                    meta[1]["exit_1"], plain.probabilities))
    for v, value in zip(model.trainable_variables, saved):
        v.assign(value)
    assert float(plain.meta_loss(model, train, meta)) == pytest.approx(
        expected, rel=1e-5)
    plain.detach(model)
    model.compile(optimizer=keras.optimizers.RMSprop(0.1))
    l2w = L2W(hidden_units=4).attach(model)
    with pytest.raises(ValueError, match="SGD, Adam and AdamW"):
        l2w.meta_loss(model, train, meta)
    with pytest.raises(ValueError, match="lookahead"):
        L2W(lookahead="adam")
    with pytest.raises(ValueError, match="exit_weights"):
        L2W(exit_weights="mean")


# ----------------------------------------------------------- the network
def test_network_starts_as_pytorchs_linear_layers():
    """`nn.Linear`'s default start (the authors' `MLP_tanh`): kernel and
    bias uniform in ±1/sqrt(fan_in); `initializer="glorot"` is Keras'."""
    keras.utils.set_random_seed(0)
    wpn = WeightPredictionNetwork(4, hidden_units=500)
    wpn.build((None, 4))
    for layer, fan_in in ((wpn.hidden[0], 4), (wpn.scores, 500)):
        bound = 1.0 / np.sqrt(fan_in)
        for values in (layer.kernel.numpy(), layer.bias.numpy()):
            assert np.abs(values).max() <= bound and np.all(values != 0)
            if values.size >= 500:  # enough values to see the law
                assert np.abs(values).max() > 0.9 * bound
                assert values.std() == pytest.approx(bound / np.sqrt(3),
                                                     rel=0.1)
    keras_default = WeightPredictionNetwork(4, hidden_units=500,
                                            initializer="glorot")
    keras_default.build((None, 4))
    assert not np.any(keras_default.hidden[0].bias.numpy())
    assert WeightPredictionNetwork.from_config(
        keras_default.get_config()).initializer == "glorot"
    l2w = L2W(hidden_units=8).attach(_smooth_chain())
    assert np.any(l2w.network.hidden[0].bias.numpy())


def test_weight_prediction_network_config_and_range():
    wpn = WeightPredictionNetwork(3, hidden_units=5, num_layers=2,
                                  name="wpn")
    out = ops.convert_to_numpy(wpn(np.full((4, 3), 50.0, "float32")))
    assert out.shape == (4, 3) and np.all(np.abs(out) <= 1.0)
    clone = WeightPredictionNetwork.from_config(wpn.get_config())
    assert (clone.num_exits, clone.hidden_units, clone.num_layers) == (
        3, 5, 2)
    assert len(clone.hidden) == 2


def test_flops_training_only(model_factory, tiny_data):
    model = model_factory()
    inference = model.flops_per_exit()
    l2w = L2W(hidden_units=7).attach(model)
    k = model.num_exits
    assert l2w.training_flops_per_sample() == 2 * (k * 7 + 7 * k)
    assert model.flops_per_exit() == inference
    assert all(id(v) not in {id(w) for w in model.weights}
               for v in l2w.network.weights)


@pytest.mark.large
def test_plain_fit_trains_model_and_network():
    model = _smooth_chain()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, 3, 32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  metrics=["accuracy"])
    l2w = L2W(hidden_units=8, meta_learning_rate=1e-2).attach(model)
    network = [v.numpy() for v in l2w.network.weights]
    segment = model.segments[0].weights[0].numpy()
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert "l2w_meta_loss" in history.history
    assert np.isfinite(history.history["loss"]).all()
    assert any(np.abs(v.numpy() - w).max() > 0
               for v, w in zip(l2w.network.weights, network))
    assert np.abs(model.segments[0].weights[0].numpy() - segment).max() > 0
    # Two model updates per batch (one per half), as the authors'.
    assert int(model.optimizer.iterations.numpy()) == 2 * 2 * 4
    assert int(l2w.optimizer.iterations.numpy()) == 2 * 2 * 4


def test_attach_refuses_what_it_cannot_train(model_factory):
    model = model_factory()
    L2W().attach(model)
    with pytest.raises(ValueError, match="both drive the train step"):
        L2W().attach(model)
    with pytest.raises(ValueError, match="MultiExitModel"):
        L2W().attach(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="one exit"):
        L2W().attach(model_factory(num_exits=1))
    with pytest.raises(ValueError, match="epsilon"):
        L2W(epsilon=0)
    with pytest.raises(ValueError, match="centering"):
        L2W(centering="rows")


# ------------------------------------------------- objective and damping
def _damping_chain():
    plain = _smooth_chain()
    heads = [DampingHead(3, head=lambda n, name=None: keras.layers.Dense(
        n, name=name), name=h.name) for h in plain.heads]
    return MultiExitModel(plain.segments, heads, name="damped")


@pytest.mark.parametrize("damping,exit_weights,coefficients", [
    (False, "sum", [1.0, 0.0, 1.0]),  # the authors': sum over trained exits
    (True, "sum", [1.0, 0.0, 1.0]),
    (False, "regime", [0.5, 0.0, 2.0]),
    (True, "regime", [0.5, 0.0, 2.0]),
])
def test_weighted_objective_multiplies_the_exit_terms_loss(
        damping, exit_weights, coefficients):
    model = _damping_chain() if damping else _smooth_chain()
    if damping:
        term = ExitDampingLoss(PowerSqrtDampingLoss(0.5), alpha=0.8)
        model.set_objective(Objective.with_terms([term]))
    model.exit_weights.assign([0.5, 0.0, 2.0])
    l2w = L2W(hidden_units=4, exit_weights=exit_weights).attach(model)
    (x, y, _), _ = _halves(model)
    outputs = model(x)
    losses = exit_losses(model, x, y, outputs)
    term = model.objective.terms[0]
    expected_losses = term.per_sample(model, x, y, outputs, [0, 1, 2])
    np.testing.assert_allclose(
        losses, np.stack([ops.convert_to_numpy(v) for v in
                          expected_losses], 1), rtol=1e-6)
    weights = ops.convert_to_numpy(l2w.sample_weights(losses))
    total, _, _ = l2w.weighted_objective(model, losses)(
        model, x, y, outputs, None)
    factors = term.sample_factors(model, outputs, [0, 1, 2])
    expected = sum(
        c * np.mean(weights[:, k] * ops.convert_to_numpy(losses[:, k])
                    * (1.0 if factors is None
                       else ops.convert_to_numpy(factors[k])))
        for k, c in enumerate(coefficients))
    assert float(total) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------- saving and resuming
def test_save_weights_keeps_the_network_and_files_load_safely(tmp_path):
    model = _smooth_chain()
    l2w = L2W(hidden_units=4).attach(model)
    for v in l2w.network.weights:
        v.assign(np.random.default_rng(0).normal(size=v.shape))
    l2w.steps.assign(7)
    model.save_weights(str(tmp_path / "run.weights.h5"))
    again = _smooth_chain()
    fresh = L2W(hidden_units=4).attach(again)
    again.load_weights(str(tmp_path / "run.weights.h5"))
    for a, b in zip(fresh.network.weights, l2w.network.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(fresh.steps.numpy()) == 7
    # The model's file holds the model: it loads with safe_mode=True,
    # without the training procedure.
    model.save(str(tmp_path / "model.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "model.keras"),
                                     safe_mode=True)
    assert loaded.train_step_plan() == []
    x = np.ones((2, 5), "float32")
    np.testing.assert_allclose(loaded(x)["exit_3"], model(x)["exit_3"],
                               rtol=1e-6)


# ------------------------------------------------------------ regimes
@pytest.mark.large
def test_trains_under_mixed():
    # ~6 s on 2 CPUs. (Joint and TwoStage: the contract test below.)
    model = _smooth_chain()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, 3, 32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    l2w = L2W(hidden_units=8, meta_learning_rate=1e-2).attach(model)
    network = [v.numpy() for v in l2w.network.weights]
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([v.numpy() for v in self.model.weights])

    history = model.fit(x, y, batch_size=8, verbose=0,
                        callbacks=[regimes.Mixed(1, 1, verbose=False),
                                   Snapshot()])
    assert np.isfinite(history.history["loss"]).all()
    assert model.train_pipeline.contributors == (l2w,)
    assert any(np.abs(v.numpy() - w).max() > 0
               for v, w in zip(l2w.network.weights, network))
    paths = [v.path for v in model.weights]
    moved = {p for p, a, b in zip(paths, *snapshots)
             if np.abs(a - b).max() > 0}
    # Phase 2 is joint: every segment and head moves.
    assert {v.path for s in model.segments for v in s.weights} <= moved
    assert {v.path for h in model.heads for v in h.weights} <= moved


@pytest.mark.slow  # L2W learning and damping learning run in CI
def test_learns_digits_with_power_sqrt_damping():
    # ~15 s on 2 idle CPUs. L2W with the damping paper's power-sqrt loss;
    # seed 0: exits 18.6% / 94.7% / 98.9% (small_cnn's first exit sees a
    # 3x3 receptive field only).
    keras.utils.set_random_seed(0)
    data = load_arrays("digits")
    info = data["info"]
    model = get_model("small_cnn", input_shape=info.input_shape,
                      num_classes=info.num_classes, width=16, damping=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    L2W(hidden_units=32, meta_learning_rate=1e-3).attach(model)
    model.fit(data["x_train"], data["y_train"], epochs=4, batch_size=32,
              verbose=0, callbacks=[regimes.Joint(loss="power_sqrt",
                                                  lam=0.05, verbose=False)])
    accuracy = collect(model, (data["x_test"], data["y_test"])).accuracy()
    assert accuracy[-1] >= 0.9, accuracy
    assert accuracy[1] >= 0.8, accuracy
    assert accuracy[0] > 0.12, accuracy  # chance: 0.1


def test_registry_installs_the_train_step():
    from keras_eexit.methods import get_method

    model = get_method("l2w").build(_smooth_chain(), epsilon=0.3,
                                    centering="all")
    l2w, = model.train_pipeline.contributors
    assert isinstance(l2w, L2W) and l2w.epsilon == 0.3
    assert get_method("l2w").adapt("any regime") == "any regime"


def test_config_round_trip():
    l2w = L2W(epsilon=0.3, centering="all", target_ratio=0.5,
              hidden_units=16, meta_interval=100, exchange=False)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(l2w))
    assert isinstance(clone, L2W)
    assert clone.get_config() == l2w.get_config()


@pytest.mark.large
def test_l2w_models_honour_the_training_contract():
    # ~8 s: a joint epoch moves every stage; under TwoStage the backbone
    # phase moves the segments and the final head, the head phase only the
    # internal heads (the look-ahead never touches frozen stages).
    from keras_eexit.testing import model_contract

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 16)
    for check in (model_contract.check_joint_step,
                  model_contract.check_two_stage):
        model = get_model("small_cnn", input_shape=(8, 8, 1),
                          num_classes=10, width=4)
        L2W(hidden_units=8).attach(model)
        check(model, x, y)
