"""Bad input to inference, calibration, exit policies and losses: one clear
line naming the problem and the valid choices, never numbers computed from
the wrong input."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import MultiExitModel
from keras_eexit import evaluation
from keras_eexit import inference
from keras_eexit.evaluation import ExitOutputs
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import predict_early_exit
from keras_eexit.inference.calibration import MIN_CALIBRATION_SAMPLES
from tests.conftest import make_tiny_model


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message, message
    return message


# ------------------------------------------------- inputs of the wrong size
def _undeclared_model():
    """Segments without a declared input, built on 8x8 images: the stages
    end in global pooling, so the layers accept any image size."""
    keras.utils.set_random_seed(0)
    heads = [keras.Sequential([keras.layers.GlobalAveragePooling2D(),
                               keras.layers.Dense(4)], name=f"exit_{k + 1}")
             for k in range(2)]
    model = MultiExitModel(
        [keras.layers.Conv2D(4, 3, padding="same") for _ in range(2)], heads)
    model.build((None, 8, 8, 1))
    model.compile()
    return model


def _declared_model():
    model = make_tiny_model(num_exits=2)
    model.compile()
    return model


MODELS = {"declared_input": _declared_model,
          "built_without_input": _undeclared_model}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    return MODELS[request.param]()


def _nine_by_nine(labelled, static_shape):
    x = np.random.default_rng(0).normal(size=(6, 9, 9, 1)).astype("float32")
    y = np.arange(6) % 4
    if static_shape is None:
        return (x, y) if labelled else x
    spec = tf.TensorSpec(static_shape, tf.float32)

    def pairs():
        yield x, y

    data = tf.data.Dataset.from_generator(
        pairs, output_signature=(spec, tf.TensorSpec((None,), tf.int64)))
    return data if labelled else data.map(lambda a, b: a)


CALLS = {
    "predict": (False, lambda m, d: m.predict(d, verbose=0)),
    "fit": (True, lambda m, d: m.fit(*_split(d), verbose=0)),
    "evaluate": (True, lambda m, d: m.evaluate(*_split(d), verbose=0)),
    "predict_early_exit": (False, lambda m, d: predict_early_exit(m, d,
                                                                  0.5)),
    "collect": (True, lambda m, d: evaluation.collect(m, d)),
}


def _split(data):
    return data if isinstance(data, tuple) else (data,)


@pytest.mark.parametrize("static_shape", [None, (None, 9, 9, 1),
                                          (None, None, None, 1)],
                         ids=["arrays", "dataset", "dataset_unknown_shape"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_inputs_of_another_size_are_refused_everywhere(model, call,
                                                       static_shape):
    # 9x9 images into an 8x8 model: one clear line from every entry point,
    # whether or not a layer would fail (global pooling accepts any size).
    labelled, run = CALLS[call]
    data = _nine_by_nine(labelled, static_shape)
    with pytest.raises(ValueError, match=r"Input shape mismatch.*\(None, "
                       r"8, 8, 1\).*9, 9, 1\)") as error:
        run(model, data)
    _one_line(error)


def test_the_right_size_still_works(model):
    x = np.zeros((3, 8, 8, 1), "float32")
    assert model.predict(x, verbose=0)["exit_1"].shape == (3, 4)
    _, index, _ = predict_early_exit(model, x, 0.5)
    assert index.shape == (3,)


# ------------------------------------------------------- predict_early_exit
@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "8"])
def test_predict_early_exit_bad_batch_size(batch_size):
    model = make_tiny_model(num_exits=2)
    with pytest.raises(ValueError, match=r"argument `batch_size`. Expected "
                       r"an integer >= 1") as error:
        predict_early_exit(model, np.zeros((4, 8, 8, 1), "float32"), 0.5,
                           batch_size=batch_size)
    _one_line(error)


def test_predict_early_exit_data_set_of_dicts():
    model = make_tiny_model(num_exits=2)
    data = tf.data.Dataset.from_tensor_slices(
        {"image": np.zeros((4, 8, 8, 1), "float32")}).batch(2)
    with pytest.raises(ValueError, match="Expected a tf.data.Dataset of "
                       "input batches or of \\(x, y\\) pairs"):
        predict_early_exit(model, data, 0.5)


@pytest.mark.parametrize("call", ["predict_early_exit", "collect"])
def test_nan_inputs_to_inference_speak_of_predictions(call):
    model = make_tiny_model(num_exits=2)
    x = np.zeros((4, 8, 8, 1), "float32")
    x[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="first in sample 2") as error:
        if call == "collect":
            evaluation.collect(model, (x, np.zeros(4, int)))
        else:
            predict_early_exit(model, x, 0.5)
    message = _one_line(error)
    assert "its predictions for them would be NaN" in message
    assert "training" not in message


@pytest.mark.parametrize("labelled", [False, True])
def test_nan_in_a_data_set_for_predict_early_exit_names_the_sample(labelled):
    """Batches of a `tf.data` set are checked as they come: the NaN in the
    second batch is named by its index in the whole data set."""
    model = make_tiny_model(num_exits=2)
    x = np.zeros((6, 8, 8, 1), "float32")
    x[4, 1, 1, 0] = np.nan
    data = (tf.data.Dataset.from_tensor_slices((x, np.zeros(6, int)))
            if labelled else tf.data.Dataset.from_tensor_slices(x))
    with pytest.raises(ValueError, match="first in sample 4") as error:
        predict_early_exit(model, data.batch(3), 0.5)
    assert "its predictions for them would be NaN" in _one_line(error)


# ------------------------------------------------------ exit policy files
GOOD = ExitPolicy("max_softmax", [0.5, 0.6, 1.0]).to_dict()


def _without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize("content,match", [
    (_without("thresholds"), r"lacks the key\(s\) \['thresholds'\]"),
    (_without("criterion"), r"lacks the key\(s\) \['criterion'\]"),
    (dict(GOOD, metadata=[1, 2]), r"\"metadata\" must be a JSON object.*"
     r"received a list"),
    (dict(GOOD, metadata="calibrated"), r"\"metadata\" must be a JSON "
     r"object.*received a string"),
    (dict(GOOD, thresholds="high"), r"\"thresholds\" must be a non-empty "
     r"list of numbers.*received a string"),
    (dict(GOOD, thresholds=[]), r"\"thresholds\" must be a non-empty"),
    (dict(GOOD, thresholds={"exit_1": 0.5}), r"\"thresholds\".*received a "
     r"JSON object"),
    (dict(GOOD, format_version="1"), r"\"format_version\" must be an "
     r"integer"),
])
def test_policy_file_names_the_file_and_the_key(tmp_path, content, match):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match) as error:
        ExitPolicy.load(path)
    assert _one_line(error).startswith(f"{path}: ")


# --------------------------------------------------- calibration minimum
def _validation(n, seed=0, k=3, c=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(k, n, c)) * np.array([1.0, 2.0, 3.0])[
        :, None, None]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return ExitOutputs(probs.astype("float32"), rng.integers(0, c, n),
                       np.array([10, 20, 30]), np.array([1, 2, 3]),
                       ("exit_1", "exit_2", "exit_3"), base_flops=25.0)


CALIBRATIONS = {
    "budgeted_batch_thresholds":
        lambda v: inference.budgeted_batch_thresholds(v, 0.5),
    "budgeted_batch_policy":
        lambda v: inference.budgeted_batch_policy(v, 20),
    "budgeted_batch_curve":
        lambda v: inference.budgeted_batch_curve(v, _validation(100)),
    "accuracy_drop_policy": lambda v: inference.accuracy_drop_policy(v),
    "best_accuracy_policy":
        lambda v: inference.best_accuracy_policy(v, 20),
    "best_accuracy_curve":
        lambda v: inference.best_accuracy_curve(v, _validation(100),
                                                budgets=[20]),
    "fit_temperatures": lambda v: inference.fit_temperatures(v),
}


@pytest.mark.parametrize("n", [1, 2, MIN_CALIBRATION_SAMPLES - 1])
@pytest.mark.parametrize("calibration", sorted(CALIBRATIONS))
def test_calibration_refuses_too_few_validation_samples(calibration, n):
    with pytest.raises(ValueError, match=f"at least {MIN_CALIBRATION_SAMPLES}"
                       f" validation samples.*Received: validation with {n} "
                       "sample") as error:
        CALIBRATIONS[calibration](_validation(n))
    _one_line(error)


def test_temperature_at_a_search_bound_warns_with_the_numbers():
    # Every validation sample right at exit 1: its NLL keeps falling as T
    # falls, so T runs towards the lower bound; a warning says so.
    # Exits 2 and 3 are right on 3 samples of 4 with confidence 0.6: an
    # interior minimum, no warning.
    labels = np.arange(40) % 4
    predicted = np.where(np.arange(40) % 4 == 0, (labels + 1) % 4, labels)
    probs = np.full((3, 40, 4), 0.4 / 3, "float32")
    probs[1:, np.arange(40), predicted] = 0.6
    probs[0] = 0.1 / 3
    probs[0, np.arange(40), labels] = 0.9
    validation = ExitOutputs(probs, labels, np.array([10, 20, 30]),
                             np.array([1, 2, 3]),
                             ("exit_1", "exit_2", "exit_3"))
    with pytest.warns(UserWarning, match=r"exit 1 found no minimum of the "
                      r"validation NLL inside the bounds \(0.05, 20.0\).*"
                      r"classifies 40 of 40 validation samples correctly"):
        fit = inference.fit_temperatures(validation)
    assert 0.05 < fit["temperatures"][1] < 1  # 0.6 confident, 75% right


# ------------------------------------------- losses given the other labels
def _labels(form):
    y = np.arange(16) % 4
    return np.eye(4, dtype="float32")[y] if form == "one_hot" else y


@pytest.mark.parametrize("loss,fit_labels,eval_labels,given,taken", [
    (keras.losses.CategoricalCrossentropy(from_logits=True), "one_hot",
     "integer", r"integer class labels of shape \(None,\)",
     r"one-hot rows of shape \(batch, 4\)"),
    (keras.losses.CategoricalCrossentropy(from_logits=True), "integer",
     None, r"integer class labels of shape \(None,\)",
     r"one-hot rows of shape \(batch, 4\)"),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
     "one_hot", None, r"one-hot rows of shape \(None, 4\)",
     r"integer class labels of shape \(batch,\)"),
], ids=["cce_fit_one_hot_evaluate_integers", "cce_integers",
        "sparse_cce_one_hot"])
def test_cross_entropy_given_the_other_label_form(loss, fit_labels,
                                                  eval_labels, given, taken):
    model = make_tiny_model(num_exits=2)
    model.compile(loss=loss)
    x = np.zeros((16, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=f"received {given}, but it takes "
                       f"{taken}.*loss=None") as error:
        model.fit(x, _labels(fit_labels), verbose=0)
        model.evaluate(x, _labels(eval_labels), verbose=0)
    assert type(loss).__name__ + "(from_logits=True)" in _one_line(error)
