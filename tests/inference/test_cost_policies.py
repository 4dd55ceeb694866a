"""Exit policies for a budget in measured seconds (`cost=` a profile)."""

import dataclasses
import json

import numpy as np
import pytest

from keras_eexit.evaluation import exit_indices
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation.cost import CostProfile
from keras_eexit.evaluation.cost import model_signature
from keras_eexit.inference import best_accuracy_curve
from keras_eexit.inference import best_accuracy_policy
from keras_eexit.inference import accuracy_drop_policy
from keras_eexit.inference import budgeted_batch_curve
from keras_eexit.inference import budgeted_batch_policy
from keras_eexit.inference import budgeted_batch_thresholds
from keras_eexit.inference import search_thresholds
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


# Fixed costs per call (`seconds_per_call`): batches of 4 rows; per row
# 1, 1.5, 2 ms (cumulative), per call 2, 4, 6 ms: a batch of 4 that all
# leave at exit k takes 6, 10, 14 ms, i.e. 1.5, 2.5, 3.5 ms per sample.
ROWS = np.array([1.0, 1.5, 2.0]) * 1e-3
CALLS = np.array([2.0, 4.0, 6.0]) * 1e-3


def fixed_profile(out, batch_size=4, calls=CALLS):
    per_batch = ROWS * batch_size + calls
    return CostProfile(tuple(per_batch / batch_size), tuple(per_batch),
                       "keras", batch_size, model_signature(out),
                       out.exit_names, model_name="toy", device="CPU",
                       seconds_per_call=tuple(calls), call_batch_size=(
                           None if batch_size == 1 else 1))


def test_mean_cost_charges_each_stage_once_per_batch_that_runs_it():
    profile = fixed_profile(outputs())
    np.testing.assert_allclose(profile.row_array(), ROWS)
    np.testing.assert_allclose(profile.stage_call_array(), [2e-3] * 3)
    for k in range(3):  # one exit for all: the profile's own figure
        assert profile.mean_cost([k] * 4) == pytest.approx(
            profile.seconds_per_sample[k])
    # Exits 1, 1, 2, 3: rows 1.375 ms; stages reached by 1, 1/2, 1/4 of
    # the samples, so run by a batch of 4 with chance 1, 15/16, 175/256.
    expected = 1.375e-3 + 2e-3 / 4 * (1 + 15 / 16 + 175 / 256)
    assert profile.mean_cost([0, 0, 1, 2]) == pytest.approx(expected)
    assert expected > np.mean([1.5e-3, 1.5e-3, 2.5e-3, 3.5e-3])  # additive
    np.testing.assert_allclose(
        profile.mean_cost(np.array([[0, 0, 1, 2], [2, 2, 2, 2]])),
        [expected, 3.5e-3])
    with pytest.raises(ValueError, match="argument `exit_index`"):
        profile.mean_cost([0, 3])


def test_at_batch_one_the_fixed_costs_change_nothing():
    out = outputs()
    batch_one = fixed_profile(out, batch_size=1, calls=CALLS / 4)
    plain = dataclasses.replace(batch_one, seconds_per_call=None)
    exits = np.array([0, 0, 1, 2, 2])
    assert batch_one.mean_cost(exits) == pytest.approx(
        np.asarray(batch_one.seconds_per_sample)[exits].mean())
    validation = outputs(1)
    for budget in (0.0016, 0.002, 0.0028):
        one = best_accuracy_policy(validation, budget,
                                   cost=fixed_profile(validation, 1,
                                                      CALLS / 4))
        two = best_accuracy_policy(
            validation, budget, cost=dataclasses.replace(
                fixed_profile(validation, 1, CALLS / 4),
                seconds_per_call=None))
        np.testing.assert_array_equal(one.thresholds, two.thresholds)
        assert one.metadata["validation_seconds"] == pytest.approx(
            two.metadata["validation_seconds"])
    assert plain.mean_cost(exits) == pytest.approx(batch_one.mean_cost(exits))


def test_sweeps_and_policies_charge_the_fixed_costs():
    validation = outputs(1)
    profile = fixed_profile(validation)
    additive = dataclasses.replace(profile, seconds_per_call=None,
                                   call_batch_size=None)
    sweep = threshold_sweep(validation, cost=profile, thresholds=11)
    exits = exit_indices(validation.probs, "max_softmax", sweep.thresholds)
    np.testing.assert_allclose(sweep.mean_flops, profile.mean_cost(exits))
    budget = 0.0024
    policy = best_accuracy_policy(validation, budget, cost=profile)
    seconds, _ = _mean_seconds(policy, validation, profile)
    assert seconds <= budget
    assert policy.metadata["validation_seconds"] == pytest.approx(seconds)
    assert seconds == pytest.approx(
        profile.mean_cost(policy.exit_indices(validation.probs)))
    # The additive model's policy for the same budget spends more than
    # the budget once each stage's fixed cost is charged per batch.
    naive = best_accuracy_policy(validation, budget, cost=additive)
    assert _mean_seconds(naive, validation, additive)[0] <= budget
    assert _mean_seconds(naive, validation, profile)[0] > budget
    for chosen in (budgeted_batch_policy(validation, budget, cost=profile,
                                         num_q=40),
                   accuracy_drop_policy(validation, 0.05, cost=profile)):
        seconds, _ = _mean_seconds(chosen, validation, profile)
        assert chosen.metadata["validation_seconds"] == pytest.approx(
            seconds)
    assert _mean_seconds(budgeted_batch_policy(
        validation, budget, cost=profile, num_q=40), validation,
        profile)[0] <= budget


