"""LiteRT export and runner: bad input gets clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("ai_edge_litert")

from keras_eexit import MultiExitModel  # noqa: E402
from keras_eexit.export import LiteRTExportError  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    segments = [
        keras.Sequential([keras.Input((8, 8, 1)),
                          keras.layers.Conv2D(4, 3, padding="same")],
                         name="seg_1"),
        keras.Sequential([keras.Input((8, 8, 4)),
                          keras.layers.Conv2D(4, 3, padding="same")],
                         name="seg_2"),
    ]
    heads = [keras.Sequential([keras.layers.GlobalAveragePooling2D(),
                               keras.layers.Dense(3)], name=f"exit_{k}")
             for k in (1, 2)]
    return MultiExitModel(segments, heads, name="tiny")


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    paths = {}
    for mode in ("early_exit", "segments"):
        path = tmp_path_factory.mktemp(mode)
        export_litert(model, path, mode=mode, criterion="entropy")
        paths[mode] = path
    return paths


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "early"}, "Unknown mode 'early'.*Did you mean 'early_exit'"),
    ({"criterion": "margin"}, "Unknown criterion 'margin'"),
    ({"quantization": "int4"}, "Unknown quantization 'int4'"),
    ({"threshold": 1.5}, "argument `threshold`.*between 0 and 1.*1.5"),
    ({"threshold": -0.1}, "argument `threshold`"),
    ({"threshold": float("nan")}, "argument `threshold`"),
    ({"threshold": "0.5"}, "argument `threshold`"),
    ({"quantization": "int8"},
     "argument `representative_data`.*\\(num_samples, 8, 8, 1\\)"),
    ({"quantization": "int8",
      "representative_data": np.zeros((10, 8, 8, 3), "float32")},
     "representative_data.*shape \\(10, 8, 8, 3\\)"),
    ({"quantization": "int8",
      "representative_data": np.zeros((8, 8, 1), "float32")},
     "representative_data.*shape \\(8, 8, 1\\)"),
    ({"quantization": "int8",
      "representative_data": np.zeros((0, 8, 8, 1), "float32")},
     "representative_data.*empty"),
    ({"representative_data": np.zeros((10, 8, 8, 1), "float32")},
     "representative_data.*quantization='int8'"),
    # Entropy's score graph does not convert to int8 (the converter fails
    # on its select): refused with the criteria that do.
    ({"criterion": "entropy", "quantization": "int8",
      "representative_data": np.zeros((10, 8, 8, 1), "float32")},
     "argument `criterion`.*max_softmax.*quantization='int8'"),
])
def test_bad_export_arguments(model, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_litert(model, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists() or not list(
        (tmp_path / "out").iterdir())


def test_representative_dataset_of_pairs_is_accepted(model, tmp_path):
    data = tf.data.Dataset.from_tensor_slices(
        (np.random.default_rng(0).random((12, 8, 8, 1)).astype("float32"),
         np.zeros(12, "int32"))).batch(4)
    export_litert(model, tmp_path, mode="per_exit", quantization="int8",
                  representative_data=data)
    probs, index = LiteRTRunner(tmp_path).predict(np.zeros((2, 8, 8, 1)))
    assert probs.shape == (2, 3) and index.shape == (2,)


def test_path_must_be_a_directory(model, tmp_path):
    with pytest.raises(ValueError, match="argument `path`.*directory"):
        export_litert(model, tmp_path / "model.tflite")


def test_unbuilt_or_foreign_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="MultiExitModel"):
        export_litert(keras.Sequential([keras.layers.Dense(2)]), tmp_path)


@pytest.mark.parametrize("mode", ["early_exit", "segments"])
@pytest.mark.parametrize("threshold", [1.01, -0.5, float("inf"), None, True])
def test_runner_rejects_thresholds_outside_the_range(exported, mode,
                                                     threshold):
    runner = LiteRTRunner(exported[mode])
    x = np.zeros((2, 8, 8, 1), "float32")
    if threshold is None:  # the sidecar default is valid
        runner.predict(x, threshold)
        return
    with pytest.raises(ValueError,
                       match="between 0 and 1 for criterion .entropy."):
        runner.predict(x, threshold)


def test_runner_rejects_inputs_of_the_wrong_shape(exported):
    runner = LiteRTRunner(exported["early_exit"])
    with pytest.raises(ValueError, match="expects one sample of shape "
                                         "\\(8, 8, 1\\).*\\(2, 8, 8\\)"):
        runner.predict(np.zeros((2, 8, 8)), 0.5)


def test_predict_all_needs_every_exit(exported):
    with pytest.raises(ValueError, match="per_exit"):
        LiteRTRunner(exported["early_exit"]).predict_all(
            np.zeros((1, 8, 8, 1)))


def test_runner_without_sidecar(tmp_path):
    with pytest.raises(FileNotFoundError, match="litert_export.json"):
        LiteRTRunner(tmp_path)


class Determinant(keras.layers.Layer):
    """Appends det of a 2x2 block: `MatrixDeterminant` has no LiteRT
    built-in kernel (it needs Flex)."""

    def call(self, inputs):
        block = tf.reshape(inputs[:, :4], [-1, 2, 2])
        return tf.concat([inputs, tf.linalg.det(block)[:, None]], axis=-1)


@pytest.mark.parametrize("mode", ["early_exit", "per_exit"])
def test_flex_op_is_refused_naming_the_layer_and_op(tmp_path, mode):
    segments = [
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(6)],
                         name="seg_1"),
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(6),
                          Determinant(name="determinant")], name="seg_2"),
    ]
    heads = [keras.layers.Dense(3, name="exit_1"),
             keras.layers.Dense(3, name="exit_2")]
    model = MultiExitModel(segments, heads)
    with pytest.raises(LiteRTExportError,
                       match="MatrixDeterminant.*'determinant'.*Flex") as info:
        export_litert(model, tmp_path, mode=mode)
    assert info.value.ops == ("MatrixDeterminant",)
    assert info.value.layers == ("determinant",)
    assert not list(tmp_path.glob("*.tflite"))


def test_bad_damping_declaration(tmp_path):
    head = keras.layers.Dense(3, name="exit_1")
    head.drop_units = 2
    model = MultiExitModel(
        [keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])],
        [head])
    with pytest.raises(ValueError, match="drop_units.*'exit_1'"):
        export_litert(model, tmp_path)
