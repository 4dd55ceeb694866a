"""Batched early exit by compaction: the sweep's decisions, skipped work."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import criteria
from keras_eexit.evaluation import collect
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import predict_early_exit
from keras_eexit.inference.predict import early_exit_function
from keras_eexit.models import get_model

ZOO = {
    "small_cnn": {"width": 4},
    "cnn1d": {"width": 4},
    "cifar_resnet": {"depth": 20, "input_shape": (8, 8, 3)},
    "msdnet_cifar": {"input_shape": (16, 16, 3), "channels": 4,
                     "growth_rate": 2, "head_filters": 8, "exits": 3},
    "ranet_cifar": {"input_shape": (16, 16, 3), "channels": 4,
                    "growth_rate": 4, "head_filters": 8, "exits": 3,
                    "base_blocks": 1, "block_step": 1, "step": 1,
                    "step_mode": "even"},
    "vit_exits": {"image_size": 8, "patch_size": 4, "dim": 8, "depth": 2,
                  "heads": 2, "exits_after": (1, 2)},
    "text_transformer_exits": {"sequence_length": 7, "vocabulary_size": 20,
                               "num_layers": 2, "num_heads": 2,
                               "hidden_dim": 8, "intermediate_dim": 16,
                               "backend": "builtin"},
}


def _inputs(model, n, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(model.input_shape_)
    if model.input_dtype.startswith("int"):
        ids = rng.integers(1, 20, size=shape)
        ids[: n // 2, 5:] = 0  # padding
        return ids.astype(model.input_dtype)
    return rng.normal(size=shape).astype("float32")


def _median_thresholds(outputs, criterion):
    """Per-exit thresholds that let about half the samples out."""
    scores = criteria.get(criterion).scores(outputs.probs)
    return np.median(scores, axis=1).astype(np.float32)


def _check_against_sweep(model, x, policy):
    outputs = collect(model, (x, np.zeros(len(x), "int64")), batch_size=64)
    expected = policy.exit_indices(outputs.probs)
    probs, index, flops = predict_early_exit(model, x, policy=policy,
                                             batch_size=64)
    np.testing.assert_array_equal(index, expected)  # 100% of samples
    np.testing.assert_allclose(
        probs, policy.probabilities(outputs.probs)[expected,
                                                   np.arange(len(x))],
        atol=1e-6)
    np.testing.assert_array_equal(
        flops, np.asarray(model.flops_per_exit())[expected])
    return outputs, index


SLOW = {"msdnet_cifar", "ranet_cifar", "cifar_resnet", "vit_exits"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.large) if n in SLOW else n
    for n in sorted(ZOO)])
def test_every_zoo_family_decides_as_the_sweep(name):
    keras.utils.set_random_seed(0)
    model = get_model(name, num_classes=3, **ZOO[name])
    x = _inputs(model, 96)
    outputs = collect(model, (x, np.zeros(96, "int64")))
    policy = ExitPolicy("max_softmax",
                        _median_thresholds(outputs, "max_softmax"))
    _, index = _check_against_sweep(model, x, policy)
    assert len(np.unique(index)) >= 2  # the batch really split


@pytest.fixture(scope="module")
def trained():
    from keras_eexit.data import load_arrays

    keras.utils.set_random_seed(0)
    arrays = load_arrays("digits")
    model = get_model("small_cnn", num_classes=10, width=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=3, batch_size=64,
              verbose=0)
    return model, arrays["x_test"].astype("float32"), arrays["y_test"]


@pytest.mark.parametrize("criterion,values", [
    ("max_softmax", [0.0, 0.5, 0.8, 0.95, 1.0]),
    ("entropy", [-1.0, 0.05, 0.2, 0.5, 1.0]),
    ("patience", [0, 1, 2]),
    ("static", [1, 2, 3]),
])
def test_decisions_equal_the_sweep_for_every_criterion(trained, criterion,
                                                       values):
    model, x, y = trained
    for value in values:
        _check_against_sweep(model, x, ExitPolicy(criterion, value,
                                                  num_exits=3))


def test_per_exit_thresholds_and_temperatures(trained):
    model, x, _ = trained
    outputs = collect(model, (x, np.zeros(len(x), "int64")))
    median = _median_thresholds(outputs, "max_softmax")
    policy = ExitPolicy("max_softmax", [median[0], median[1], 0.0],
                        temperatures=[1.2, 0.9, 1.0])
    outputs = collect(model, (x, np.zeros(len(x), "int64")))
    expected = policy.exit_indices(outputs.probs)
    _, index, _ = predict_early_exit(model, x, policy=policy)
    # Temperature scaling: logits / T in the graph, log(p) / T in NumPy;
    # equal up to float rounding, so allow a handful of near-ties.
    assert (index == expected).mean() >= 0.99
    assert len(np.unique(index)) == 3


def test_all_and_none_exit_early(trained):
    model, x, _ = trained
    _, index, flops = predict_early_exit(model, x, 0.0)
    assert (index == 0).all() and (flops == model.flops_per_exit()[0]).all()
    _, index, _ = predict_early_exit(model, x, 1.0)
    assert (index == 2).all()
    _, index, _ = predict_early_exit(model, x[:1], 1.0)  # batch of one
    assert index.tolist() == [2]


def test_exited_samples_never_enter_later_segments(trained):
    model, x, _ = trained
    received = [tf.Variable(0, dtype=tf.int32) for _ in range(3)]

    def observe(k, rows):
        received[k].assign_add(rows)

    function = early_exit_function(model, "max_softmax", observe=observe)
    outputs = collect(model, (x[:128], np.zeros(128, "int64")))
    median = _median_thresholds(outputs, "max_softmax")
    thresholds = tf.constant([median[0], median[1], 0.0])
    out = function(tf.constant(x[:128]), thresholds, tf.ones(3))
    index = out["exit_index"].numpy()
    counts = [v.numpy() for v in received]
    assert counts[0] == 128
    assert counts[1] == (index >= 1).sum() < 128
    assert counts[2] == (index >= 2).sum()


def test_datasets_and_bad_input(trained):
    model, x, y = trained
    data = tf.data.Dataset.from_tensor_slices((x[:50], y[:50])).batch(16)
    p1, i1, _ = predict_early_exit(model, data, 0.8)
    p2, i2, _ = predict_early_exit(model, x[:50], 0.8)
    np.testing.assert_array_equal(i1, i2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        predict_early_exit(model, x, 1.5)
    with pytest.raises(ValueError, match="list of 3 numbers"):
        predict_early_exit(model, x, [0.5, 0.5])
    with pytest.raises(ValueError, match="Input shape mismatch"):
        predict_early_exit(model, x[:, :4], 0.5)
    bad = x[:4].copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        predict_early_exit(model, bad, 0.5)
