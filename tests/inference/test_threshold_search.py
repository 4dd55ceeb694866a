"""The per-exit threshold search behind `best_accuracy_policy`.

Every check is against the library's own sweep (`threshold_sweep`), never
against the search's internal counts: the best global threshold is found
by sweeping every distinct validation score, and coordinate optimality by
sweeping every score at one exit with the others fixed.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_eexit import criteria
from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import best_accuracy_curve
from keras_eexit.inference import best_accuracy_policy
from keras_eexit.inference import search_thresholds
from keras_eexit.inference.policy import scale_probabilities
from tests.inference.toy_criteria import LeastConfidence
from tests.inference.toy_criteria import TopTwoMargin


def _outputs(seed, n=120, k=3, c=5, costs=None):
    """Random exits of mixed quality (an early exit may be the worst)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(k, n, c)) * rng.uniform(0.5, 3.0, (k, 1, 1))
    signal = rng.uniform(0.0, 3.0, k)
    logits[:, np.arange(n), labels] += signal[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    costs = np.cumsum(rng.integers(1, 5, k)) * 100 if costs is None else (
        np.asarray(costs))
    return ExitOutputs(probs.astype("float32"), labels, costs,
                       np.arange(k), tuple(f"exit_{j + 1}" for j in range(k)))


def _cuts(criterion, scores, num_exits):
    """Every distinct score at the given exits, with the range's ends and
    the never-exit value: all the decisions a threshold can make."""
    low, high = criterion.threshold_range(num_exits)
    return np.unique(np.concatenate([
        np.clip(np.ravel(scores), low, high),
        [low, high, criterion.never_exit(num_exits)]]).astype(np.float32))


def _best_global(outputs, budget, criterion, temperatures=None):
    """(accuracy, mean FLOPs) of the best single threshold in budget."""
    criterion = criteria.get(criterion)
    probs = scale_probabilities(outputs.probs, temperatures)
    k = probs.shape[0]
    cuts = _cuts(criterion, criterion.scores(probs)[:-1], k)
    every = threshold_sweep(probs, outputs.labels, outputs.flops,
                            criterion.name, cuts)
    fits = every.mean_flops <= budget * (1 + 1e-12)
    best = every.accuracy[fits].max()
    return best, every.mean_flops[fits & (every.accuracy == best)].max()


def _assert_coordinate_optimal(policy, outputs, budget):
    """No single exit's threshold, set to any cut, does better in budget
    (more accurate, or as accurate with more of the budget spent)."""
    criterion = criteria.get(policy.criterion)
    probs = policy.probabilities(outputs.probs)
    k = probs.shape[0]
    own = policy.evaluate(outputs)
    scores = criterion.scores(probs)
    for j in range(k - 1):
        cuts = _cuts(criterion, scores[j], k)
        rows = np.repeat(policy.threshold_array()[None], len(cuts), 0)
        rows[:, j] = cuts
        result = threshold_sweep(probs, outputs.labels, outputs.flops,
                                 criterion.name, rows)
        fits = result.mean_flops <= budget * (1 + 1e-12)
        assert result.accuracy[fits].max() <= own.accuracy[0] + 1e-12
        same = fits & (result.accuracy >= own.accuracy[0] - 1e-12)
        assert result.mean_flops[same].max() <= (
            own.mean_flops[0] * (1 + 1e-9))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 4),
       fraction=st.floats(0.0, 1.0),
       criterion=st.sampled_from(["max_softmax", "entropy"]))
def test_never_below_the_best_global_threshold(seed, k, fraction, criterion):
    outputs = _outputs(seed, n=60, k=k)
    flops = outputs.flops
    budget = float(flops[0] + fraction * (flops[-1] - flops[0]))
    policy = best_accuracy_policy(outputs, budget, criterion)
    result = policy.evaluate(outputs)
    assert result.mean_flops[0] <= budget * (1 + 1e-12)
    accuracy, cost = _best_global(outputs, budget, criterion)
    assert result.accuracy[0] >= accuracy
    if result.accuracy[0] == accuracy:
        assert result.mean_flops[0] >= cost * (1 - 1e-12)
    assert policy.metadata["validation_accuracy"] == result.accuracy[0]
    assert policy.metadata["validation_flops"] == result.mean_flops[0]
    assert policy.metadata["global_validation_accuracy"] == pytest.approx(
        accuracy)
    _assert_coordinate_optimal(policy, outputs, budget)


