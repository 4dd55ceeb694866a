"""`measure_costs`: a profile measured through the runtime's own calls."""

import contextlib
import dataclasses

import numpy as np
import pytest

from keras_eexit.evaluation import collect
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation.cost import model_signature
from keras_eexit.inference import measure_costs
from keras_eexit.inference import cost_profile
from keras_eexit.inference import predict_early_exit
from keras_eexit.inference.cost_profile import forced_thresholds
from keras_eexit.inference.cost_profile import runtimes
from keras_eexit.inference.predict import _batch_runner
from keras_eexit.inference.policy import as_policy

QUICK = {"min_repeats": 2, "max_repeats": 3}


def _check_profile(profile, model, runtime, batch_size):
    assert profile.runtime == runtime and profile.batch_size == batch_size
    assert profile.exit_names == tuple(model.exit_names)
    assert profile.model_signature == model_signature(model)
    assert profile.model_name == model.name
    per_sample = np.asarray(profile.seconds_per_sample)
    assert np.all(per_sample > 0) and np.all(np.diff(per_sample) >= 0)
    np.testing.assert_allclose(
        np.asarray(profile.seconds_per_batch) / batch_size, per_sample)
    assert profile.device and profile.versions["keras"]
    assert 2 <= profile.repeats <= 3


def test_forced_thresholds_send_every_row_to_one_exit(tiny_model,
                                                      tiny_data):
    x, _ = tiny_data
    for k in range(tiny_model.num_exits):
        policy = as_policy(tiny_model.num_exits,
                           forced_thresholds("max_softmax", 3, k))
        _, index = _batch_runner(tiny_model, policy)(x)
        assert set(index.tolist()) == {k}


def test_keras_profile_and_its_use(tiny_model, tiny_data):
    x, y = tiny_data
    profile = measure_costs(tiny_model, batch_size=8, data=(x, y), **QUICK)
    _check_profile(profile, tiny_model, "keras", 8)
    # Fixed costs per call, fitted with a second batch of 8 // 16 -> 2 rows.
    assert profile.call_batch_size == 2
    calls = np.asarray(profile.seconds_per_call)
    assert np.all(calls >= 0) and np.all(np.diff(calls) >= 0)
    assert np.all(calls <= np.asarray(profile.seconds_per_batch))
    # Each served batch of 8: the rows' costs and the fixed costs of the
    # stages it ran, shared over its rows.
    _, index, seconds = predict_early_exit(tiny_model, x, 0.5, cost=profile,
                                           batch_size=8)
    for start in range(0, len(x), 8):
        rows = index[start:start + 8]
        np.testing.assert_allclose(
            seconds[start:start + 8], profile.row_array()[rows]
            + calls[rows.max()] / len(rows))
    # A batch that all leave at one exit costs the profile's figure.
    for k in range(tiny_model.num_exits):
        thresholds = forced_thresholds("max_softmax", tiny_model.num_exits, k)
        _, _, seconds = predict_early_exit(tiny_model, x[:8], thresholds,
                                           cost=profile)
        np.testing.assert_allclose(seconds, profile.seconds_per_sample[k])
    additive = dataclasses.replace(profile, seconds_per_call=None,
                                   call_batch_size=None)
    _, index, seconds = predict_early_exit(tiny_model, x, 0.5, cost=additive)
    np.testing.assert_array_equal(
        seconds, np.asarray(profile.seconds_per_sample)[index])
    assert threshold_sweep(collect(tiny_model, (x, y)),
                           cost=profile).cost_unit == "s"


def test_a_profile_of_another_model_is_refused(tiny_model, tiny_data,
                                               model_factory):
    profile = measure_costs(tiny_model, batch_size=4, **QUICK)
    other = model_factory(num_exits=2)
    with pytest.raises(ValueError, match="measured on this model"):
        predict_early_exit(other, tiny_data[0], 0.5, cost=profile)


def test_runtime_and_batch_size_are_checked(tiny_model):
    assert {"keras", "saved_model", "litert"} <= set(runtimes())
    with pytest.raises(ValueError, match="Unknown runtime 'tflite'"):
        measure_costs(tiny_model, runtime="tflite")
    with pytest.raises(ValueError, match="argument `batch_size`"):
        measure_costs(tiny_model, batch_size=0)


