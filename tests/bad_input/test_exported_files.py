"""Exported files check their own inputs (issue 24, items 9 and 11).

Clients of a SavedModel or a `.tflite` file may never import keras_eexit,
so the files are called here the way such a client calls them: the
SavedModel through plain `tf.saved_model.load`, the LiteRT file through the
bare `ai_edge_litert` interpreter. A SavedModel rejects a bad call with a
message; a LiteRT file (no assert op among its built-ins) flags it: exit
index -1 and NaN probabilities on each invalid row.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("ai_edge_litert")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from keras_eexit.cli.main import main  # noqa: E402
from keras_eexit.export import SIDECAR  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.inference import export_saved_model  # noqa: E402
from keras_eexit.models import small_cnn  # noqa: E402

NUM_EXITS = 3
BAD_THRESHOLDS = {
    "one value": [0.5],
    "five values": [0.5] * 5,
    "above the range": [0.5, 1.5, 0.5],
    "below the range": [-0.1, 0.5, 0.5],
    "NaN": [0.5, np.nan, 0.5],
    "Inf": [0.5, 0.5, np.inf],
}
NON_FINITE = {"NaN": np.nan, "Inf": np.inf, "-Inf": -np.inf}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One tiny model: a SavedModel and float and int8 LiteRT files."""
    keras.utils.set_random_seed(0)
    model = small_cnn(num_classes=3, width=4)
    root = tmp_path_factory.mktemp("exported")
    export_saved_model(model, root / "saved")
    calibration = np.random.default_rng(1).random((16, 8, 8, 1))
    for quantization in (None, "int8"):
        export_litert(model, root / str(quantization),
                      quantization=quantization,
                      representative_data=(calibration if quantization
                                           else None))
    model.save(root / "model.keras")
    return root


def _batch(rows=4):
    return np.random.default_rng(0).random((rows, 8, 8, 1)).astype("float32")


# -------------------------------------------------------------- SavedModel
@pytest.fixture(scope="module")
def served(files):
    return tf.saved_model.load(str(files / "saved")).signatures


@pytest.mark.parametrize("name", BAD_THRESHOLDS)
def test_saved_model_rejects_bad_thresholds(served, name):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `thresholds`\. Expected 3 float32 "
                             r"numbers \(one per exit\) between 0 and 1"):
        served["with_thresholds"](
            inputs=tf.constant(_batch()),
            thresholds=tf.constant(BAD_THRESHOLDS[name], tf.float32))


@pytest.mark.parametrize("signature", ["serving_default", "with_thresholds"])
@pytest.mark.parametrize("value", NON_FINITE)
def test_saved_model_rejects_non_finite_inputs_naming_the_row(
        served, signature, value):
    x = _batch()
    x[2, 3, 4, 0] = NON_FINITE[value]
    kwargs = {"inputs": tf.constant(x)}
    if signature == "with_thresholds":
        kwargs["thresholds"] = tf.constant([0.5] * NUM_EXITS)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `inputs`\. Expected finite numbers.*"
                             r"NaN or Inf in rows\] \[2\]"):
        served[signature](**kwargs)


@pytest.mark.parametrize("shape", [(4, 7, 8, 1), (4, 8, 8)])
def test_saved_model_rejects_inputs_of_the_wrong_shape(served, shape):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `inputs`\. Expected shape \(batch, 8, "
                             r"8, 1\).*Received: inputs with shape"):
        served["serving_default"](inputs=tf.constant(
            np.zeros(shape, "float32")))


def test_saved_model_still_serves_valid_calls(served):
    out = served["with_thresholds"](inputs=tf.constant(_batch()),
                                    thresholds=tf.constant([0.0] * 3))
    assert (out["exit_index"].numpy() == 0).all()  # 0: every sample exits


