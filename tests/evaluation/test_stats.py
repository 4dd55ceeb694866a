"""Multi-seed comparison: checks, ANOVA/Tukey and the fallbacks."""

import numpy as np
import pytest
from scipy import stats

from keras_eexit.evaluation import compare
from keras_eexit.evaluation import mean_std
from keras_eexit.evaluation.stats import dunn_holm
from keras_eexit.evaluation.stats import games_howell
from keras_eexit.evaluation.stats import welch_anova

RESULTS = {
    "two_stage": [0.900, 0.905, 0.898, 0.902],
    "joint": [0.950, 0.948, 0.953, 0.951],
    "mixed": [0.949, 0.951, 0.947, 0.952],
}


def test_compare_matches_scipy_and_orders():
    result = compare(RESULTS)
    assert result.omnibus == "anova" and result.posthoc == "tukey_hsd"
    assert result.names == ("joint", "mixed", "two_stage")
    samples = [RESULTS[n] for n in result.names]
    assert result.anova_p == pytest.approx(stats.f_oneway(*samples).pvalue)
    np.testing.assert_allclose(result.tukey_p,
                               stats.tukey_hsd(*samples).pvalue)
    # joint vs mixed: not significant; mixed vs two_stage: significant.
    assert result.ordering == "joint > mixed ≫ two_stage"
    np.testing.assert_allclose(result.stds[0], np.std(RESULTS["joint"],
                                                      ddof=1))
    checks = result.assumptions
    assert checks["shapiro_p"]["joint"] == pytest.approx(
        stats.shapiro(RESULTS["joint"]).pvalue)
    assert checks["levene_p"] == pytest.approx(
        stats.levene(*samples, center="mean").pvalue)
    pairs = result.significant_pairs()
    assert {(a, b) for a, b, _, _ in pairs} == {("joint", "two_stage"),
                                                ("mixed", "two_stage")}


def test_welch_anova_and_games_howell_reduce_to_welch_t_for_two_groups():
    a = np.array([1.0, 1.2, 0.9, 1.1, 1.3])
    b = np.array([2.0, 3.5, 1.0, 2.8, 4.1, 0.7])
    t = stats.ttest_ind(a, b, equal_var=False)
    f, p = welch_anova(a, b)
    assert f == pytest.approx(t.statistic ** 2)
    assert p == pytest.approx(t.pvalue)
    assert games_howell(a, b)[0, 1] == pytest.approx(t.pvalue, rel=1e-4)


def test_unequal_variances_fall_back_to_welch():
    z = stats.norm.ppf((np.arange(8) + 0.5) / 8)  # normal quantiles
    # Spreads 0.01/0.04/0.02: Levene rejects, the pooled residuals stay
    # normal (much larger ratios make them a heavy-tailed mixture).
    results = {"tight": 0.90 + 0.01 * z, "loose": 0.88 + 0.04 * z[::-1],
               "other": 0.80 + 0.02 * np.roll(z, 3)}
    result = compare(results)
    assert result.assumptions["levene_p"] < 0.05
    assert result.assumptions["normal"]
    assert (result.omnibus, result.posthoc) == ("welch_anova",
                                                "games_howell")
    assert "Levene" in result.note
    groups = [results[n] for n in result.names]
    assert result.omnibus_p == pytest.approx(welch_anova(*groups)[1])


def test_non_normal_falls_back_to_kruskal_and_dunn():
    skewed = [0.50, 0.51, 0.50, 0.51, 0.50, 0.51, 0.50, 0.99]
    results = {"skewed": skewed,
               "normal": [0.70, 0.71, 0.69, 0.70, 0.72, 0.68, 0.70, 0.71]}
    result = compare(results)
    assert (result.omnibus, result.posthoc) == ("kruskal", "dunn_holm")
    assert "Shapiro" in result.note
    assert result.omnibus_p == pytest.approx(
        stats.kruskal(*[results[n] for n in result.names]).pvalue)
    p = dunn_holm(np.array(skewed), np.array(results["normal"]))
    assert p[0, 1] == p[1, 0] and p[0, 0] == 1.0 and 0 < p[0, 1] < 0.05


def test_normality_is_checked_on_the_residuals():
    """Strategies at a glance §5: "Normality of residuals was tested using
    the Shapiro–Wilk test". With three seeds one tie makes a regime's own
    Shapiro–Wilk p about 0; the pooled residuals are normal, so ANOVA and
    Tukey HSD run."""
    results = {"joint": [0.95, 0.95, 0.96], "mixed": [0.94, 0.955, 0.962],
               "two_stage": [0.90, 0.912, 0.905]}
    result = compare(results)
    checks = result.assumptions
    assert checks["shapiro_p"]["joint"] < 1e-6  # the tie
    residuals = np.concatenate([np.subtract(v, np.mean(v))
                                for v in (results[n] for n in result.names)])
    assert checks["residual_shapiro_p"] == pytest.approx(
        stats.shapiro(residuals).pvalue)
    assert checks["normal"] and checks["normality"] == "residuals"
    assert (result.omnibus, result.posthoc) == ("anova", "tukey_hsd")
    # The former per-regime check stays available by name.
    per_group = compare(results, normality="per_group")
    assert per_group.omnibus == "kruskal" and "['joint']" in per_group.note
    with pytest.raises(ValueError, match="normality"):
        compare(results, normality="pooled")


def test_non_normal_residuals_fall_back_to_kruskal():
    results = {"a": [0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.90],
               "b": [0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.30]}
    result = compare(results)
    assert result.assumptions["residual_shapiro_p"] < 0.05
    assert result.omnibus == "kruskal" and "residuals" in result.note


def test_no_spread_within_regimes_uses_kruskal():
    """Every seed of a regime gave one value, but the regimes differ:
    ANOVA is undefined (no within-group variance), Kruskal–Wallis is."""
    a, b = [0.5, 0.5, 0.5], [0.9, 0.9, 0.9]
    result = compare({"a": a, "b": b})
    assert (result.omnibus, result.posthoc) == ("kruskal", "dunn_holm")
    assert result.omnibus_p == pytest.approx(stats.kruskal(b, a).pvalue)
    assert result.pairwise_p[0, 1] == pytest.approx(
        dunn_holm(np.array(b), np.array(a))[0, 1])
    assert result.ordering == "b ≫ a" and "no spread within" in result.note


def test_no_spread_at_all_is_never_p_zero():
    flat = compare({"a": [0.5, 0.5, 0.5], "b": [0.5, 0.5, 0.5]})
    assert flat.omnibus == "none"
    assert np.isnan(flat.omnibus_p) and np.isnan(flat.pairwise_p[0, 1])
    assert flat.ordering == "a = b"  # not marked significant
    assert "no spread" in flat.note and flat.significant_pairs() == []


def test_lower_is_better_orders_ascending():
    result = compare({"a": [3.0, 3.1, 2.9], "b": [1.0, 1.1, 0.9]},
                     higher_is_better=False)
    assert result.ordering == "b ≫ a"


def test_bad_input():
    with pytest.raises(ValueError, match="at least two regimes"):
        compare({"joint": [0.9, 0.91]})
    with pytest.raises(ValueError, match="at least two seeds"):
        compare({"a": [0.9], "b": [0.8, 0.7]})
    with pytest.raises(ValueError, match="alpha"):
        compare(RESULTS, alpha=1.5)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == "2.0000 ± 1.4142"