def test_litert_profile_at_batch_one(tiny_model):
    pytest.importorskip("ai_edge_litert")
    profile = measure_costs(tiny_model, runtime="litert", num_threads=1,
                            **QUICK)
    _check_profile(profile, tiny_model, "litert", 1)
    assert profile.seconds_per_call is None  # at batch 1: nothing to fit
    assert "LiteRT interpreter, 1 threads" in profile.device
    assert "ai_edge_litert" in profile.versions


@pytest.mark.slow
def test_saved_model_profile(tiny_model):
    profile = measure_costs(tiny_model, runtime="saved_model", batch_size=4,
                            **QUICK)
    _check_profile(profile, tiny_model, "saved_model", 4)


class FakeClock:
    """`time.perf_counter` advanced only by the calls being timed."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def call(self, durations):
        """A call lasting `durations[i]` seconds its i-th time."""
        count = iter(range(10 ** 6))

        def run():
            self.now += durations[next(count) % len(durations)]
        return run


def test_time_calls_stops_once_the_repeats_agree(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(cost_profile.time, "perf_counter", clock)
    steady = [clock.call([0.004]), clock.call([0.010])]
    medians, rounds, spread = cost_profile.time_calls(steady, min_repeats=4)
    assert medians == pytest.approx([0.004, 0.010])
    assert rounds == 4 and spread == pytest.approx(0.0)


def test_time_calls_keeps_the_median_and_stops_at_the_cap(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(cost_profile.time, "perf_counter", clock)
    # Two warm-up runs, then samples alternating 4 ms and 8 ms: the
    # spread never falls under 5%, so the rounds run to the cap.
    noisy = clock.call([0.004, 0.004] + [0.004, 0.008] * 10)
    medians, rounds, spread = cost_profile.time_calls(
        [noisy], min_repeats=3, max_repeats=7)
    assert rounds == 7 and spread > 0.05
    assert medians[0] == pytest.approx(0.004)  # 4 of the 7 samples
    capped = cost_profile.time_calls([clock.call([0.004, 0.02])],
                                     max_repeats=50, max_seconds=0.1)
    assert capped[1] < 50


def test_fixed_and_per_row_costs_are_fitted_from_two_batch_sizes(
        tiny_model, monkeypatch):
    # A runtime whose call on n rows lasts C_k + n R_k (cumulative), on a
    # clock that only the calls advance.
    fixed, per_row = np.array([2e-3, 3e-3, 5e-3]), np.array([1e-4, 3e-4,
                                                            4e-4])
    clock = FakeClock()
    monkeypatch.setattr(cost_profile.time, "perf_counter", clock)

    @contextlib.contextmanager
    def linear_calls(model, batch, criterion):
        yield ([clock.call([fixed[k] + len(batch) * per_row[k]])
                for k in range(model.num_exits)], "fake", {})

    monkeypatch.setitem(cost_profile._RUNTIMES, "linear", linear_calls)
    monkeypatch.setitem(cost_profile.DEFAULT_BATCH_SIZES, "linear", 64)
    profile = measure_costs(tiny_model, runtime="linear", **QUICK)
    assert profile.batch_size == 64 and profile.call_batch_size == 4
    np.testing.assert_allclose(profile.seconds_per_call, fixed)
    np.testing.assert_allclose(profile.row_array(), per_row)
    np.testing.assert_allclose(profile.seconds_per_batch,
                               fixed + 64 * per_row)
    other = measure_costs(tiny_model, runtime="linear", call_batch_size=32,
                          **QUICK)
    np.testing.assert_allclose(other.seconds_per_call, fixed)
    plain = measure_costs(tiny_model, runtime="linear", call_batch_size=None,
                          **QUICK)
    assert plain.seconds_per_call is None and plain.call_batch_size is None
    for bad in (0, 64, 2.5, "small"):
        with pytest.raises(ValueError, match="argument `call_batch_size`"):
            measure_costs(tiny_model, runtime="linear", call_batch_size=bad,
                          **QUICK)


def test_the_fit_clamps_noise():
    # Exit 2's small batch timed slower than its big one: no per-row part,
    # all of it fixed; exit 3's fit (2.67) is raised to exit 2's 6 s.
    calls = cost_profile.fit_call_costs([4.0, 6.0, 20.0], [1.0, 7.0, 1.0],
                                        4, 1)
    np.testing.assert_allclose(calls, [0.0, 6.0, 6.0])
    assert cost_profile.call_batch_size_for(1) is None
    assert cost_profile.call_batch_size_for(2) is None
    assert cost_profile.call_batch_size_for(3) == 2
    assert cost_profile.call_batch_size_for(256) == 16
