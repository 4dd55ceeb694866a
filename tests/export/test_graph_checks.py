"""The exported graphs' own input checks agree with the Python checks."""

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import criteria
from keras_eexit.inference.graph_checks import InputChecks
from keras_eexit.inference.graph_checks import order_keys

CANDIDATES = [0.0, -0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -1.0, -0.5, 0.999, 1e-45,
              np.nan, np.inf, -np.inf, 2.5]


def test_order_keys_order_like_the_floats():
    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.normal(scale=10.0 ** rng.integers(-30, 30, 200), size=200),
        [0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38],
    ]).astype(np.float32)
    keys = order_keys(tf.constant(values)).numpy()
    order = np.argsort(values, kind="stable")
    assert (np.diff(keys[order]) >= 0).all()
    assert keys[values == 0].tolist() == [0, 0]  # -0.0 is +0.0


@pytest.mark.parametrize("criterion", sorted(criteria.BUILT_IN))
def test_thresholds_the_graph_accepts_are_those_python_accepts(criterion):
    checks = InputChecks(criterion, 3, (4,), "float32")
    rng = np.random.default_rng(1)
    rows = [rng.choice(CANDIDATES, 3) for _ in range(300)]
    rows += [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [0.5] * 2, [0.5] * 4]
    for row in rows:
        try:
            criteria.check_thresholds(criterion, row, 3)
            expected = True
        except ValueError:
            expected = criterion == "static" and len(row) == 3 and (
                _static_per_exit_ok(row))
        ok, safe = checks.thresholds_ok(tf.constant(row, tf.float32))
        assert bool(ok) == expected, (criterion, row)
        if expected:  # valid thresholds go through unchanged
            np.testing.assert_array_equal(safe.numpy(),
                                          np.float32(row) + 0.0)


def _static_per_exit_ok(row):
    # Python takes one exit number for `static`; the graph reads each
    # exit's own (as for every criterion), each a valid exit number.
    return all(v in (1.0, 2.0, 3.0) for v in row)
