"""AccumulateFisher and SnapshotTeacher, the standalone callbacks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.callbacks import AccumulateFisher
from keras_eexit.callbacks import SnapshotTeacher
from keras_eexit.fisher import EWCPenalty
from keras_eexit.fisher import empirical_fisher


def test_accumulate_fisher_over_two_fits(model_factory, tiny_data):
    x, y = tiny_data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    callback = AccumulateFisher(ds, exit=2)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    first = empirical_fisher(model, ds, 2)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    second = empirical_fisher(model, ds, 2)
    for path, value in callback.fisher.items():
        np.testing.assert_allclose(value, first[path] + second[path],
                                   rtol=1e-5, atol=1e-7)
    weights = {v.path: np.array(v) for s in model.segments[:2]
               for v in s.trainable_weights}
    for path, anchor in callback.anchors.items():
        np.testing.assert_array_equal(anchor, weights[path])
    # The store feeds the EWC term of a custom loop: 0 at the anchors.
    penalty = EWCPenalty(5.0, store=callback.store)
    assert float(penalty(model, None, None, None)[0]) == 0.0
    model.segments[0].trainable_weights[0].assign_add(
        np.ones(model.segments[0].trainable_weights[0].shape, "float32"))
    kernel = model.segments[0].trainable_weights[0].path
    assert float(penalty(model, None, None, None)[0]) == pytest.approx(
        5.0 * callback.fisher[kernel].sum(), rel=1e-5)


def test_fisher_store_is_saved_by_save_weights(model_factory, tiny_data,
                                               tmp_path):
    x, y = tiny_data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = model_factory()
    model.compile(optimizer="sgd")
    callback = AccumulateFisher(ds, exit=1)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    model.save_weights(tmp_path / "w.weights.h5")
    other = model_factory(seed=1)
    restored = AccumulateFisher(ds, exit=1)
    restored.set_model(other)
    other.load_weights(tmp_path / "w.weights.h5")
    saved = list(callback.fisher.values())
    assert any(v.any() for v in saved)
    for value, loaded in zip(saved, restored.fisher.values()):
        np.testing.assert_array_equal(loaded, value)


def test_snapshot_teacher_keeps_the_starting_weights(model_factory,
                                                     tiny_data):
    x, y = tiny_data
    model = model_factory()
    start = model(x, training=False)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    snap = SnapshotTeacher()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[snap])
    teacher = snap.teacher(x, training=False)
    for name in model.exit_names:
        np.testing.assert_allclose(teacher[name], start[name], atol=1e-6)
    assert not np.allclose(model(x, training=False)["exit_3"],
                           start["exit_3"])
    snap.take()
    np.testing.assert_allclose(snap.teacher(x)["exit_3"],
                               model(x)["exit_3"], atol=1e-6)
