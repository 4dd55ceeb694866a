"""Early exit, evaluation, calibration and data on the JAX and PyTorch
backends.

Runs only under `KERAS_BACKEND=jax` or `torch`: `test_inference_jax_run.py`
and `test_training_torch_run.py` run this module there with TensorFlow
made unimportable, so everything here also shows that none of it needs
TensorFlow. Batched early exit (`inference/compaction_host.py`) must take
the exits the sweep's rule gives on `collect`'s probabilities, for every
criterion (the two toy criteria of `tests/inference/toy_criteria.py`
included), with per-exit thresholds and temperatures, and the exits
TensorFlow's graph takes; on JAX each stage compiles once per bucket
size, on PyTorch each runs on exactly the rows that reach it.
"""

import importlib
import json
import math
import os
import pathlib
import warnings

import keras
import numpy as np
import pytest

from keras_eexit import MultiExitModel
from keras_eexit import criteria
from keras_eexit import load_model
from keras_eexit.data import load
from keras_eexit.data import load_arrays
from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import collect
from keras_eexit.evaluation import damping_outputs
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import accuracy_drop_policy
from keras_eexit.inference import budgeted_batch_policy
from keras_eexit.inference import expected_calibration_error
from keras_eexit.inference import export_saved_model
from keras_eexit.inference import fit_temperatures
from keras_eexit.inference import predict_early_exit
from keras_eexit.inference.compaction_host import bucket_size
from keras_eexit.inference.predict import host_early_exit
from keras_eexit.models import get_model
from keras_eexit.utils.batches import count_batches
from tests.inference.toy_criteria import LeastConfidence
from tests.inference.toy_criteria import TopTwoMargin

pytestmark = pytest.mark.skipif(
    keras.backend.backend() not in ("jax", "torch"),
    reason="JAX and PyTorch backend checks (test_inference_jax_run.py and "
    "test_training_torch_run.py run them there)")

CRITERIA = ("max_softmax", "entropy", "patience", "static",
            TopTwoMargin.name, LeastConfidence.name)
"""Every built-in criterion and the two toy ones (registered by `toys`)."""

REFERENCE_VARIABLE = "KERAS_EEXIT_TF_EARLY_EXIT_REFERENCE"
"""Names a directory where a runner's TensorFlow process saved a model
and the exits TensorFlow's early-exit graph takes (set in the JAX and
PyTorch runs)."""


@pytest.fixture(scope="module")
def digits():
    return load_arrays("digits", validation_split=0.25, seed=0)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return get_model("small_cnn", num_classes=10, width=4)


@pytest.fixture(scope="module")
def test_outputs(model, digits):
    return collect(model, (digits["x_test"][:150], digits["y_test"][:150]))


@pytest.fixture(scope="module")
def toys():
    names = [criteria.register(cls()).name
             for cls in (TopTwoMargin, LeastConfidence)]
    yield names
    for name in names:
        criteria.unregister(name)


def _check_against_sweep(model, x, outputs, policy, batch_size=64):
    expected = policy.exit_indices(outputs.probs)
    probs, index, flops = predict_early_exit(model, x, policy=policy,
                                             batch_size=batch_size)
    np.testing.assert_array_equal(index, expected)  # every sample
    np.testing.assert_allclose(
        probs, policy.probabilities(outputs.probs)[expected,
                                                   np.arange(len(x))],
        atol=1e-6)
    np.testing.assert_array_equal(
        flops, np.asarray(model.flops_per_exit())[expected])
    return index


def policies_of(name, outputs):
    """Rules of `name`: per-exit thresholds just off the median scores,
    with and without temperatures, or each integer threshold."""
    criterion = criteria.get(name)
    exits = len(outputs.probs)
    if criterion.integer:
        low, high = criterion.threshold_range(exits)
        return [ExitPolicy(name, t, num_exits=exits)
                for t in range(int(low), int(high) + 1)]
    median = np.median(criterion.scores(outputs.probs), axis=1)
    thresholds = (median + np.float32(1e-4)).astype(np.float32)
    temperatures = np.linspace(1.3, 0.8, exits)
    return [ExitPolicy(name, thresholds),
            ExitPolicy(name, thresholds, temperatures=temperatures),
            ExitPolicy(name, criterion.eager_threshold(exits),
                       num_exits=exits),
            ExitPolicy(name, criterion.never_exit(exits), num_exits=exits)]


@pytest.mark.parametrize("name", CRITERIA)
def test_decisions_equal_the_sweep_for_every_criterion(
        model, digits, test_outputs, toys, name):
    x = digits["x_test"][:150]
    taken = set()
    for policy in policies_of(name, test_outputs):
        taken |= set(_check_against_sweep(model, x, test_outputs,
                                          policy).tolist())
    assert taken == {0, 1, 2}  # the rules really split the batch


@pytest.mark.skipif(
    REFERENCE_VARIABLE not in os.environ,
    reason="needs the TensorFlow reference of test_inference_jax_run.py")
