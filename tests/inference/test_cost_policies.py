"""Exit policies for a budget in measured seconds (`cost=` a profile)."""

import numpy as np
import pytest

from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import best_accuracy_curve
from keras_eexit.inference import best_accuracy_policy
from keras_eexit.inference import accuracy_drop_policy
from keras_eexit.inference import budgeted_batch_curve
from keras_eexit.inference import budgeted_batch_policy
from keras_eexit.inference import budgeted_batch_thresholds
from tests.evaluation.test_cost import outputs
from tests.evaluation.test_cost import profile_of

BUDGET = 0.0022  # seconds per sample: 73% of the final exit's 3 ms


def _mean_seconds(policy, validation, profile):
    probs = policy.probabilities(validation.probs)
    result = threshold_sweep(probs, validation.labels, cost=profile,
                             criterion=policy.criterion,
                             thresholds=policy.threshold_array()[None])
    evaluated = policy.evaluate(validation, cost=profile)
    assert evaluated.cost_unit == "s"
    assert evaluated.mean_cost[0] == result.mean_flops[0]
    return float(result.mean_flops[0]), float(result.accuracy[0])


def test_best_accuracy_policy_keeps_a_budget_in_seconds():
    validation = outputs(1)
    profile = profile_of(validation)
    policy = best_accuracy_policy(validation, BUDGET, cost=profile)
    seconds, accuracy = _mean_seconds(policy, validation, profile)
    assert seconds <= BUDGET
    assert policy.metadata["cost_unit"] == "s"
    assert policy.metadata["validation_seconds"] == pytest.approx(seconds)
    assert policy.metadata["validation_accuracy"] == pytest.approx(accuracy)
    assert not [key for key in policy.metadata if key.endswith("_flops")]
    assert policy.metadata["global_validation_seconds"] <= BUDGET
    assert policy.metadata["cost"] == "measured: keras, batch 1, CPU"
    # The FLOPs policy at the same fraction of the final exit's cost
    # overspends the time budget: exit 1 is slow for its FLOPs.
    flops_policy = best_accuracy_policy(validation,
                                        BUDGET / 0.003 * 300)
    assert _mean_seconds(flops_policy, validation, profile)[0] > BUDGET


def test_budgeted_batch_policy_takes_the_costliest_schedule_in_seconds():
    validation = outputs(1)
    profile = profile_of(validation)
    policy = budgeted_batch_policy(validation, BUDGET, cost=profile,
                                   num_q=40)
    costs = [_mean_seconds(budgeted_batch_thresholds(validation, float(q)),
                           validation, profile)[0]
             for q in np.geomspace(0.01, 4.0, 40)]
    best = max(c for c in costs if c <= BUDGET)
    assert policy.metadata["validation_seconds"] == pytest.approx(best)
    assert _mean_seconds(policy, validation, profile)[0] == pytest.approx(
        best)


def test_accuracy_drop_policy_minimises_measured_seconds():
    validation = outputs(1)
    profile = profile_of(validation)
    policy = accuracy_drop_policy(validation, 0.05, cost=profile)
    seconds, _ = _mean_seconds(policy, validation, profile)
    assert policy.metadata["validation_seconds"] == pytest.approx(seconds)


def test_a_budget_below_the_first_exit_names_the_unit():
    validation = outputs(1)
    with pytest.raises(ValueError, match=r"seconds per sample .*2 ms"):
        best_accuracy_policy(validation, 0.001, cost=profile_of(validation))


def test_curves_in_seconds_are_labelled():
    validation, test = outputs(1), outputs(2)
    profile = profile_of(validation)
    curve = budgeted_batch_curve(validation, test, p_values=(5, 20),
                                 cost=profile)
    assert curve.cost_unit == "s"
    assert curve.mean_flops.max() <= 0.003
    best = best_accuracy_curve(validation, test, budgets=[0.0022, 0.0028],
                               grid=20, cost=profile)
    assert best.cost_unit == "s"
    assert budgeted_batch_curve(validation, test,
                                p_values=(5,)).cost_unit == "FLOPs"