def test_global_search_is_the_exact_best_single_threshold():
    # Every distinct score is a candidate, not only a 100-point grid.
    for seed in range(4):
        outputs = _outputs(seed, n=300, k=4)
        budget = float(outputs.flops.mean())
        policy = best_accuracy_policy(outputs, budget, search="global")
        inner = set(policy.thresholds[:-1])
        assert len(inner) == 1  # one threshold at every internal exit
        result = policy.evaluate(outputs)
        assert (result.accuracy[0], result.mean_flops[0]) == pytest.approx(
            _best_global(outputs, budget, "max_softmax"))


def test_strictly_better_where_one_exit_should_take_no_one(tmp_path):
    # Exit 1 is confident about every sample and right about half of
    # them; exit 2 is right about all. One threshold either sends everyone
    # out at exit 1 (50%) or, over the budget, past exit 2 to exit 3.
    # Per exit: exit 1 takes no one and exit 2 everyone (100%).
    n = 40
    labels = np.arange(n) % 2
    probs = np.empty((3, n, 2), np.float32)
    probs[0] = np.where(np.arange(n)[:, None] % 4 < 2, [[0.95, 0.05]],
                        [[0.05, 0.95]])  # right on half
    probs[1] = np.where(labels[:, None] == 0, [[0.8, 0.2]], [[0.2, 0.8]])
    probs[2] = probs[1]
    outputs = ExitOutputs(probs, labels, np.array([100, 200, 300]),
                          np.arange(3), ("exit_1", "exit_2", "exit_3"))
    assert outputs.accuracy()[0] == 0.5
    policy = best_accuracy_policy(outputs, 200.0)
    result = policy.evaluate(outputs)
    assert result.accuracy[0] == 1.0
    np.testing.assert_array_equal(result.exit_ratios[0], [0.0, 1.0, 0.0])
    assert policy.metadata["global_validation_accuracy"] == 0.5
    global_policy = best_accuracy_policy(outputs, 200.0, search="global")
    assert global_policy.evaluate(outputs).accuracy[0] == 0.5
    policy.save(tmp_path / "policy.json")  # the metadata is plain JSON
    assert ExitPolicy.load(tmp_path / "policy.json") == policy


def test_coordinate_optimal_over_every_score_on_larger_splits():
    # 600 distinct scores per exit: a grid or 100 quantiles miss most cuts.
    for seed in (3, 7):
        outputs = _outputs(seed, n=600, k=4)
        budget = float(0.4 * outputs.flops[0] + 0.6 * outputs.flops[-1])
        policy = best_accuracy_policy(outputs, budget)
        _assert_coordinate_optimal(policy, outputs, budget)


def test_deterministic_and_independent_of_sample_order():
    outputs = _outputs(5, n=400, k=4, costs=[100, 200, 300, 400])
    order = np.random.default_rng(0).permutation(400)
    shuffled = ExitOutputs(outputs.probs[:, order], outputs.labels[order],
                           outputs.flops, outputs.params, outputs.exit_names)
    a = best_accuracy_policy(outputs, 230.0)
    assert best_accuracy_policy(outputs, 230.0) == a
    assert best_accuracy_policy(shuffled, 230.0) == a


@pytest.mark.parametrize("criterion", ["max_softmax", "entropy",
                                       TopTwoMargin(), LeastConfidence()])
def test_every_continuous_criterion_with_temperatures(criterion):
    registered = not isinstance(criterion, str)
    if registered:
        criteria.register(criterion)
    try:
        outputs = _outputs(11, n=200, k=3)
        temperatures = [2.0, 0.7, 1.3]
        budget = float(outputs.flops[1])
        policy = best_accuracy_policy(outputs, budget, criterion.name if
                                      registered else criterion,
                                      temperatures=temperatures)
        assert policy.temperatures == pytest.approx(temperatures)
        result = policy.evaluate(outputs)
        assert result.mean_flops[0] <= budget
        accuracy, _ = _best_global(outputs, budget, policy.criterion,
                                   temperatures)
        assert result.accuracy[0] >= accuracy
        assert policy.metadata["validation_accuracy"] == result.accuracy[0]
        _assert_coordinate_optimal(policy, outputs, budget)
    finally:
        if registered:
            criteria.unregister(criterion.name)


