"""The budget table against Kubaty et al.'s reference rule.

Reference: kamadforge/early-exit-benchmark, `visualize/cost_vs_table.py`
(`generate_score_eff_table`) and `visualize/__init__.py` (`mean_std`).
Each hand-built case below is one where the library's former table
(denominator = the final exit's cumulative FLOPs, "max" = best accuracy of
the sweep, seeds read one by one and then averaged) gives another answer.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation.tables import best_within_budget
from keras_eexit.evaluation.tables import budget_table
from keras_eexit.evaluation.tables import budget_table_per_seed


@dataclasses.dataclass
class FakeSweep:
    accuracy: np.ndarray
    mean_flops: np.ndarray
    thresholds: np.ndarray = None
    criterion: str = "max_softmax"

    def __post_init__(self):
        self.accuracy = np.asarray(self.accuracy, dtype=np.float64)
        self.mean_flops = np.asarray(self.mean_flops, dtype=np.float64)
        if self.thresholds is None:
            self.thresholds = np.linspace(0, 1, len(self.accuracy))


def reference_table(runs, cost_100):
    """A direct transcription of the reference (numpy for torch).

    `runs`: one `(threshold_flops, threshold_scores)` pair per seed, in
    sweep order (thresholds ascending). `mean_std` averages each curve over
    seeds (ddof = 1 for the std), then `generate_score_eff_table` reads
    every budget fraction. `result_valid` is carried from one fraction to
    the next exactly as in the reference (it is only assigned on a break);
    `stale[j]` marks a row that never broke and so inherits the previous
    row's validity (a reference quirk: such a row should read the last
    point, as `budget_table` does).
    """
    # `torch.tensor(x_scores)` is float32; `mean_std` then averages with
    # `.double()`.
    threshold_flops = np.mean([np.asarray(f, np.float32).astype(np.float64)
                               for f, _ in runs], axis=0)
    scores = np.array([s for _, s in runs], dtype=np.float64)
    threshold_scores = scores.mean(0)
    threshold_scores_std = (scores.std(0, ddof=1) if len(runs) > 1
                            else np.full(scores.shape[1], np.nan))
    results, stds, stale = [], [], []
    result_valid = True  # unset in the reference until the first break
    for cost_fraction in [0.25, 0.5, 0.75, 1.0, math.inf]:
        broke = False
        for k, threshold_cost in enumerate(threshold_flops):
            if threshold_cost > cost_fraction * cost_100:
                if k > 0:
                    result_valid = True
                    k -= 1
                else:
                    result_valid = False
                broke = True
                break
        stale.append(not broke and not result_valid)
        if result_valid:
            results.append(threshold_scores[k])
            stds.append(threshold_scores_std[k])
        else:
            results.append(math.nan)
            stds.append(math.nan)
    return results, stds, stale


KEYS = ("25%", "50%", "75%", "100%", "max")


def test_base_network_denominator_changes_the_answer():
    # Exits cost 10, 40, 110 FLOPs (cumulative, every IC included); the
    # base network (backbone + final head, no IC) costs 100.
    result = FakeSweep([0.50, 0.70, 0.80, 0.90, 0.85],
                       [10, 40, 60, 90, 110])
    flops = np.array([10, 40, 110])
    table = budget_table(result, flops, base_flops=100)
    assert table["100%"] == 0.90  # 90 <= 100 < 110
    assert table["25%"] == 0.50 and table["50%"] == 0.70
    assert table["75%"] == 0.80  # 60 <= 75 < 90
    # The former denominator (the final exit's 110 FLOPs) reads 0.85.
    assert budget_table(result, flops)["100%"] == 0.85


def test_max_is_the_most_conservative_point_not_the_best():
    result = FakeSweep([0.50, 0.70, 0.92, 0.90], [10, 40, 90, 110])
    table = budget_table(result, base_flops=100)
    assert table["max"] == 0.90  # threshold 1.0, below the 100% column
    assert table["100%"] == 0.92
    assert best_within_budget(result, base_flops=100)["best"] == 0.92


def test_seeds_are_averaged_per_threshold_before_reading():
    seed_a = FakeSweep([0.40, 0.60, 0.80], [10, 20, 60])
    seed_b = FakeSweep([0.50, 0.90, 0.95], [10, 60, 60])
    # Mean curve: FLOPs [10, 40, 60], accuracy [0.45, 0.75, 0.875]; the
    # 50% budget (50 FLOPs) reads the second point.
    table, stds = budget_table([seed_a, seed_b], base_flops=100,
                               return_std=True)
    assert table["50%"] == pytest.approx(0.75)
    assert stds["50%"] == pytest.approx(np.std([0.60, 0.90], ddof=1))
    # Reading each seed first (0.60 and 0.50) gives another answer.
    per_seed = budget_table_per_seed([seed_a, seed_b], base_flops=100)
    np.testing.assert_allclose(per_seed["50%"], [0.60, 0.50])
    assert per_seed["50%"].mean() != pytest.approx(table["50%"])


def test_nan_when_even_the_first_point_exceeds_the_budget():
    result = FakeSweep([0.5, 0.6], [30, 50])
    table, stds = budget_table(result, base_flops=100, return_std=True)
    assert np.isnan(table["25%"]) and np.isnan(stds["25%"])
    assert table["50%"] == 0.6 and stds["50%"] == 0.0


def test_costs_are_float32_before_averaging_as_in_the_reference():
    # 250 + 1e-6 rounds to 250.0 in float32: the reference's first point
    # fits the 25% budget of 1,000 FLOPs (its accuracy, 0.5), where a
    # float64 mean exceeds it and reads NaN.
    seeds = [FakeSweep([0.5, 0.9], [250 + 1e-6, 900]),
             FakeSweep([0.5, 0.9], [250 + 1e-6, 900])]
    assert np.float32(250 + 1e-6) == 250.0
    runs = [(s.mean_flops, s.accuracy) for s in seeds]
    assert reference_table(runs, 1000.0)[0][0] == 0.5
    assert budget_table(seeds, base_flops=1000.0)["25%"] == 0.5
    assert budget_table(seeds[0], base_flops=1000.0)["25%"] == 0.5


def test_exit_outputs_carry_the_denominator():
    outputs = ExitOutputs(np.full((2, 1, 2), 0.5), np.zeros(1, int),
                          np.array([10, 110]), np.array([1, 2]),
                          ("exit_1", "exit_2"), base_flops=100.0)
    result = FakeSweep([0.5, 0.9, 0.8], [10, 100, 110])
    assert budget_table(result, outputs)["100%"] == 0.9
    # An explicit base_flops wins over the outputs'.
    assert budget_table(result, outputs, base_flops=110)["100%"] == 0.8


def test_seed_sweeps_must_share_thresholds():
    a = FakeSweep([0.5, 0.6], [10, 20])
    b = FakeSweep([0.5, 0.6], [10, 20], thresholds=np.array([0.0, 0.5]))
    with pytest.raises(ValueError, match="same thresholds"):
        budget_table([a, b], base_flops=100)


@pytest.mark.parametrize("base", [0, -5, float("nan"), True, "100"])
def test_bad_base_flops(base):
    with pytest.raises(ValueError, match="base_flops"):
        budget_table(FakeSweep([0.5], [10]), base_flops=base)


def test_needs_some_denominator():
    with pytest.raises(ValueError, match="base_flops"):
        budget_table(FakeSweep([0.5], [10]))


@st.composite
def seed_sweeps(draw):
    points = draw(st.integers(1, 12))
    seeds = draw(st.integers(1, 4))
    monotone = draw(st.booleans())
    runs = []
    for _ in range(seeds):
        flops = draw(st.lists(st.integers(1, 200), min_size=points,
                              max_size=points))
        if monotone:  # what a real threshold sweep gives
            flops = sorted(flops)
        accuracy = draw(st.lists(
            st.integers(0, 100).map(lambda v: v / 100), min_size=points,
            max_size=points))
        runs.append((np.array(flops, np.float64), np.array(accuracy)))
    base = draw(st.integers(1, 250))
    return runs, float(base)


@settings(max_examples=200, deadline=None)
@given(seed_sweeps())
def test_table_equals_the_reference_rule(case):
    runs, base = case
    sweeps = [FakeSweep(acc, flops) for flops, acc in runs]
    table, stds = budget_table(sweeps, base_flops=base, return_std=True)
    expected, expected_stds, stale = reference_table(runs, base)
    mean_accuracy = np.mean([acc for _, acc in runs], axis=0)
    for key, value, std, quirk in zip(KEYS, expected, expected_stds, stale):
        if quirk:  # every point fits: the last point
            assert table[key] == pytest.approx(mean_accuracy[-1], rel=1e-12)
            continue
        np.testing.assert_allclose(table[key], value, rtol=1e-12)
        if len(runs) > 1:
            np.testing.assert_allclose(stds[key], std, rtol=1e-9,
                                       atol=1e-12)
    # "max" is always the most conservative point.
    assert table["max"] == pytest.approx(mean_accuracy[-1], rel=1e-12)


def test_per_exit_threshold_rows_walk_by_cost():
    from keras_eexit.evaluation import exit_ratio_plot
    from keras_eexit.evaluation.tables import conservative_order

    result = FakeSweep([0.9, 0.5, 0.7], [90, 10, 40],
                       thresholds=np.array([[0.9, 0.9], [0.1, 0.1],
                                            [0.5, 0.5]]))
    np.testing.assert_array_equal(conservative_order(result), [1, 2, 0])
    assert budget_table(result, base_flops=100)["50%"] == 0.7
    result.exit_ratios = np.array([[0.1, 0.9], [0.9, 0.1], [0.5, 0.5]])
    figure = exit_ratio_plot(result, ["a", "b"])
    assert "per-exit" in figure.axes[0].get_xlabel()
