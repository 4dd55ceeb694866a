"""Multi-seed comparison: ANOVA and Tukey HSD as SciPy computes them."""

import numpy as np
import pytest
from scipy import stats

from keras_eexit.evaluation import compare
from keras_eexit.evaluation import mean_std

RESULTS = {
    "two_stage": [0.900, 0.905, 0.898, 0.902],
    "joint": [0.950, 0.948, 0.953, 0.951],
    "mixed": [0.949, 0.951, 0.947, 0.952],
}


def test_compare_matches_scipy_and_orders():
    result = compare(RESULTS)
    assert result.names == ("joint", "mixed", "two_stage")
    samples = [RESULTS[n] for n in result.names]
    assert result.anova_p == pytest.approx(stats.f_oneway(*samples).pvalue)
    np.testing.assert_allclose(result.tukey_p,
                               stats.tukey_hsd(*samples).pvalue)
    # joint vs mixed: not significant; mixed vs two_stage: significant.
    assert result.ordering == "joint > mixed ≫ two_stage"
    np.testing.assert_allclose(result.stds[0], np.std(RESULTS["joint"],
                                                      ddof=1))


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
