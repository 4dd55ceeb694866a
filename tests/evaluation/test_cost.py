"""Costs in FLOPs or measured seconds: profiles, sweeps, tables, plots."""

import json

import numpy as np
import pytest

from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import best_within_budget
from keras_eexit.evaluation import exit_indices
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation import tradeoff_plot
from keras_eexit.evaluation.cost import CostProfile
from keras_eexit.evaluation.cost import model_signature
from keras_eexit.evaluation.cost import resolve_cost
from keras_eexit.evaluation.tables import anytime_table

SECONDS = (0.002, 0.0025, 0.003)  # exit 1 slow for its FLOPs, as on CPUs


def outputs(seed=0, n=400, params=(10, 20, 30)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    logits = rng.normal(size=(3, n, 5))
    for j in range(3):
        logits[j, np.arange(n), labels] += j + 1.0
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return ExitOutputs(probs.astype("float32"), labels,
                       np.array([100, 200, 300]), np.array(params),
                       ("exit_1", "exit_2", "exit_3"))


def profile_of(out, seconds=SECONDS, batch_size=1):
    return CostProfile(seconds, tuple(s * batch_size for s in seconds),
                       "keras", batch_size, model_signature(out),
                       out.exit_names, model_name="toy", device="CPU")


def test_sweep_in_measured_seconds_is_the_mean_of_the_exits_taken():
    out = outputs()
    result = threshold_sweep(out, cost=profile_of(out), thresholds=11)
    exits = exit_indices(out.probs, "max_softmax", result.thresholds)
    np.testing.assert_allclose(result.mean_flops,
                               np.asarray(SECONDS)[exits].mean(1))
    assert result.cost_unit == "s" and result.mean_cost is result.mean_flops
    flops = threshold_sweep(out, thresholds=11)
    assert flops.cost_unit == "FLOPs"
    np.testing.assert_array_equal(flops.accuracy, result.accuracy)
    np.testing.assert_array_equal(flops.exit_ratios, result.exit_ratios)


def test_arrays_take_a_profile_in_place_of_flops():
    out = outputs()
    result = threshold_sweep(out.probs, out.labels, cost=profile_of(out),
                             thresholds=5)
    assert result.cost_unit == "s"
    assert result.mean_flops.max() <= SECONDS[-1]


def test_a_profile_of_another_model_is_refused():
    other = profile_of(outputs(params=(10, 20, 31)))
    with pytest.raises(ValueError, match="measured on this model"):
        threshold_sweep(outputs(), cost=other)
    with pytest.raises(ValueError, match="argument `cost`"):
        threshold_sweep(outputs(), cost="latency")


def test_budget_table_in_seconds_names_its_columns_with_the_unit():
    out = outputs()
    profile = profile_of(out)
    result = threshold_sweep(out, cost=profile)
    table = budget_table(result, budgets=[0.0022, 0.0026])
    assert list(table) == ["2.2 ms", "2.6 ms", "max"]
    walk = np.asarray(result.mean_flops, np.float64).astype(np.float32)
    for key, limit in (("2.2 ms", 0.0022), ("2.6 ms", 0.0026)):
        over = np.nonzero(walk > limit)[0]  # the reference's reading
        assert table[key] == result.accuracy[over[0] - 1]
    # Fractions of the profile's final exit when the base is measured.
    fractions = budget_table(result, out, cost=profile)
    assert fractions["100%"] == table["max"]
    assert best_within_budget(result, cost=profile)["100%"] == max(
        result.accuracy)
    with pytest.raises(ValueError, match="same `cost=`"):
        budget_table(threshold_sweep(out), out, cost=profile)


def test_anytime_table_adds_measured_milliseconds():
    out = outputs()
    rows = anytime_table(out, cost=profile_of(out))
    assert [r["ms"] for r in rows] == pytest.approx([2.0, 2.5, 3.0])
    assert "ms" not in anytime_table(out)[0]


def test_resolved_outputs_keep_their_flops_for_another_convention():
    out = outputs()
    measured, unit = resolve_cost(out, profile_of(out))
    assert unit == "s" and measured.flops_convention == "measured"
    assert resolve_cost(measured)[1] == "s"


def test_tradeoff_plot_axis_says_the_unit():
    out = outputs()
    profile = profile_of(out)
    figure = tradeoff_plot(threshold_sweep(out, cost=profile), cost=profile)
    label = figure.axes[0].get_xlabel()
    assert "ms" in label and "keras, batch 1" in label
    line = figure.axes[0].get_lines()[0]
    assert max(line.get_xdata()) == pytest.approx(3.0)  # milliseconds
    assert "MFLOPs" in tradeoff_plot(threshold_sweep(out)).axes[
        0].get_xlabel()
    with pytest.raises(ValueError, match="mix cost units"):
        tradeoff_plot({"a": threshold_sweep(out),
                       "b": threshold_sweep(out, cost=profile)})


def test_profile_round_trips_through_json(tmp_path):
    out = outputs()
    profile = CostProfile(SECONDS, (0.064, 0.08, 0.096), "litert", 32,
                          model_signature(out), out.exit_names, "toy",
                          "CPU (x), LiteRT", {"keras": "3"}, 7, 0.03)
    profile.save(tmp_path / "p.json")
    assert CostProfile.load(tmp_path / "p.json") == profile


@pytest.mark.parametrize("change, message", [
    (None, "not a JSON cost profile"),
    ({"format": "other"}, "Not a keras-eexit cost profile"),
    ({"runtime": "DELETE"}, r"lacks the key\(s\) \['runtime'\]"),
    ({"seconds_per_sample": [0.002, 0.001, 0.003]}, "non-decreasing"),
    ({"seconds_per_sample": [0.001, -0.002, 0.003]}, "positive"),
    ({"seconds_per_sample": [0.001, 0.002]}, r"one per exit \(3\)"),
    ({"seconds_per_sample": "fast"}, "must be a list"),
    ({"batch_size": 0}, "batch_size"),
])
def test_malformed_profiles_are_refused_in_one_line(tmp_path, change,
                                                    message):
    out = outputs()
    data = profile_of(out).to_dict()
    path = tmp_path / "p.json"
    if change is None:
        path.write_text("{not json")
    else:
        for key, value in change.items():
            if value == "DELETE":
                del data[key]
            else:
                data[key] = value
        path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as error:
        CostProfile.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