def test_search_thresholds_keeps_the_budget_with_fixed_costs():
    rng = np.random.default_rng(3)
    scores = rng.random((3, 60)).astype(np.float32)
    correct = rng.random((3, 60)) < np.array([[0.5], [0.7], [0.9]])
    per_sample = ROWS + CALLS / 4
    for budget in (0.0016, 0.002, 0.0026, 0.003):
        found = search_thresholds(scores, correct, per_sample, budget,
                                  call_costs=CALLS, batch_size=4)
        assert found.mean_cost <= budget * (1 + 1e-9)
        assert found.accuracy >= found.global_accuracy
        # Its mean cost is the profile model's (CostProfile.mean_cost).
        accepted = scores[:-1] > found.thresholds[:-1, None]
        exits = np.where(accepted.any(0), accepted.argmax(0), 2)
        profile = CostProfile(tuple(per_sample), tuple(per_sample * 4),
                              "keras", 4, "0" * 16, ("a", "b", "c"),
                              seconds_per_call=tuple(CALLS))
        assert found.mean_cost == pytest.approx(profile.mean_cost(exits))
    with pytest.raises(ValueError, match="argument `batch_size`"):
        search_thresholds(scores, correct, per_sample, 0.002,
                          call_costs=CALLS, batch_size=0)
    with pytest.raises(ValueError, match="argument `call_costs`"):
        search_thresholds(scores, correct, per_sample, 0.002,
                          call_costs=CALLS[::-1], batch_size=4)
    with pytest.raises(ValueError, match="argument `call_costs`"):
        search_thresholds(scores, correct, per_sample, 0.002,
                          batch_size=4)


def test_profiles_with_and_without_fixed_costs_round_trip(tmp_path):
    out = outputs()
    for profile in (fixed_profile(out), profile_of(out)):
        path = tmp_path / "profile.json"
        profile.save(path)
        assert CostProfile.load(path) == profile
    data = fixed_profile(out).to_dict()
    assert data["seconds_per_call"] == pytest.approx(CALLS.tolist())
    assert data["call_batch_size"] == 1
    # A profile written before the fixed costs existed still loads.
    for key in ("seconds_per_call", "call_batch_size"):
        del data[key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = CostProfile.load(path)
    assert old.seconds_per_call is None and old.call_batch_size is None
    assert old.mean_cost([0, 2]) == pytest.approx(
        np.mean([old.seconds_per_sample[0], old.seconds_per_sample[2]]))


@pytest.mark.parametrize("change, message", [
    ({"seconds_per_call": (0.002, 0.001, 0.003)}, "seconds_per_call"),
    ({"seconds_per_call": (0.002, 0.004)}, "seconds_per_call"),
    ({"seconds_per_call": (0.002, 0.004, 0.5)}, "at most that exit"),
    ({"seconds_per_call": (-1.0, 0.004, 0.006)}, "non-negative"),
    ({"call_batch_size": 4}, "call_batch_size"),
    ({"call_batch_size": True}, "call_batch_size"),
])
def test_bad_fixed_costs_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(fixed_profile(outputs()), **change)


def test_a_profile_is_replanned_for_another_batch_size():
    out = outputs()
    profile = fixed_profile(out)
    half = profile.at_batch_size(2)
    assert half.batch_size == 2 and half.seconds_per_call == (
        profile.seconds_per_call)
    np.testing.assert_allclose(half.seconds_per_sample, ROWS + CALLS / 2)
    np.testing.assert_allclose(half.row_array(), ROWS)
    back = profile.at_batch_size(16).at_batch_size(4)
    np.testing.assert_allclose(back.seconds_per_sample,
                               profile.seconds_per_sample)
    # Fuller calls share the fixed costs over more rows: cheaper samples.
    assert np.all(np.diff([profile.at_batch_size(b).mean_cost([0, 1, 2])
                           for b in (1, 2, 4, 8, 64)]) < 0)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        profile.at_batch_size(0)
    with pytest.raises(ValueError, match="needs the fixed costs per call"):
        profile_of(out).at_batch_size(2)
