"""PABEE: its loss weighting under any regime, and its patience exit."""

import numpy as np
import pytest

from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.methods import depth_weighted
from keras_eexit.methods import get_method
from keras_eexit.methods import pbee
from keras_eexit.methods import pbee_regime
from keras_eexit.regimes import Joint
from keras_eexit.regimes import Mixed
from keras_eexit.regimes import TwoStage
from keras_eexit.regimes import sdn_schedule
from tests.conftest import make_tiny_model


def test_depth_weighting_is_pabees_weighted_average():
    # Joint's uniform weights become Σ k·L_k / Σ k (times K: keras-eexit's
    # weights average 1), the "linear" scheme with c = K.
    np.testing.assert_allclose(depth_weighted("uniform", 4),
                               4 * np.arange(1, 5) / 10)
    np.testing.assert_allclose(depth_weighted("uniform", 4),
                               exit_weights("linear", 4, scale=4))
    # A phase that trains one exit is unchanged; a subset keeps its total.
    assert depth_weighted([0, 0, 1], 3) == [0, 0, 1]
    np.testing.assert_allclose(depth_weighted([1, 1, 0], 3),
                               [2 / 3, 4 / 3, 0])
    # Schedules stay schedules.
    schedule = depth_weighted(sdn_schedule(3), 3)
    w = np.array(sdn_schedule(3)(5, 10))
    np.testing.assert_allclose(schedule(5, 10),
                               w * [1, 2, 3] * w.sum() / (w * [1, 2, 3]).sum())


@pytest.mark.parametrize("regime", [Joint(), TwoStage(2, 2), Mixed(2, 2)])
def test_every_regime_keeps_its_phases_reweighted(regime):
    adapted = pbee_regime(regime)
    inner = regime.phases_for(3)
    phases = adapted.phases_for(3)
    assert [p.name for p in phases] == [p.name for p in inner]
    assert [p.train_heads for p in phases] == [p.train_heads for p in inner]
    for before, after in zip(inner, phases):
        assert after.weights == depth_weighted(before.weights, 3)
    assert pbee_regime(regime, weighting="none") is regime


def test_registry():
    method = get_method("pbee")
    assert method.criterion == "patience"
    model = make_tiny_model(num_exits=2)
    assert method.build(model) is model
    with pytest.raises(ValueError, match="at least 2 exits"):
        pbee(make_tiny_model(num_exits=1))
    with pytest.raises(ValueError, match="method"):
        get_method("nope")
