"""A criterion added with `criteria.register` runs wherever a built-in does.

Two toy criteria, one per direction: the margin between the two top
probabilities (`>`: a higher score is confident) and "least confidence",
`1 - max p` (`<=`: a lower score is confident). Each is registered for the
test and unregistered after it. It goes through the sweep and the budget
table's walk, calibration and every policy, `predict_early_exit`, the
SavedModel and the LiteRT file (both signatures), and `keras-eexit
evaluate`; every path sends every sample out at the same exit.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import criteria
from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import collect
from keras_eexit.evaluation import conservative_order
from keras_eexit.evaluation import exit_ratio_plot
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import accuracy_drop_policy
from keras_eexit.inference import best_accuracy_policy
from keras_eexit.inference import budgeted_batch_curve
from keras_eexit.inference import budgeted_batch_policy
from keras_eexit.inference import budgeted_batch_thresholds
from keras_eexit.inference import export_saved_model
from keras_eexit.inference import predict_early_exit
from keras_eexit.models import small_cnn
from tests.inference.toy_criteria import LeastConfidence
from tests.inference.toy_criteria import TopTwoMargin


@pytest.fixture(params=[TopTwoMargin, LeastConfidence],
                ids=["margin", "least_confidence"])
def toy(request):
    criterion = criteria.register(request.param())
    yield criterion
    criteria.unregister(criterion.name)
    assert criterion.name not in criteria.CRITERIA


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return small_cnn(num_classes=10, width=4)


def _split(model, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, n)
    return x, collect(model, (x, y))


def _own_litert_probs(runner, x, criterion):
    """Every exit's probabilities as the early-exit file computes them
    (thresholds that send every sample out at exit k)."""
    probs = []
    for k in range(3):
        t = np.full(3, criterion.never_exit(3), np.float32)
        t[k] = criterion.eager_threshold(3)
        p, index = runner.predict(x, t)
        assert (index == k).all()
        probs.append(p)
    return np.stack(probs)


def _policies(name, validation, test):
    flops = validation.flops
    budget = float(flops[0] + flops[-1]) / 2
    return {
        "budgeted_batch_q1": budgeted_batch_thresholds(validation, 1.0,
                                                       name),
        "budgeted_batch": budgeted_batch_policy(validation, budget, name,
                                                num_q=20),
        "accuracy_drop": accuracy_drop_policy(validation, 0.05, name,
                                              grid=20, passes=1),
        "best_accuracy": best_accuracy_policy(validation, budget, name),
        # Per-exit thresholds just off the test scores' medians.
        "hand": ExitPolicy(name, np.median(
            criteria.get(name).scores(test.probs), axis=1).astype(
                np.float32) + np.float32(1e-4)),
    }


def test_a_registered_criterion_decides_alike_everywhere(toy, model,
                                                         tmp_path):
    pytest.importorskip("ai_edge_litert")
    from keras_eexit.export import LiteRTRunner
    from keras_eexit.export import export_litert

    name = toy.name
    _, validation = _split(model, 90, seed=1)
    x, test = _split(model, 64, seed=2)

    # The sweep: the criterion's grid, walked from eager to conservative.
    result = threshold_sweep(test, criterion=name)
    assert result.criterion == name
    np.testing.assert_array_equal(result.thresholds,
                                  criteria.reference_grid(100))
    walk = np.asarray(result.mean_flops)[conservative_order(result)]
    assert np.all(np.diff(walk) >= 0) and walk[0] < walk[-1]
    assert list(budget_table(result, test)) == ["25%", "50%", "75%",
                                                "100%", "max"]
    figure = exit_ratio_plot(result, test.exit_names)
    assert figure.axes[0].get_xlabel() == toy.threshold_label

    # Calibration ranks samples by the toy's score, in its direction:
    # MSDNet's geometric schedule, floor(N * share_k) samples at exit k.
    shares = 1.0 / 3
    ratios = budgeted_batch_thresholds(validation, 1.0, name).evaluate(
        validation).exit_ratios[0]
    np.testing.assert_allclose(ratios[:2], np.floor(90 * shares) / 90)
    curve = budgeted_batch_curve(validation, test, name, p_values=(5, 20))
    assert curve.criterion == name and curve.thresholds.shape == (2, 3)

    policies = _policies(name, validation, test)
    export_saved_model(model, tmp_path / "sm", policy=policies["hand"])
    served = tf.saved_model.load(str(tmp_path / "sm"))
    export_litert(model, tmp_path / "litert", mode="early_exit",
                  criterion=name)
    runner = LiteRTRunner(tmp_path / "litert")
    assert runner.criterion == name
    lite_probs = _own_litert_probs(runner, x, toy)
    lite_scores = toy.scores(lite_probs)
    exits = set()
    for label, policy in policies.items():
        assert policy.criterion == name, label
        policy.save(tmp_path / "policy.json")
        assert ExitPolicy.load(tmp_path / "policy.json") == policy
        t = policy.threshold_array()
        expected = policy.exit_indices(test.probs)
        np.testing.assert_allclose(
            policy.evaluate(test).exit_ratios[0],
            np.bincount(expected, minlength=3) / len(x))
        _, index, _ = predict_early_exit(model, x, policy=policy)
        np.testing.assert_array_equal(index, expected, err_msg=label)
        out = served.signatures["with_thresholds"](
            inputs=tf.constant(x), thresholds=tf.constant(t))
        np.testing.assert_array_equal(out["exit_index"], expected)
        # LiteRT: both signatures take the rule's exit on the
        # probabilities the file computes ...
        _, batch_exit = runner.predict(x, t)
        lite_expected = criteria.exit_indices(lite_probs, name, t[None])[0]
        np.testing.assert_array_equal(batch_exit, lite_expected)
        rows = np.array([runner.predict(sample, t)[1] for sample in x])
        np.testing.assert_array_equal(rows, batch_exit)
        # ... which are TensorFlow's up to a float32 ulp: away from a
        # tie (calibrated thresholds sit on validation scores), the same.
        near = (np.abs(lite_scores[:2] - t[:2, None]) <= 1e-6).any(0)
        assert (~near).mean() >= 0.9
        np.testing.assert_array_equal(batch_exit[~near], expected[~near])
        exits.update(expected.tolist())
    out = served.signatures["serving_default"](inputs=tf.constant(x))
    np.testing.assert_array_equal(out["exit_index"],
                                  policies["hand"].exit_indices(test.probs))
    assert exits == {0, 1, 2}


def test_evaluate_ranks_the_budgeted_batch_curve_by_the_criterion(
        toy, model, tmp_path):
    from keras_eexit.cli.main import main

    path = tmp_path / "tiny.keras"
    model.compile(optimizer="sgd")
    model.save(path)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(path), "--dataset", "digits",
                 "--criterion", toy.name, "--thresholds", "10",
                 "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert f"## Budgeted batch classification ({toy.name}," in report


def test_register_refuses_taken_names_and_keeps_built_ins():
    with pytest.raises(ValueError, match="not yet registered"):
        criteria.register(criteria.MaxSoftmax())
    with pytest.raises(ValueError, match="Criterion instance"):
        criteria.register("max_softmax")
    with pytest.raises(ValueError, match="not built in"):
        criteria.unregister("entropy")
    assert set(criteria.BUILT_IN) <= set(criteria.CRITERIA)