# ------------------------------------------------------------------ LiteRT
@pytest.fixture(scope="module")
def signatures(files):
    """`(quantization, signature) -> runner` of the bare interpreter."""
    runners = {}
    for quantization in ("None", "int8"):
        interpreter = Interpreter(
            model_path=str(files / quantization / "early_exit.tflite"))
        for key in ("serving_default", "one_row"):
            runners[quantization, key] = interpreter.get_signature_runner(key)
    return runners


def _call(signatures, quantization, signature, x, thresholds):
    out = signatures[quantization, signature](
        input=x, thresholds=np.asarray(thresholds, np.float32))
    return out["probabilities"], out["exit_index"]


@pytest.mark.parametrize("quantization", ["None", "int8"])
@pytest.mark.parametrize("signature", ["serving_default", "one_row"])
@pytest.mark.parametrize("name", ["one value", "five values",
                                  "above the range", "NaN"])
def test_litert_flags_bad_thresholds(signatures, quantization, signature,
                                     name):
    x = _batch(4 if signature == "serving_default" else 1)
    probs, index = _call(signatures, quantization, signature, x,
                         BAD_THRESHOLDS[name])
    assert (index == -1).all() and len(index) == len(x)
    assert np.isnan(probs).all()


@pytest.mark.parametrize("quantization", ["None", "int8"])
@pytest.mark.parametrize("value", ["NaN", "Inf"])
def test_litert_flags_only_the_non_finite_row(signatures, quantization,
                                              value):
    x = _batch()
    probs, clean = _call(signatures, quantization, "serving_default", x,
                         [0.5] * 3)
    x[1, 0, 0, 0] = NON_FINITE[value]
    flagged, index = _call(signatures, quantization, "serving_default", x,
                           [0.5] * 3)
    assert index.tolist() == [clean[0], -1, clean[2], clean[3]]
    assert np.isnan(flagged[1]).all()
    np.testing.assert_array_equal(flagged[[0, 2, 3]], probs[[0, 2, 3]])
    _, one = _call(signatures, quantization, "one_row", x[1:2], [0.5] * 3)
    assert one.tolist() == [-1]


@pytest.mark.parametrize("quantization", ["None", "int8"])
def test_litert_one_row_flags_two_rows(signatures, quantization):
    probs, index = _call(signatures, quantization, "one_row", _batch(2),
                         [0.5] * 3)
    assert index.tolist() == [-1] and np.isnan(probs).all()


def test_sidecar_documents_the_flag(files):
    meta = json.loads((files / "None" / SIDECAR).read_text())
    assert meta["invalid_exit_index"] == -1


# ---------------------------------------------- the Python runner, first
@pytest.mark.parametrize("name", ["one value", "above the range", "NaN"])
def test_runner_refuses_bad_thresholds_before_the_call(files, name):
    runner = LiteRTRunner(files / "None")
    with pytest.raises(ValueError, match="argument `thresholds`"):
        runner.predict(_batch(), BAD_THRESHOLDS[name])


@pytest.mark.parametrize("rows", [None, 4])
def test_runner_refuses_non_finite_inputs_as_a_prediction_error(files, rows):
    x = _batch(rows or 1)
    x[-1, 2, 3, 0] = np.nan
    runner = LiteRTRunner(files / "None")
    with pytest.raises(ValueError, match="non-finite") as error:
        runner.predict(x[0] if rows is None else x, 0.5)
    message = str(error.value)
    assert "predictions for them would be NaN" in message, message
    assert "training" not in message, message


# ------------------------------------- int8 calibration data (item 11)
@pytest.mark.parametrize("value", ["NaN", "Inf", "-Inf", "float32 overflow"])
def test_int8_calibration_data_must_be_finite(files, tmp_path, value):
    # The converter's calibration crashed the process on these (exit 139).
    model = keras.saving.load_model(files / "model.keras")
    data = _batch(16).astype("float64")
    data[5, 1, 1, 0] = 1e300 if value == "float32 overflow" else NON_FINITE[
        value]
    with pytest.raises(ValueError, match=r"argument `representative_data`"
                                         r".*finite.*1 of 16 samples, the "
                                         r"first at sample 5"):
        export_litert(model, tmp_path / "out", quantization="int8",
                      representative_data=data)
    assert not (tmp_path / "out").exists()


