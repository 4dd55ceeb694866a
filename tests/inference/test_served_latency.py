"""Closed-loop latency calibration (`inference/served_latency.py`)."""

import json

import keras
import numpy as np
import pytest

from keras_eexit.evaluation import threshold_sweep
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import calibrate_latency
from keras_eexit.inference import keras_serving
from keras_eexit.inference import measure_costs
from keras_eexit.evaluation import collect
from tests.conftest import make_tiny_model
from tests.evaluation.test_cost import outputs
from tests.evaluation.test_cost import profile_of

BUDGET = 0.0026  # seconds per sample: the exits cost 2, 2.5 and 3 ms


def _profile_seconds(policy, validation, profile):
    """The policy's mean cost on the profile (what it promises)."""
    result = threshold_sweep(policy.probabilities(validation.probs),
                             validation.labels, cost=profile,
                             criterion=policy.criterion,
                             thresholds=policy.threshold_array()[None])
    return float(result.mean_flops[0])


def _biased_server(validation, profile, scale, overhead=0.0):
    """A serving loop that runs `scale` times the profile plus a fixed
    `overhead` per sample (what a served batch adds), and counts calls."""
    calls = []

    def serve(policy):
        calls.append(policy)
        return scale * _profile_seconds(policy, validation,
                                        profile) + overhead
    serve.calls = calls
    return serve


def test_a_serving_loop_slower_than_its_profile_is_brought_to_the_budget():
    validation = outputs(1)
    profile = profile_of(validation)
    serve = _biased_server(validation, profile, scale=1.25)
    result = calibrate_latency(validation, BUDGET, profile, serve,
                               tolerance=0.03)
    first = result.rounds[0]
    # The profile's own choice serves over the budget...
    assert first["target"] == BUDGET and first["measured"] > 1.03 * BUDGET
    # ...the calibrated one within 3% of it, at most 3% over.
    assert result.met and len(result.rounds) >= 2
    assert abs(result.measured - BUDGET) <= 0.03 * BUDGET
    assert result.measured == pytest.approx(
        1.25 * _profile_seconds(result.policy, validation, profile))
    assert len(serve.calls) == len(result.rounds)
    record = result.policy.metadata["latency_calibration"]
    assert record["budget"] == BUDGET and len(record["rounds"]) == len(
        result.rounds)
    again = ExitPolicy.from_dict(json.loads(json.dumps(
        result.policy.to_dict())))
    assert again == result.policy


def test_a_serving_loop_on_budget_takes_the_profiles_policy():
    validation = outputs(2)
    profile = profile_of(validation)
    serve = _biased_server(validation, profile, scale=1.0)
    result = calibrate_latency(validation, BUDGET, profile, serve)
    assert len(result.rounds) == 1 and result.met
    assert result.measured <= BUDGET


def test_a_budget_the_first_exit_cannot_meet_returns_the_fastest():
    validation = outputs(3)
    profile = profile_of(validation)
    # Every call pays 2 ms more than the profile: even exit 1 is over.
    serve = _biased_server(validation, profile, scale=1.0, overhead=0.002)
    result = calibrate_latency(validation, BUDGET, profile, serve,
                               max_rounds=10)
    assert not result.met
    assert result.rounds[-1]["target"] == pytest.approx(
        profile.seconds_per_sample[0])
    assert result.measured == min(r["measured"] for r in result.rounds)
    assert len(result.rounds) < 10  # stopped at the first exit's cost


@pytest.mark.parametrize("kwargs, words", [
    ({"cost": None}, "a measured CostProfile"),
    ({"budget": 0.0005}, "between the first exit's"),
    ({"budget": 0.01}, "between the first exit's"),
    ({"tolerance": 0.0}, "tolerance"),
    ({"max_rounds": 0}, "max_rounds"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs, words):
    validation = outputs(1)
    arguments = dict(validation=validation, budget=BUDGET,
                     cost=profile_of(validation),
                     serve=lambda policy: 1.0)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=words) as error:
        calibrate_latency(**arguments)
    assert "\n" not in str(error.value)


def test_a_serve_function_that_returns_no_time_is_refused():
    validation = outputs(1)
    with pytest.raises(ValueError, match="seconds per sample"):
        calibrate_latency(validation, BUDGET, profile_of(validation),
                          lambda policy: 0.0)


def test_keras_serving_times_predict_early_exit_on_a_real_model():
    keras.utils.set_random_seed(0)
    model = make_tiny_model()
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 1)).astype(
        "float32")
    validation = collect(model, (x, np.zeros(64, "int64")))
    profile = measure_costs(model, runtime="keras", batch_size=32, data=x,
                            min_repeats=2, max_repeats=3, max_seconds=2)
    serve = keras_serving(model, x, batch_size=32, repeats=1)
    budget = float(np.mean(profile.cost_array()[[0, -1]]))
    result = calibrate_latency(validation, budget, profile, serve,
                               max_rounds=2)
    assert 1 <= len(result.rounds) <= 2
    assert all(r["measured"] > 0 for r in result.rounds)
    assert result.policy.num_exits == model.num_exits
