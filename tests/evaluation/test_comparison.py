"""Multi-seed statistics: SciPy equality, notation, degenerate cases."""

import numpy as np
import pytest
from scipy import stats

from keras_eexit.evaluation import compare
from keras_eexit.evaluation import mean_std

# Known data: three regimes, five seeds. B and C are close; A is far ahead.
KNOWN = {
    "B": [0.912, 0.915, 0.909, 0.917, 0.913],
    "A": [0.951, 0.948, 0.955, 0.950, 0.953],
    "C": [0.910, 0.914, 0.905, 0.912, 0.908],
}


def test_equals_scipy_on_known_data():
    result = compare(KNOWN)
    assert result.names == ("A", "B", "C")
    groups = [KNOWN[n] for n in result.names]
    assert result.anova_p == pytest.approx(stats.f_oneway(*groups).pvalue,
                                           rel=1e-12)
    np.testing.assert_allclose(result.tukey_p,
                               stats.tukey_hsd(*groups).pvalue, rtol=1e-12)
    np.testing.assert_allclose(result.means, [np.mean(g) for g in groups])
    np.testing.assert_allclose(result.stds,
                               [np.std(g, ddof=1) for g in groups])
    assert result.tukey_p[0, 1] < 0.05 < result.tukey_p[1, 2]
    assert result.ordering == "A ≫ B > C"
    assert result.note == ""


def test_alpha_changes_the_notation():
    p = compare(KNOWN).tukey_p[1, 2]
    loose = compare(KNOWN, alpha=min(0.99, p * 1.01))
    assert loose.ordering == "A ≫ B ≫ C"


def test_equal_means_and_no_spread():
    tie = compare({"x": [1.0, 2.0], "y": [2.0, 1.0]})
    assert tie.ordering == "x = y"
    # No spread within any regime: ANOVA is undefined, Kruskal–Wallis on
    # the ranks is not (issue 23 item 12).
    flat = compare({"a": [0.5, 0.5, 0.5], "b": [0.9, 0.9, 0.9],
                    "c": [0.9, 0.9, 0.9]})
    assert flat.omnibus == "kruskal" and "no spread within" in flat.note
    assert flat.ordering == "b = c ≫ a"
    same = compare({"a": [1.0, 1.0], "b": [1.0, 1.0]})
    assert np.isnan(same.anova_p) and same.ordering == "a = b"


def test_lower_is_better():
    result = compare({"slow": [30.0, 31.0, 29.0], "fast": [10.0, 11.0, 9.0]},
                     higher_is_better=False)
    assert result.ordering == "fast ≫ slow"


@pytest.mark.parametrize("results,alpha,match", [
    ({"a": [1.0, np.nan], "b": [1.0, 2.0]}, 0.05, "finite numbers"),
    ({"a": [1.0, "x"], "b": [1.0, 2.0]}, 0.05, "finite numbers"),
    ([0.9, 0.8], 0.05, "a dict"),
    ({"a": [1.0, 2.0], "b": [1.0, 2.0]}, True, "alpha"),
    ({"a": [1.0, 2.0], "b": [1.0, 2.0]}, 0.0, "alpha"),
])
def test_bad_input(results, alpha, match):
    with pytest.raises(ValueError, match=match):
        compare(results, alpha=alpha)


def test_mean_std_marks_missing_values():
    assert mean_std([0.5, np.nan]) == "n/a"
    assert mean_std([0.5]) == "0.5000 ± 0.0000"
    assert mean_std([1.0, 2.0, 3.0], digits=1) == "2.0 ± 1.0"
