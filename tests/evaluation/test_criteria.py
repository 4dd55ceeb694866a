"""Exit criteria conventions, budget direction and bad input of `sweep`."""

import numpy as np
import pytest

from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import conservative_order
from keras_eexit.evaluation import exit_indices
from keras_eexit.evaluation import threshold_sweep


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _outputs(k=8, n=400, c=10, seed=0):
    rng = np.random.default_rng(seed)
    probs = _softmax(rng.normal(scale=3.0, size=(k, n, c)))
    labels = rng.integers(0, c, n)
    flops = np.cumsum(rng.integers(100, 1000, k))
    return probs, labels, flops


def _pabee_exit(predictions, patience):
    """PABEE as written in the paper: a counter of unchanged predictions."""
    counter = 0
    for j in range(len(predictions)):
        if j > 0 and predictions[j] == predictions[j - 1]:
            counter += 1
        else:
            counter = 0
        if counter == patience:
            return j
    return len(predictions) - 1


def test_patience_follows_the_pabee_counter():
    probs, labels, flops = _outputs(k=6, c=3)  # 3 classes: many agreements
    result = threshold_sweep(probs, labels, flops, "patience", thresholds=100)
    np.testing.assert_array_equal(result.thresholds, [0, 1, 2, 3, 4, 5])
    predictions = probs.argmax(-1)
    for t_index, patience in enumerate(result.thresholds):
        exits = np.array([_pabee_exit(predictions[:, i], patience)
                          for i in range(probs.shape[1])])
        np.testing.assert_array_equal(
            exit_indices(probs, "patience", [patience])[0], exits)
        assert result.mean_flops[t_index] == pytest.approx(
            flops[exits].mean())


def test_ties_at_the_threshold():
    """Strict `>` for max-softmax (Kubaty et al.), `<=` for entropy."""
    probs = np.array([[[0.5, 0.5, 0.0, 0.0]], [[1.0, 0.0, 0.0, 0.0]]])
    # Top probability exactly 0.5: not accepted at 0.5, accepted below it.
    assert exit_indices(probs, "max_softmax", [0.5])[0, 0] == 1
    assert exit_indices(probs, "max_softmax", [0.49])[0, 0] == 0
    # Normalised entropy of (0.5, 0.5, 0, 0) over 4 classes is exactly 0.5.
    assert exit_indices(probs, "entropy", [0.5])[0, 0] == 0
    assert exit_indices(probs, "entropy", [0.49])[0, 0] == 1
    # Threshold 1: no max-softmax exit accepts, everything leaves last.
    assert exit_indices(probs, "max_softmax", [1.0])[0, 0] == 1


def test_static_exit_and_exit_outputs_input():
    probs, labels, flops = _outputs(k=4)
    outputs = ExitOutputs(probs.astype("float32"), labels, flops,
                          np.arange(4), ("a", "b", "c", "d"))
    result = threshold_sweep(outputs, criterion="static")
    np.testing.assert_array_equal(result.thresholds, [1, 2, 3, 4])
    np.testing.assert_allclose(result.exit_ratios, np.eye(4))
    np.testing.assert_allclose(result.accuracy, outputs.accuracy())
    np.testing.assert_allclose(result.mean_flops, flops)
    with pytest.raises(ValueError, match="by keyword"):
        threshold_sweep(outputs, "entropy")


def test_counts_may_be_numpy_integers_and_labels_one_hot():
    probs, labels, flops = _outputs(k=3, c=5)
    a = threshold_sweep(probs, labels, flops, thresholds=np.int64(11))
    b = threshold_sweep(probs, np.eye(5)[labels], flops, thresholds=11)
    np.testing.assert_array_equal(a.thresholds,
                                  np.linspace(0, 1, 11, dtype="float32"))
    np.testing.assert_allclose(a.accuracy, b.accuracy)


def test_entropy_budget_walks_from_eager_to_conservative():
    """Entropy: a larger threshold is cheaper, so the budget rule must walk
    thresholds downwards; 100% is then the most accurate (final) point."""
    probs, _, flops = _outputs(k=3, c=4)
    labels = probs[-1].argmax(-1)  # the final exit is always right
    result = threshold_sweep(probs, labels, flops, "entropy", thresholds=21)
    assert np.all(np.diff(result.mean_flops) <= 1e-9)
    order = conservative_order(result)
    np.testing.assert_array_equal(order, np.arange(21)[::-1])
    table = budget_table(result, flops)
    assert table["100%"] == result.accuracy[0] == 1.0
    for fraction in (0.25, 0.5, 0.75):
        within = result.mean_flops <= fraction * flops[-1]
        expected = (result.accuracy[within][0] if within.any()
                    else float("nan"))
        np.testing.assert_equal(table[f"{fraction:.0%}"], expected)


