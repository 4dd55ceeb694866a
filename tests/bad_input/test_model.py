"""Bad input to `MultiExitModel.fit` / `evaluate`: one clear message each.

Issue 19: empty data, string labels, lists of strings, booleans — each
refused before Keras traces anything, naming the problem.
"""

import numpy as np
import pytest
import tensorflow as tf


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_empty_arrays(method, tiny_model):
    tiny_model.compile(optimizer="sgd")
    x = np.zeros((0, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=r"received 0 samples"):
        getattr(tiny_model, method)(x, np.zeros((0,), "int64"), verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_empty_dataset(method, tiny_model):
    tiny_model.compile(optimizer="sgd")
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((4, 8, 8, 1), "float32"), np.zeros((4,), "int64"))
    ).batch(2).take(0)
    with pytest.raises(ValueError, match=r"empty tf.data.Dataset"):
        getattr(tiny_model, method)(data, verbose=0)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog"] * 16),
    ["cat", "dog"] * 16,
    np.array(["cat", "dog"] * 16, dtype=object),
])
def test_string_labels(labels, tiny_model, tiny_data):
    x, _ = tiny_data
    tiny_model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"Labels are strings.*unique"):
        tiny_model.fit(x, labels, verbose=0)


def test_boolean_labels(tiny_model, tiny_data):
    x, _ = tiny_data
    tiny_model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"Labels are booleans"):
        tiny_model.fit(x, np.arange(32) % 2 == 0, verbose=0)


def test_list_of_integer_labels_is_fine(tiny_model, tiny_data):
    x, y = tiny_data
    tiny_model.compile(optimizer="sgd")
    tiny_model.fit(x, [int(v) for v in y], epochs=1, verbose=0)


def test_label_out_of_range_in_a_list(tiny_model, tiny_data):
    x, y = tiny_data
    tiny_model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"Labels out of range"):
        tiny_model.fit(x, [9] * 32, verbose=0)
