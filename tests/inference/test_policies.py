"""Exit policies: JSON round trip, calibration on validation, SavedModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import accuracy_drop_policy
from keras_eexit.inference import best_accuracy_curve
from keras_eexit.inference import best_accuracy_policy
from keras_eexit.inference import budgeted_batch_curve
from keras_eexit.inference import budgeted_batch_policy
from keras_eexit.inference import budgeted_batch_thresholds
from keras_eexit.inference import export_saved_model
from keras_eexit.inference import fit_temperatures
from keras_eexit.inference import predict_early_exit
from keras_eexit.models import small_cnn


def _outputs(seed, n=600, k=3, c=5, scale=(1.0, 2.0, 3.0)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(k, n, c))
    for j in range(k):  # deeper exits: more signal
        logits[j, np.arange(n), labels] += scale[j]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return ExitOutputs(probs.astype("float32"), labels,
                       np.array([100, 200, 300]), np.arange(k),
                       ("exit_1", "exit_2", "exit_3"))


def test_policy_json_round_trip(tmp_path):
    policy = ExitPolicy("entropy", [0.123456789, 0.3, -1.0],
                        temperatures=[1.7, 1.1, 0.9],
                        metadata={"method": "hand"})
    policy.save(tmp_path / "policy.json")
    loaded = ExitPolicy.load(tmp_path / "policy.json")
    assert loaded == policy
    np.testing.assert_array_equal(loaded.threshold_array(),
                                  policy.threshold_array())
    assert loaded.metadata == {"method": "hand"}
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="Not a keras-eexit exit policy"):
        ExitPolicy.load(tmp_path / "bad.json")


def test_budgeted_batch_follows_the_geometric_schedule():
    validation = _outputs(0)
    for q in (0.5, 1.0, 2.0):
        policy = budgeted_batch_thresholds(validation, q)
        ratios = policy.evaluate(validation).exit_ratios[0]
        shares = q ** np.arange(1, 4) / (q ** np.arange(1, 4)).sum()
        # MSDNet: floor(N * share_k) samples at exit k (k < K).
        np.testing.assert_allclose(ratios[:2],
                                   np.floor(600 * shares[:2]) / 600)


def test_calibration_never_reads_the_test_split():
    validation, test = _outputs(0), _outputs(1)
    garbage = ExitOutputs(np.full_like(test.probs, 1 / 5), test.labels,
                          test.flops, test.params, test.exit_names)
    a = budgeted_batch_curve(validation, test)
    b = budgeted_batch_curve(validation, garbage)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert a.thresholds.shape == (39, 3)
    # The curve is the test sweep of the validation thresholds.
    again = threshold_sweep(test, criterion="max_softmax",
                            thresholds=a.thresholds)
    np.testing.assert_array_equal(again.accuracy, a.accuracy)


def test_budget_and_accuracy_drop_policies():
    validation = _outputs(0)
    policy = budgeted_batch_policy(validation, 180.0)
    assert policy.metadata["validation_flops"] <= 180.0
    final = (validation.probs[-1].argmax(-1) == validation.labels).mean()
    drop = accuracy_drop_policy(validation, 0.02)
    result = drop.evaluate(validation)
    assert result.accuracy[0] >= final - 0.02
    best_global = threshold_sweep(validation, criterion="max_softmax")
    fits = best_global.accuracy >= final - 0.02
    assert result.mean_flops[0] <= best_global.mean_flops[fits].min()
    with pytest.raises(ValueError, match="budget"):
        budgeted_batch_policy(validation, 50.0)  # below exit 1's cost
    other = ExitOutputs(np.full((3, 10, 4), 0.25, "float32"),
                        np.zeros(10, "int64"), validation.flops,
                        validation.params, validation.exit_names)
    with pytest.raises(ValueError, match="classes"):
        budgeted_batch_curve(validation, other)


def test_best_accuracy_policy_beats_every_global_threshold_in_budget():
    # A weak first exit (no signal): the geometric schedule must feed it,
    # the best-accuracy search need not.
    validation = _outputs(0, scale=(0.0, 2.5, 4.0))
    every = threshold_sweep(validation, criterion="max_softmax")
    for budget in (120.0, 180.0, 250.0):
        policy = best_accuracy_policy(validation, budget)
        result = policy.evaluate(validation)
        assert result.mean_flops[0] <= budget
        assert policy.metadata["validation_flops"] == result.mean_flops[0]
        fits = every.mean_flops <= budget
        assert result.accuracy[0] >= every.accuracy[fits].max()
        schedule = budgeted_batch_policy(validation, budget).evaluate(
            validation)
        assert result.accuracy[0] >= schedule.accuracy[0]
    assert policy.thresholds[-1] == 0.0  # the last exit takes the rest
    with pytest.raises(ValueError, match="at least the first exit's cost"):
        best_accuracy_policy(validation, 99.0)
    with pytest.raises(ValueError, match="criterion"):
        best_accuracy_policy(validation, 200.0, criterion="patience")


def test_best_accuracy_curve_never_reads_the_test_split():
    validation, test = _outputs(0), _outputs(1)
    garbage = ExitOutputs(np.full_like(test.probs, 1 / 5), test.labels,
                          test.flops, test.params, test.exit_names)
    a = best_accuracy_curve(validation, test, budgets=[150.0, 250.0])
    b = best_accuracy_curve(validation, garbage, budgets=[150.0, 250.0])
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert a.thresholds.shape == (2, 3)
    assert best_accuracy_curve(validation, test).thresholds.shape == (39, 3)


def test_temperature_scaling_lowers_ece():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(3, 4000, 5))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in probs[0]])
    probs[1:] = probs[0]  # calibrated: labels drawn from the probabilities
    sharp = probs ** 3  # over-confident: logits times 3
    sharp /= sharp.sum(-1, keepdims=True)
    fit = fit_temperatures(ExitOutputs(sharp.astype("float32"), labels,
                                       np.array([1, 2, 3]), np.arange(3),
                                       ("a", "b", "c")))
    np.testing.assert_allclose(fit["temperatures"], 3.0, rtol=0.1)
    assert np.all(fit["ece_after"] < fit["ece_before"] / 2)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return small_cnn(num_classes=4, width=4)


@pytest.mark.large
def test_saved_model_serves_the_same_decisions(model, tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 1)).astype(
        "float32")
    # Distinct per-exit thresholds and temperatures: each exit reads its own.
    policy = ExitPolicy("max_softmax", [0.3, 0.5, 0.0],
                        temperatures=[0.5, 2.0, 1.5])
    export_saved_model(model, tmp_path / "sm", policy=policy)
    served = tf.saved_model.load(str(tmp_path / "sm"))
    out = served.signatures["serving_default"](inputs=tf.constant(x))
    expected_probs, expected, flops = predict_early_exit(model, x,
                                                         policy=policy)
    np.testing.assert_array_equal(out["exit_index"].numpy(), expected)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected_probs,
                               atol=1e-6)
    np.testing.assert_array_equal(out["flops"].numpy(), flops)
    for k, row in enumerate(([0.0, 0.0, 0.0], [1.0, 0.0, 0.0],
                             [1.0, 1.0, 0.0])):  # everyone at exit k
        out = served.signatures["with_thresholds"](
            inputs=tf.constant(x), thresholds=tf.constant(row))
        assert (out["exit_index"].numpy() == k).all()
        probs, _, _ = predict_early_exit(model, x, row,
                                         temperatures=policy.temperatures)
        np.testing.assert_allclose(out["probabilities"].numpy(), probs,
                                   atol=1e-6)
        logits = np.asarray(model(x)[model.exit_names[k]])
        np.testing.assert_allclose(
            probs, tf.nn.softmax(logits / policy.temperatures[k]), atol=1e-5)
