"""Bad-input inventory: malformed calls to the public API and the CLI.

Each case must fail with a ValueError whose message names the problem (the
`match` pattern), and CLI cases must leave no output behind.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_eexit
from keras_eexit import evaluation
from keras_eexit import layers
from keras_eexit import models
from keras_eexit import regimes
from keras_eexit.cli.main import main
from keras_eexit.fisher import empirical_fisher


def _model():
    return models.get_model("small_cnn", width=4)


def _probs():
    p = np.full((3, 10, 4), 0.25)
    return p, np.zeros(10, int), [1, 2, 3]


def _fit(model, x, y, **kwargs):
    model.compile(optimizer="sgd")
    model.fit(x, y, epochs=1, verbose=0, **kwargs)


X = np.zeros((8, 8, 8, 1), "float32")
Y = np.zeros(8, int)

API_CASES = {
    "unknown model": (lambda: models.get_model("resnet9000"),
                      "Unknown model"),
    "unknown head": (lambda: layers.get_head("linaer", 10), "Unknown head"),
    "one class": (lambda: layers.LinearHead(1), "num_classes"),
    "dropout 1.5": (lambda: layers.LinearHead(3, dropout=1.5), "dropout"),
    "bad cifar depth": (lambda: models.cifar_resnet(depth=21), "depth"),
    "unknown data set": (lambda: keras_eexit.data.load("digitz"),
                         "digits"),
    "batch size 0": (lambda: keras_eexit.data.load("digits", batch_size=0),
                     "batch_size"),
    "validation split 1": (lambda: keras_eexit.data.load(
        "digits", validation_split=1.0), "validation_split"),
    "augment mnist1d": (lambda: keras_eexit.data.load(
        "mnist1d", augment="flip", num_samples=200), "augment"),
    "unknown regime": (lambda: regimes.get_regime("jiont"),
                       "Unknown regime"),
    "regime bad param": (lambda: regimes.get_regime("mixed", foo=1),
                         "Valid parameters"),
    "negative epochs": (lambda: regimes.TwoStage(-1, 1), "backbone_epochs"),
    "phase learning rate inf": (lambda: regimes.Phase(
        "p", 1, learning_rate=float("inf")), "learning_rate"),
    "phase learning rate 0": (lambda: regimes.Phase(
        "p", 1, learning_rate=0.0), "learning_rate"),
    "phase learning rate text": (lambda: regimes.Phase(
        "p", 1, learning_rate="fast"), "learning_rate"),
    "temperature 0": (lambda: regimes.Distillation(
        temperature=0.0, backbone_epochs=1), "temperature"),
    "alpha 2": (lambda: regimes.Distillation(alpha=2.0, mode="joint"),
                "alpha"),
    "negative lambda": (lambda: regimes.SequentialRegime(
        1, regularizer="ewc", lam=-1.0), "lam"),
    "unknown regularizer": (lambda: regimes.SequentialRegime(
        1, regularizer="l1"), "regularizer"),
    "weights wrong length": (lambda: regimes.exit_weights([1, 2], 3),
                             "weights"),
    "NaN weights": (lambda: regimes.exit_weights([1, np.nan, 1], 3),
                    "weights"),
    "labels out of range": (lambda: _fit(_model(), X, Y + 10),
                            "Labels out of range"),
    "non-integer labels": (lambda: _fit(_model(), X, Y + 0.5),
                           "Integer class labels"),
    "wrong input shape": (lambda: _fit(_model(), X[:, :4], Y),
                          "Input shape mismatch"),
    "NaN inputs": (lambda: _fit(_model(), np.where(
        np.arange(X.size).reshape(X.shape) == 70, np.nan, X), Y),
        "non-finite values .* sample 1"),
    "Inf inputs in a data set": (lambda: _fit(
        _model(), tf.data.Dataset.from_tensor_slices(
            (np.full_like(X, np.inf), Y)).batch(4), None),
        "non-finite values"),
    "NaN inputs to evaluate": (lambda: _model().evaluate(
        np.full_like(X, np.nan), Y, verbose=0), "non-finite values"),
    "labels per exit missing": (lambda: _fit(_model(), X, {"exit_1": Y}),
                                "one entry per exit"),
    "phase exit 9": (lambda: _fit(_model(), X, Y, callbacks=[
        regimes.Regime([regimes.Phase("p", 1, train_heads=[9])])]),
        "references exit 9"),
    "fisher exit 5": (lambda: empirical_fisher(
        _model(), tf.data.Dataset.from_tensor_slices((X, Y)).batch(4), 5),
        "exit numbers"),
    "fisher no data": (lambda: empirical_fisher(
        _model(), tf.data.Dataset.from_tensor_slices((X, Y)).batch(4)
        .take(0), 1), "gave none"),
    "sweep threshold 2": (lambda: evaluation.threshold_sweep(*_probs(),
                                                             thresholds=[2.0]),
                          "between 0 and 1"),
    "sweep logits": (lambda: evaluation.threshold_sweep(
        _probs()[0] * 3, *_probs()[1:]), "sum to 1"),
    "sweep label count": (lambda: evaluation.threshold_sweep(
        _probs()[0], np.zeros(3, int), [1, 2, 3]), "Label count"),
    "sweep flops length": (lambda: evaluation.threshold_sweep(
        _probs()[0], _probs()[1], [1, 2]), "FLOPs list"),
    "compare one regime": (lambda: evaluation.compare({"a": [1, 2]}),
                           "at least two regimes"),
    "tap not found": (lambda: keras_eexit.MultiExitModel.from_backbone(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(3,
                                                                name="d")]),
        ["nope"], num_classes=3), "not found"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_bad_input(case):
    make, match = API_CASES[case]
    with pytest.raises(ValueError, match=match):
        make()


CLI_CASES = {
    "unknown model": (["train", "--model", "x"], "Unknown model"),
    "unknown regime": (["train", "--regime", "x"], "Unknown regime"),
    "text model on images": (["train", "--dataset", "digits", "--model",
                              "text_transformer_exits"],
                             "cannot take this data set's inputs"),
    "head for a paper model": (["train", "--dataset", "digits", "--model",
                                "vit_exits", "--head", "mlp"],
                               "has its own exit heads"),
    "bad regime param": (["train", "-p", "nokey"], "KEY=VALUE"),
    "zero epochs": (["train", "--epochs", "0"], "epochs"),
    "zero batch": (["train", "--batch-size", "0"], "batch_size"),
    "resume nothing": (["train", "--resume"], "Nothing to resume"),
    "evaluate missing": (["evaluate", "--model", "/nonexistent.keras"],
                         "not found"),
    "compare bad spec": (["compare", "--regimes", "joint[["],
                         "Invalid regime spec"),
    "export missing": (["export", "--model", "/nonexistent.keras"],
                       "nonexistent"),
    # Issue 19.
    "negative learning rate": (["train", "--learning-rate", "-1"],
                               "learning_rate"),
    "zero learning rate": (["train", "--learning-rate", "0"],
                           "learning_rate"),
    "NaN learning rate": (["train", "--learning-rate", "nan"],
                          "learning_rate"),
    "compare zero learning rate": (["compare", "--learning-rate", "0"],
                                   "learning_rate"),
    "compare zero seeds": (["compare", "--seeds", "0"], "seeds"),
    "compare zero epochs": (["compare", "--epochs", "0"], "epochs"),
    "weights of another length": (["train", "--epochs", "1", "--weights",
                                   "1,2"], "weights"),
    "weights not numbers": (["train", "--weights", "1,x"],
                            "Invalid --weights"),
    "regime param of another regime": (["train", "--regime", "mixed", "-p",
                                        "epochs_per_exit=2"],
                                       "Valid parameters"),
    # Cosine decays each phase from its own rate; multistep is refused.
    "multistep with per-phase rates": (["train", "--epochs", "1",
                                        "--schedule", "multistep",
                                        "--regime", "branch_wise",
                                        "-p", "learning_rate=0.01"],
                                       "--schedule constant or cosine"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input_leaves_nothing(case, tmp_path, capsys):
    argv, match = CLI_CASES[case]
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert not out.exists()


def _interrupted_run(tmp_path):
    """An interrupted `train` run in `tmp_path / "run"` (run.json, backup/)."""
    out = tmp_path / "run"
    backup = out / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1}')
    (out / "run.json").write_text('{"config": {}}')
    return out


def test_resume_cannot_change_the_recorded_configuration(tmp_path, capsys):
    out = _interrupted_run(tmp_path)
    before = sorted(p.name for p in out.rglob("*"))
    assert main(["train", "--resume", "--epochs", "5", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot change --epochs" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.rglob("*")) == before


def test_evaluate_refuses_a_model_of_other_inputs(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = models.get_model("cnn1d", input_shape=(40, 1), num_classes=10,
                             width=4)
    path = tmp_path / "mnist1d.keras"
    model.save(path)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b[" not in err, err
    assert "(40, 1)" in err and "(8, 8, 1)" in err
    assert "--dataset mnist1d" in err
    assert not out.exists()


def test_inventory_is_large_enough():
    # With the two single cases above; other areas add
    # tests/bad_input/test_<area>.py (issue 19: >= 60 cases in all).
    assert len(API_CASES) + len(CLI_CASES) + 2 >= 55
