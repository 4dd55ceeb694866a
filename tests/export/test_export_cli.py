"""`keras-eexit export`."""

import json

import keras
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from keras_eexit.cli.main import main  # noqa: E402
from keras_eexit.export import SIDECAR  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.models import small_cnn  # noqa: E402


def _run(argv):
    return main(argv)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = small_cnn(num_classes=10, width=4)
    model.compile(optimizer="adam")
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path, model


@pytest.mark.parametrize("mode", ["early_exit", "segments"])
def test_export_command_writes_files_and_sidecar(saved_model, tmp_path,
                                                 capsys, mode):
    path, model = saved_model
    out = tmp_path / "litert"
    code = _run(["export", "--model", str(path), "--mode", mode,
                 "--criterion", "entropy", "--threshold", "0.2",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    meta = json.loads((out / SIDECAR).read_text())
    assert meta["mode"] == mode and meta["default_thresholds"] == (
        pytest.approx([0.2] * len(meta["exit_names"])))
    for entry in meta["files"]:
        assert entry["file"] in printed
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(model(x)["exit_3"]))
    probs, index = LiteRTRunner(out).predict(x, 0.0)  # entropy <= 0: last
    assert (index == 2).all()
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_export_command_int8_with_calibration_file(saved_model, tmp_path):
    path, _ = saved_model
    calibration = tmp_path / "calibration.npy"
    np.save(calibration,
            np.random.default_rng(0).random((20, 8, 8, 1)).astype("float32"))
    code = _run(["export", "--model", str(path), "--quantization", "int8",
                 "--calibration-data", str(calibration),
                 "--out", str(tmp_path / "int8")])
    assert code == 0
    assert LiteRTRunner(tmp_path / "int8").quantization == "int8"


@pytest.mark.parametrize("extra,message", [
    (["--mode", "per_exits"], "Unknown mode"),
    (["--quantization", "int4"], "Unknown quantization"),
    (["--quantization", "int8"], "needs calibration inputs"),
    (["--calibration-data", "digits"], "only used with --quantization int8"),
    (["--threshold", "2"], "argument `thresholds`"),
    (["--criterion", "margin"], "Unknown criterion"),
])
def test_export_command_bad_arguments(saved_model, tmp_path, capsys, extra,
                                      message):
    path, _ = saved_model
    code = _run(["export", "--model", str(path), "--out",
                 str(tmp_path / "out")] + extra)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / SIDECAR).exists()


def test_export_command_missing_model(tmp_path, capsys):
    code = _run(["export", "--model", str(tmp_path / "nope.keras"),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "Model file not found" in capsys.readouterr().err


def test_export_command_unwritable_output(saved_model, tmp_path, capsys):
    # Issue 24 item 13: exit code 1 (as every sub-command, docs/cli.md) and
    # one line naming the path, not errno's text.
    path, _ = saved_model
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = _run(["export", "--model", str(path), "--out",
                 str(blocker / "out")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Errno" not in err, err
    assert str(blocker / "out") in err and "Not a directory" in err
