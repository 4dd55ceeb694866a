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
from keras_eexit.export import litert_export as export_module  # noqa: E402


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
    ({"thresholds": 1.5}, "argument `thresholds`.*between 0 and 1.*1.5"),
    ({"thresholds": -0.1}, "argument `thresholds`"),
    ({"thresholds": float("nan")}, "argument `thresholds`"),
    ({"thresholds": "0.5"}, "argument `thresholds`"),
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


# --------------------------------------- `threshold=` renamed (issue 24)
def test_threshold_is_renamed_thresholds_with_a_warning(model, tmp_path):
    with pytest.warns(DeprecationWarning,
                      match=r"export_litert\(thresholds=\.\.\.\)"):
        export_litert(model, tmp_path, mode="segments", threshold=0.3)
    runner = LiteRTRunner(tmp_path)
    np.testing.assert_allclose(runner.default_thresholds, [0.3, 0.3])
    x = np.zeros((2, 8, 8, 1), "float32")
    with pytest.warns(DeprecationWarning,
                      match=r"LiteRTRunner\.predict\(thresholds=\.\.\.\)"):
        old = runner.predict(x, threshold=0.0)
    new = runner.predict(x, thresholds=0.0)
    np.testing.assert_array_equal(old[1], new[1])
    with pytest.raises(TypeError, match="pass `thresholds` only"), \
            pytest.warns(DeprecationWarning):
        export_litert(model, tmp_path, threshold=0.3, thresholds=0.3)
    with pytest.raises(TypeError, match="unexpected keyword argument "
                                        "'treshold'"):
        export_litert(model, tmp_path, treshold=0.3)


# ------------------------------------------------ all or nothing on disk
@pytest.fixture
def failing_fsync(monkeypatch):
    """`os.fsync` that fails (a full disk) from its `n`-th call on."""
    def install(n):
        real, calls = export_module.os.fsync, []

        def fsync(fd):
            calls.append(fd)
            if len(calls) >= n:
                raise OSError(28, "No space left on device")
            real(fd)

        monkeypatch.setattr(export_module.os, "fsync", fsync)
    return install


def test_failed_export_keeps_the_previous_one_whole(model, tmp_path,
                                                    failing_fsync):
    export_litert(model, tmp_path, mode="per_exit")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    failing_fsync(2)  # exit_1 written, exit_2 fails
    with pytest.raises(OSError, match=r"No space left on device: .*"
                                      r"exit_2\.tflite'$"):
        export_litert(model, tmp_path, mode="per_exit",
                      quantization="float16")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # exit_1 not replaced, no temporary file


def test_failed_export_leaves_no_directory_behind(model, tmp_path,
                                                  failing_fsync):
    failing_fsync(1)
    with pytest.raises(OSError, match="No space left on device"):
        export_litert(model, tmp_path / "new" / "litert")
    assert not (tmp_path / "new").exists()


def test_an_existing_file_is_not_a_directory(model, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("keep me")
    with pytest.raises(FileExistsError, match="Not a directory"):
        export_litert(model, blocker)
    assert blocker.read_text() == "keep me"
