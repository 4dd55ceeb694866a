"""GradientDominance: cosines against a manual computation, under freezing."""

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.callbacks import GradientDominance
from keras_eexit.callbacks import exit_gradient_cosines


def _manual(model, x, y, weights, variables, training=True):
    """A plain `model(x, training=...)` per exit; the moving statistics
    that a training-mode call moves are put back by hand."""
    saved = [v.numpy() for v in model.non_trainable_variables]
    grads = []
    for k in range(model.num_exits):
        with tf.GradientTape() as tape:
            logits = model(x, training=training)[f"exit_{k + 1}"]
            loss = weights[k] * tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
        g = tape.gradient(loss, variables,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads.append(np.concatenate([np.ravel(t) for t in g]))
        for v, value in zip(model.non_trainable_variables, saved):
            v.assign(value)
    grads = np.array(grads, dtype=np.float64)
    total = grads.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return grads @ total / (np.linalg.norm(grads, axis=1)
                                * np.linalg.norm(total))


def test_uses_exit_weights(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    weights = [0.25, 1.0, 3.0]
    model.exit_weights.assign(weights)
    variables = [v.value for s in model.segments
                 for v in s.trainable_weights]
    np.testing.assert_allclose(
        exit_gradient_cosines(model, x, y, scope="backbone"),
        _manual(model, x, y, weights, variables), rtol=1e-4)


def test_whole_model_is_the_papers_scope(model_factory, tiny_data):
    """Kubaty et al. §3.3: gradients across the entire model, heads too."""
    x, y = tiny_data
    model = model_factory()
    model(x)
    variables = [v.value for part in [*model.segments, *model.heads]
                 for v in part.trainable_weights]
    expected = _manual(model, x, y, [1, 1, 1], variables)
    np.testing.assert_allclose(exit_gradient_cosines(model, x, y), expected,
                               rtol=1e-4)
    backbone = exit_gradient_cosines(model, x, y, scope="backbone")
    assert not np.allclose(expected, backbone)
    for segment in model.segments:  # heads-only phase: heads still count
        segment.trainable = False
    assert np.all(np.isfinite(exit_gradient_cosines(model, x, y)))
    with pytest.raises(ValueError, match="scope"):
        exit_gradient_cosines(model, x, y, scope="heads")


def test_partly_and_fully_frozen_backbone(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model(x)
    model.segments[0].trainable = False  # e.g. sequential training
    variables = [v.value for s in model.segments[1:]
                 for v in s.trainable_weights]
    cosines = exit_gradient_cosines(model, x, y, scope="backbone")
    # Exit 1 only reaches the frozen segment: zero gradient, NaN cosine.
    assert np.isnan(cosines[0])
    np.testing.assert_allclose(cosines[1:],
                               _manual(model, x, y, [1, 1, 1],
                                       variables)[1:], rtol=1e-4)
    for segment in model.segments:  # heads-only phase
        segment.trainable = False
    assert np.all(np.isnan(exit_gradient_cosines(model, x, y,
                                                 scope="backbone")))


def _moving_statistics(model):
    return [v.numpy().copy() for v in model.non_trainable_variables
            if "moving" in v.path]


def test_training_mode_gradients_leave_batchnorm_alone(model_factory,
                                                       tiny_data):
    """The optimizer applies training-mode gradients (BatchNorm on batch
    statistics): that is what is measured, and no moving statistic moves."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # moving stats ≠ 0/1
    variables = [v.value for v in model.trainable_variables]
    before = _moving_statistics(model)
    cosines = exit_gradient_cosines(model, x, y)
    for old, new in zip(before, _moving_statistics(model)):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(cosines, _manual(model, x, y, [1, 1, 1],
                                                variables), rtol=1e-4)
    inference = exit_gradient_cosines(model, x, y, training=False)
    np.testing.assert_allclose(inference, _manual(
        model, x, y, [1, 1, 1], variables, training=False), rtol=1e-4)
    assert np.abs(cosines - inference).max() > 1e-3
    with pytest.raises(ValueError, match="training"):
        exit_gradient_cosines(model, x, y, training="yes")


def test_callback_measures_without_changing_training(model_factory,
                                                     tiny_data):
    x, y = tiny_data
    plain, measured = model_factory(), model_factory()
    for model in (plain, measured):
        model.compile(optimizer="sgd")
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    measured.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False,
                 callbacks=[GradientDominance(x[:16], y[:16], every=1)])
    for a, b in zip(plain.weights, measured.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_records_every_n_steps_and_logs(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    dominance = GradientDominance(x[:16], y[:16], every=3)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                        callbacks=[dominance])
    np.testing.assert_array_equal(dominance.steps, [0, 3, 6])
    assert dominance.cosines.shape == (3, 3)
    assert np.all(np.abs(dominance.cosines) <= 1 + 1e-6)
    assert history.history["grad_cos_exit_3"][-1] == pytest.approx(
        dominance.cosines[-1, 2])
    assert dominance.to_dict()["steps"] == [0, 3, 6]
    with pytest.raises(ValueError, match="every"):
        GradientDominance(x, y, every=0)
