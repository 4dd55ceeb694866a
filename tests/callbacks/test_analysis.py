"""Gradient dominance, numerical rank and the resource monitor."""

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.callbacks import GradientDominance
from keras_eexit.callbacks import NumericalRank
from keras_eexit.callbacks import ResourceMonitor
from keras_eexit.callbacks import exit_gradient_cosines
from keras_eexit.callbacks import numerical_rank


def test_gradient_cosines_equal_a_manual_computation(model_factory,
                                                     tiny_data):
    x, y = tiny_data
    model = model_factory()
    variables = [v.value for s in model.segments
                 for v in s.trainable_weights]
    grads = []
    for k in range(3):
        with tf.GradientTape() as tape:
            logits = model(x, training=False)[f"exit_{k + 1}"]
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
        g = tape.gradient(loss, variables,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads.append(np.concatenate([np.ravel(t) for t in g]))
    total = np.sum(grads, axis=0)
    expected = [g @ total / np.linalg.norm(g) / np.linalg.norm(total)
                for g in grads]
    np.testing.assert_allclose(
        exit_gradient_cosines(model, x, y, scope="backbone",
                              training=False), expected, rtol=1e-4)


def test_numerical_rank_of_a_known_low_rank_matrix():
    rng = np.random.default_rng(0)
    low = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 40))
    assert numerical_rank(low) == 3
    assert numerical_rank(rng.normal(size=(50, 40))) == 40
    assert numerical_rank(rng.normal(size=(20, 5000)), max_features=10) == 10


def test_callbacks_record_during_fit(model_factory, tiny_data, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # no GPU, any machine
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    dominance = GradientDominance(x[:16], y[:16], every=2)
    rank = NumericalRank(x, layers="segments")
    monitor = ResourceMonitor(interval=0.05)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                        callbacks=[dominance, rank, monitor])
    assert [step for step, _ in dominance.history] == [0, 2, 4, 6]
    assert "grad_cos_exit_1" in history.history
    assert len(rank.history) == 2
    assert list(rank.history[0]) == ["segment_1", "segment_2", "segment_3"]
    assert len(monitor.epoch_seconds) == 2 and monitor.peak_host_mb > 0
    assert monitor.phase_seconds[0] > 0
    assert monitor.gpu["available"] is False


def test_numerical_rank_of_named_layers():
    import keras_eexit

    model = keras_eexit.models.get_model("small_cnn", width=4)
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    model.compile(optimizer="sgd")
    rank = NumericalRank(x, layers=["stage1_conv", "stage2_out"])
    model.fit(x, np.zeros(64, int), epochs=1, verbose=0, callbacks=[rank])
    ranks = rank.history[0]
    assert set(ranks) == {"stage1_conv", "stage2_out"}
    assert ranks["stage2_out"] >= 1
    # stage1_conv is linear in the input: its rank equals numerical_rank of
    # the conv output computed by hand.
    conv = model.segments[0].get_layer("stage1_conv")
    expected = numerical_rank(np.asarray(conv(x)))
    assert ranks["stage1_conv"] == expected
    bad = NumericalRank(x, layers=["nope"])
    bad.set_model(model)
    with pytest.raises(ValueError, match="not inside"):
        bad.on_epoch_end(0)