def test_decisions_equal_the_tensorflow_graphs(toys):
    directory = pathlib.Path(os.environ[REFERENCE_VARIABLE])
    model = load_model(directory / "model.keras")
    reference = np.load(directory / "reference.npz")
    policies = json.loads((directory / "policies.json").read_text())
    assert len(policies) == len(reference["exits"]) > 10
    for policy, expected in zip(policies, reference["exits"]):
        _, index, _ = predict_early_exit(
            model, reference["x"], policy=ExitPolicy.from_dict(policy),
            batch_size=64)
        np.testing.assert_array_equal(index, expected)


def _stage_rows(index, batch=64):
    """`(stage, rows)` of each stage call, batches of `batch` rows."""
    for start in range(0, len(index), batch):
        part = index[start:start + batch]
        for k in range(int(part.max()) + 1):
            yield k, int((part >= k).sum())


def test_each_stage_compiles_once_per_bucket_and_skips_exited_rows(
        model, digits, test_outputs):
    received = [0, 0, 0]

    def observe(k, rows):
        received[k] += rows

    runner = host_early_exit(model, observe=observe)
    policy = policies_of("max_softmax", test_outputs)[0]
    x = digits["x_test"][:150]
    index = []
    for start in range(0, 150, 64):  # 64, 64 and 22 rows
        out = runner(x[start:start + 64], "max_softmax",
                     policy.threshold_array())
        index.append(out["exit_index"])
    index = np.concatenate(index)
    np.testing.assert_array_equal(index, policy.exit_indices(
        test_outputs.probs))
    assert received == [150, (index >= 1).sum(), (index >= 2).sum()]
    assert 0 < received[2] < received[1] < 150
    if not runner.bucketed:  # PyTorch, eager: exactly the rows that reach
        assert sorted(runner.traces.elements()) == sorted(
            (k, n) for k, n in _stage_rows(index))
        return
    assert set(runner.traces.values()) == {1}  # one trace per size
    for k in range(3):
        sizes = [size for stage, size in runner.traces if stage == k]
        assert all(size == bucket_size(size) for size in sizes)
        assert len(sizes) <= math.log2(64) + 1
    traced = dict(runner.traces)
    runner(x[:64], "entropy", np.full(3, 0.5, np.float32))
    # The same shapes, another rule: no new trace (at most a new size).
    assert all(runner.traces[key] == 1 for key in traced)


def test_odd_batches_and_one_row_match_the_whole_batch(model, digits,
                                                       test_outputs):
    policy = policies_of("entropy", test_outputs)[1]
    x = digits["x_test"][:150]
    probs, index, _ = predict_early_exit(model, x, policy=policy,
                                         batch_size=150)
    for batch_size in (37, 1):
        p, i, _ = predict_early_exit(model, x[:40], policy=policy,
                                     batch_size=batch_size)
        np.testing.assert_array_equal(i, index[:40])
        np.testing.assert_allclose(p, probs[:40], atol=1e-6)


def test_weights_are_read_at_every_call(digits):
    keras.utils.set_random_seed(1)
    model = get_model("small_cnn", num_classes=10, width=4)
    x = digits["x_test"][:64]
    policy = ExitPolicy("max_softmax", 1.0, num_exits=3)
    before, _, _ = predict_early_exit(model, x, policy=policy)
    head = model.heads[-1]
    head.set_weights([2.0 * w for w in head.get_weights()])
    after, _, _ = predict_early_exit(model, x, policy=policy)
    outputs = collect(model, (x, np.zeros(64, "int64")))
    np.testing.assert_allclose(after, outputs.probs[-1], atol=1e-6)
    assert np.abs(after - before).max() > 1e-3