def test_budget_table_follows_threshold_order_not_array_order():
    probs, labels, flops = _outputs(k=3, c=4)
    forward = threshold_sweep(probs, labels, flops,
                              thresholds=np.linspace(0, 1, 9))
    backward = threshold_sweep(probs, labels, flops,
                               thresholds=np.linspace(0, 1, 9)[::-1])
    np.testing.assert_equal(budget_table(forward, flops),
                            budget_table(backward, flops))


def test_budget_table_takes_exit_outputs_and_checks_fractions():
    probs, labels, flops = _outputs(k=3, c=4)
    outputs = ExitOutputs(probs, labels, flops, np.arange(3),
                          ("a", "b", "c"))
    result = threshold_sweep(outputs, criterion="max_softmax")
    np.testing.assert_equal(budget_table(result, outputs),
                            budget_table(result, flops))
    assert list(budget_table(result, flops, fractions=(0.1, 2.0))) == [
        "10%", "200%", "max"]
    with pytest.raises(ValueError, match="fractions"):
        budget_table(result, flops, fractions=(0.5, -1))


@pytest.mark.parametrize("change,match", [
    (lambda p, y, f: (p[:1], y, f[:1], "patience", 5), "at least 2 exits"),
    (lambda p, y, f: (p, y, f, "patience", [1.5]),
     r"integers between 0 and 2"),
    (lambda p, y, f: (p, y, f, "static", [0]), r"integers between 1 and 3"),
    (lambda p, y, f: (p, y, f, "static", [[1, 2, 3]]), r"exit numbers"),
    (lambda p, y, f: (p, y, f, "entropy", [-0.1]), r"between 0 and 1"),
    (lambda p, y, f: (p, y, f, "entropy", [np.nan]), r"between 0 and 1"),
    (lambda p, y, f: (p, y, f, "max_softmax", 1), "count >= 2"),
    (lambda p, y, f: (p, y, f, "max_softmax", []), r"a count"),
    (lambda p, y, f: (p, y, f, "max_softmax", "high"), r"between 0 and 1"),
    (lambda p, y, f: (p, y, f, "max_softmax", [[0.5, 0.5]]),
     r"\(points, 3\) of per-exit"),
    (lambda p, y, f: (np.where(p > 0.5, np.nan, p), y, f, "entropy", 5),
     "finite and non-negative"),
    (lambda p, y, f: (np.log(p), y, f, "entropy", 5),
     "finite and non-negative"),
    (lambda p, y, f: (p * 1.01, y, f, "entropy", 5), "sum to 1"),
    (lambda p, y, f: (p, y + 4, f, "entropy", 5), r"integers in \[0, 3\]"),
    (lambda p, y, f: (p, y - 0.5, f, "entropy", 5), "Labels must be"),
    (lambda p, y, f: (p, None, f, "entropy", 5), "labels"),
    (lambda p, y, f: (p, y, None, "entropy", 5), "flops"),
    (lambda p, y, f: (p, y, [1, 2, np.inf], "entropy", 5), "flops"),
    (lambda p, y, f: (p, y, [1, 2, 3, 4], "entropy", 5), "wrong length"),
    (lambda p, y, f: (p[0], y, f, "entropy", 5), "non-empty array"),
    (lambda p, y, f: (p, y, f, "max-softmax", 5), "Did you mean"),
])
def test_bad_input_is_named(change, match):
    probs, labels, flops = _outputs(k=3, c=4, n=50)
    p, y, f, criterion, thresholds = change(probs, labels, flops)
    with pytest.raises(ValueError, match=match):
        threshold_sweep(p, y, f, criterion=criterion, thresholds=thresholds)


def test_probability_tolerance():
    probs, labels, flops = _outputs(k=3, c=4, n=50)
    # float32-level noise is fine
    threshold_sweep(probs * (1 + 5e-4), labels, flops)
    with pytest.raises(ValueError, match="tolerance"):
        threshold_sweep(probs * (1 + 5e-3), labels, flops)