def test_cli_int8_calibration_file_with_nan_is_one_line(files, tmp_path,
                                                        capsys):
    calibration = tmp_path / "calibration.npy"
    data = _batch(8)
    data[3, 0, 0, 0] = np.nan
    np.save(calibration, data)
    code = main(["export", "--model", str(files / "model.keras"),
                 "--quantization", "int8", "--calibration-data",
                 str(calibration), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2  # bad input (docs/cli.md)
    assert err.count("\n") == 0 and "sample 3" in err, err
    assert not (tmp_path / "out").exists()


# ------------------------------------------ the output path (item 13)
def test_an_existing_file_as_output_is_exit_code_1(files, tmp_path, capsys):
    blocker = tmp_path / "litert"
    blocker.write_text("not a directory")
    code = main(["export", "--model", str(files / "model.keras"), "--out",
                 str(blocker)])
    err = capsys.readouterr().err.strip()
    assert code == 1  # an output that cannot be written (docs/cli.md)
    assert err.count("\n") == 0 and "Errno" not in err, err
    assert str(blocker) in err and "Not a directory" in err
    assert blocker.read_text() == "not a directory"


def test_an_unwritable_output_is_exit_code_1_naming_the_file(
        files, tmp_path, capsys, monkeypatch):
    # (Tests run as root, for whom no directory is read-only: the failure
    # is made where the export creates its first file.)
    from types import SimpleNamespace

    from keras_eexit.utils import atomic

    def read_only(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied",
                              f"{dir}/{prefix}tmp123{suffix}")

    monkeypatch.setattr(atomic, "tempfile",
                        SimpleNamespace(mkstemp=read_only))
    out = tmp_path / "litert"
    code = main(["export", "--model", str(files / "model.keras"), "--out",
                 str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == (f"keras-eexit: error: Permission denied: '{out}' "
                   "(cannot read or write it)"), err  # not a temporary file
    assert not out.exists()  # the directory it made is gone


# ------------------------------------ SavedModel output: all or nothing
@pytest.fixture()
def tiny(files):
    return keras.saving.load_model(files / "model.keras")


def test_a_failed_saved_model_export_leaves_the_earlier_one_intact(
        tiny, tmp_path, monkeypatch):
    out = tmp_path / "served"
    export_saved_model(tiny, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def half_write(module, path, signatures):
        (tf.io.gfile.GFile(f"{path}/saved_model.pb", "wb")).write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", half_write)
    with pytest.raises(OSError, match="No space left"):
        export_saved_model(tiny, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["served"]  # no temp
    monkeypatch.undo()
    served = tf.saved_model.load(str(out)).signatures["serving_default"]
    assert served(inputs=tf.constant(_batch()))["exit_index"].shape == (4,)


def test_saved_model_export_replaces_an_earlier_one(tiny, tmp_path):
    out = tmp_path / "served"
    export_saved_model(tiny, out, thresholds=0.0)
    export_saved_model(tiny, out, thresholds=1.0)
    served = tf.saved_model.load(str(out)).signatures["serving_default"]
    exits = served(inputs=tf.constant(_batch()))["exit_index"].numpy()
    assert (exits == tiny.num_exits - 1).all()  # the second export's rule


def test_saved_model_export_refuses_a_directory_of_other_files(
        tiny, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holding other files") as error:
        export_saved_model(tiny, out)
    assert "\n" not in str(error.value)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_saved_model_export_refuses_a_file_as_its_directory(tiny, tmp_path):
    out = tmp_path / "served"
    out.write_text("a file")
    with pytest.raises(NotADirectoryError, match="it is a file") as error:
        export_saved_model(tiny, out)
    assert "\n" not in str(error)
    assert out.read_text() == "a file"