def _two_scale_model():
    """Three stages whose state is a tuple of two scales (as MSDNet's):
    every tensor of it is gathered into the next bucket."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    fine = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    segments = [keras.Model(x, (fine, layers.AveragePooling2D(2)(fine)))]
    for _ in range(2):
        fine, coarse = keras.Input((8, 8, 4)), keras.Input((4, 4, 4))
        mixed = layers.Add()([layers.Conv2D(4, 3, padding="same")(fine),
                              layers.UpSampling2D()(coarse)])
        segments.append(keras.Model(
            (fine, coarse),
            (mixed, layers.Conv2D(4, 3, padding="same")(coarse))))
    heads = [keras.Sequential([layers.GlobalAveragePooling2D(),
                               layers.Dense(5)]) for _ in range(3)]
    return MultiExitModel(segments, heads)


def test_tuple_states_are_compacted_tensor_by_tensor():
    model = _two_scale_model()
    x = np.random.default_rng(0).normal(
        size=(64,) + tuple(model.input_shape_)).astype("float32")
    outputs = collect(model, (x, np.zeros(64, "int64")), batch_size=64)
    for policy in policies_of("max_softmax", outputs)[:2]:
        index = _check_against_sweep(model, x, outputs, policy)
        assert len(np.unique(index)) >= 2


def test_evaluation_and_calibration_on_numpy_inputs(model, digits,
                                                    test_outputs):
    validation = collect(model, (digits["x_val"], digits["y_val"]))
    assert validation.probs.shape == (3, len(digits["y_val"]), 10)
    np.testing.assert_allclose(validation.probs.sum(-1), 1.0, atol=1e-5)
    sweep = threshold_sweep(test_outputs)
    table = budget_table(sweep, test_outputs)
    assert list(table) == ["25%", "50%", "75%", "100%", "max"]
    with warnings.catch_warnings():  # an untrained model's exits
        warnings.simplefilter("ignore", UserWarning)
        fitted = fit_temperatures(validation)
    assert fitted["temperatures"].shape == (3,)
    assert np.all(fitted["temperatures"] > 0)
    assert 0.0 <= expected_calibration_error(validation.probs[-1],
                                             validation.labels) <= 1.0
    budget = float(np.mean(validation.flops[[0, -1]]))
    x = digits["x_test"][:150]
    for policy in (budgeted_batch_policy(validation, budget, num_q=10),
                   accuracy_drop_policy(validation, 0.05, grid=10,
                                        passes=1)):
        _check_against_sweep(model, x, test_outputs, policy)


def test_damping_heads_collect_and_report(digits):
    keras.utils.set_random_seed(0)
    model = get_model("small_cnn", num_classes=10, width=4, damping=True)
    x, y = digits["x_test"][:64], digits["y_test"][:64]
    outputs = collect(model, (x, y), damping_probs="n_plus_1")
    report = damping_outputs(model, (x, y), batch_size=20)
    np.testing.assert_allclose(
        report.damping, (1.0 - outputs.probs.sum(-1)).mean(-1), atol=1e-5)
    np.testing.assert_allclose(report.accuracy, outputs.accuracy())
    assert report.damping.shape == (3,) and np.all(report.damping > 0)


def test_loaders_yield_numpy_py_datasets(model, digits):
    splits = load("digits", batch_size=32, validation_split=0.25, seed=0)
    for split in (splits.train, splits.validation, splits.test):
        assert isinstance(split, keras.utils.PyDataset)
    assert count_batches(splits.train) == math.ceil(
        len(digits["y_train"]) / 32)
    x, y = splits.test[0]
    assert isinstance(x, np.ndarray) and x.dtype == np.float32
    assert x.shape == (32, 8, 8, 1) and y.shape == (32,)
    np.testing.assert_array_equal(x, digits["x_test"][:32])
    # The training split: every example once per epoch, a new order each
    # epoch, the same orders for the same seed.
    first = np.concatenate([splits.train[i][1]
                            for i in range(len(splits.train))])
    splits.train.on_epoch_end()
    second = np.concatenate([splits.train[i][1]
                             for i in range(len(splits.train))])
    np.testing.assert_array_equal(np.sort(first),
                                  np.sort(digits["y_train"]))
    assert (first != second).any()
    again = load("digits", batch_size=32, validation_split=0.25, seed=0)
    np.testing.assert_array_equal(
        np.concatenate([again.train[i][1] for i in range(len(again.train))]),
        first)
    # Evaluation and early exit read them as they read arrays.
    from_split = collect(model, splits.test)
    from_arrays = collect(model, (digits["x_test"], digits["y_test"]),
                          batch_size=32)
    np.testing.assert_array_equal(from_split.probs, from_arrays.probs)
    _, index, _ = predict_early_exit(model, splits.test, 0.15)
    _, expected, _ = predict_early_exit(model, digits["x_test"], 0.15,
                                        batch_size=32)
    np.testing.assert_array_equal(index, expected)


def test_mnist1d_and_augmented_digits_load_without_tensorflow():
    splits = load("mnist1d", batch_size=50, num_samples=400)
    x, y = splits.train[0]
    assert x.shape == (50, 40, 1) and y.shape == (50,)
    mixed = load("digits", batch_size=16, augment=["flip", "cutmix"])
    x, y = mixed.train[0]
    assert mixed.soft_labels and x.shape == (16, 8, 8, 1)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def _tensorflow_importable():
    try:
        importlib.import_module("tensorflow")
    except ImportError:
        return False
    return True


def test_exports_fail_in_one_line(model, tmp_path):
    from keras_eexit.export import export_litert

    expected, words = (
        (RuntimeError, "needs KERAS_BACKEND=tensorflow")
        if _tensorflow_importable()
        else (ImportError, "needs `tensorflow`, which cannot be imported"))
    for name, export in (("export_saved_model", export_saved_model),
                         ("export_litert", export_litert)):
        with pytest.raises(expected) as error:
            export(model, str(tmp_path / name))
        message = str(error.value)
        assert message.startswith(name) and words in message
        assert "\n" not in message
        assert not (tmp_path / name).exists()