def test_budgets_and_inputs_refused_in_one_line():
    outputs = _outputs(0)
    first = float(outputs.flops[0])
    with pytest.raises(ValueError, match="at least the first exit's cost"):
        best_accuracy_policy(outputs, first - 1)
    scores = criteria.get("max_softmax").scores(outputs.probs)
    correct = outputs.probs.argmax(-1) == outputs.labels
    with pytest.raises(ValueError, match="first exit's cost"):
        search_thresholds(scores, correct, outputs.flops, first - 1)
    with pytest.raises(ValueError, match="non-decreasing"):
        search_thresholds(scores, correct, outputs.flops[::-1], 1e9)
    with pytest.raises(ValueError, match="same shape"):
        search_thresholds(scores, correct[:, :5], outputs.flops, 1e9)
    with pytest.raises(ValueError, match="per_exit"):
        best_accuracy_policy(outputs, 1e9, search="coordinate")
    # At exit 1's cost exactly, every sample leaves there.
    policy = best_accuracy_policy(outputs, first)
    assert policy.evaluate(outputs).exit_ratios[0][0] == 1.0


def test_curve_compares_per_exit_and_global_on_the_same_budgets():
    validation, test = _outputs(1, n=300), _outputs(2, n=300)
    budgets = np.linspace(validation.flops[0], validation.flops[-1], 5)
    per_exit = best_accuracy_curve(validation, validation, budgets)
    single = best_accuracy_curve(validation, validation, budgets,
                                 search="global")
    assert np.all(per_exit.accuracy >= single.accuracy)
    assert np.all(per_exit.mean_flops <= budgets * (1 + 1e-12))
    on_test = best_accuracy_curve(validation, test, budgets)
    np.testing.assert_array_equal(on_test.thresholds, per_exit.thresholds)


def test_grid_and_passes_are_deprecated_without_effect():
    outputs = _outputs(4, costs=[100, 200, 300])
    expected = best_accuracy_policy(outputs, 250.0)
    with pytest.warns(DeprecationWarning, match="`grid=` of best_accuracy"):
        assert best_accuracy_policy(outputs, 250.0, grid=20) == expected
    with pytest.warns(DeprecationWarning, match="`passes=`"):
        best_accuracy_policy(outputs, 250.0, passes=2)
    with pytest.warns(DeprecationWarning, match="`grid=`"):
        best_accuracy_curve(outputs, outputs, [250.0], grid=20)


def _exhaustive(scores, correct, costs, budget, criterion):
    """(correct count, cost sum) of the best rule over every per-exit
    combination of cuts (most correct, then costliest; tiny problems
    only)."""
    import itertools

    criterion = criteria.get(criterion)
    k, n = scores.shape
    best = None
    for row in itertools.product(*(_cuts(criterion, s, k)
                                   for s in scores[:-1])):
        rule = np.array([*row, criterion.eager_threshold(k)], np.float32)
        accept = criterion.accepts(scores, rule[:, None])
        accept[-1] = True
        exits = accept.argmax(0)
        cost = costs[exits].sum()
        if cost <= budget * n * (1 + 1e-12):
            key = (int(correct[exits, np.arange(n)].sum()), cost)
            best = key if best is None or key > best else best
    return best


def test_reaches_the_exhaustive_optimum_on_tiny_problems():
    rng = np.random.default_rng(0)
    for case in range(60):
        k, n = int(rng.integers(2, 4)), int(rng.integers(3, 8))
        scores = rng.choice(np.float32([0.3, 0.5, 0.7, 0.9, 1.0]), (k, n)) \
            if case % 2 else rng.random((k, n)).astype(np.float32)
        correct = rng.random((k, n)) < 0.6
        costs = np.cumsum(rng.integers(1, 4, k)).astype(float)
        budget = float(rng.uniform(costs[0], costs[-1]))
        criterion = ("max_softmax", "entropy")[case % 3 == 0]
        found = search_thresholds(scores, correct, costs, budget, criterion)
        count, cost = _exhaustive(scores, correct, costs, budget, criterion)
        assert round(found.accuracy * n) == count
        assert found.mean_cost * n == pytest.approx(cost)
