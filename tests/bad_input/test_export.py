"""LiteRT runner and inference: bad input gets a clear message."""

import json

import keras
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from keras_eexit.export import SIDECAR  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.models import small_cnn  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = small_cnn(num_classes=3, width=4)
    path = tmp_path_factory.mktemp("early")
    export_litert(model, path, mode="early_exit")
    return path


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_runner_refuses_non_finite_inputs(exported, value):
    runner = LiteRTRunner(exported)
    x = np.zeros((3, 8, 8, 1), "float32")
    x[1, 2, 3, 0] = value
    with pytest.raises(ValueError, match="(?i)nan|inf|finite"):
        runner.predict(x, 0.5)
    with pytest.raises(ValueError, match="(?i)nan|inf|finite"):
        runner.predict(x[1], 0.5)


def test_runner_accepts_the_tflite_file_path(exported):
    runner = LiteRTRunner(exported / "early_exit.tflite")
    probs, index = runner.predict(np.zeros((2, 8, 8, 1), "float32"), 0.5)
    assert probs.shape == (2, 3) and index.shape == (2,)


def test_runner_names_the_folder_it_wants(tmp_path, exported):
    lone = tmp_path / "early_exit.tflite"
    lone.write_bytes((exported / "early_exit.tflite").read_bytes())
    with pytest.raises(FileNotFoundError, match="directory written by"):
        LiteRTRunner(lone)
    with pytest.raises(FileNotFoundError, match="No LiteRT file"):
        LiteRTRunner(tmp_path / "missing.tflite")
    not_json = tmp_path / "weights.bin"
    not_json.write_bytes(b"\x89\xff\x00binary")
    with pytest.raises(ValueError, match="not a keras-eexit LiteRT sidecar"):
        LiteRTRunner(not_json)


def test_runner_refuses_wrong_threshold_lengths_and_old_sidecars(
        exported, tmp_path):
    runner = LiteRTRunner(exported)
    with pytest.raises(ValueError, match="list of 3 numbers"):
        runner.predict(np.zeros((1, 8, 8, 1), "float32"), [0.5, 0.5])
    meta = json.loads((exported / SIDECAR).read_text())
    meta["format_version"] = 1
    (tmp_path / SIDECAR).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="Export the model again"):
        LiteRTRunner(tmp_path)
