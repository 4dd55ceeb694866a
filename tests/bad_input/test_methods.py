"""Bad input to the early-exit methods: one clear message each."""

import keras
import numpy as np
import pytest

from keras_eexit import methods
from keras_eexit.layers import GPFHead
from keras_eexit.layers import ZTWHead
from keras_eexit.models import get_model
from keras_eexit.regimes import Joint
from keras_eexit.regimes import Phase
from keras_eexit.regimes import TwoStage
from tests.conftest import make_tiny_model

FEATURES = np.zeros((2, 5), "float32")


@pytest.mark.parametrize("make,argument", [
    (lambda: methods.get_method("zero_time_waste"), "method"),
    (lambda: methods.ztw(make_tiny_model(2), ensemble_final=1),
     "ensemble_final"),
    (lambda: methods.ztw_regime(Joint(), ensemble_epochs=0),
     "ensemble_epochs"),
    (lambda: methods.ztw_regime(Joint(), learning_rate=0.0),
     "learning_rate"),
    (lambda: methods.ztw_regime(TwoStage(1, 1), epochs=True), "epochs"),
    (lambda: methods.gpf(make_tiny_model(2), state_dim=0,
                         state_head="linear"), "state_dim"),
    (lambda: methods.gpf(make_tiny_model(2)), "state_head"),
    (lambda: methods.pbee_regime(Joint(), weighting="linear"),
     "weighting"),
    (lambda: methods.MethodRegime("joint", lambda p, n: p, "sdn"),
     "regime"),
    (lambda: ZTWHead("linear"), "head"),
    (lambda: ZTWHead(keras.layers.Dense(3), detach="yes"), "detach"),
    (lambda: GPFHead(keras.layers.Dense(3), 4, 2, imitation_weight=-1.0),
     "imitation_weight"),
    (lambda: GPFHead(keras.layers.Dense(3), 4, 0), "num_exits"),
    (lambda: GPFHead(keras.layers.Dense(3), 4, 2, state_dropout=1.0),
     "state_dropout"),
    (lambda: Phase("p", 1, train_step="ztw"), "train_step"),
])
def test_arguments(make, argument):
    with pytest.raises(ValueError,
                       match=f"(argument `{argument}`|Unknown {argument})"):
        make()


def test_models_a_method_cannot_build_on():
    with pytest.raises(ValueError, match="at least 2 exits"):
        methods.pbee(make_tiny_model(num_exits=1))
    with pytest.raises(ValueError, match="only once"):
        methods.ztw(methods.ztw(make_tiny_model(num_exits=2)))
    damping = get_model("cnn1d", width=4, damping=True)
    with pytest.raises(ValueError, match="damping unit"):
        methods.gpf(damping)
    assert methods.sdn(damping) is damping  # plain methods keep any head
    assert methods.pbee(damping) is damping
    with pytest.raises(ValueError, match="argument `model`"):
        methods.ztw(keras.Sequential())
    # Heads wired into the wrong chain say what they expected.
    with pytest.raises(ValueError, match="cascade=False"):
        ZTWHead(keras.layers.Dense(3))((FEATURES, ()))
    with pytest.raises(ValueError, match="same classes"):
        ZTWHead(keras.layers.Dense(3))((FEATURES, (np.zeros((2, 4)),)))
    with pytest.raises(ValueError, match="num_exits=1"):
        GPFHead(keras.layers.Dense(3), 4, 1)(
            (FEATURES, ((np.zeros((2, 3), "float32"),),)))


def test_a_regime_without_length_before_ztws_ensembles(tiny_data):
    x, y = tiny_data
    model = methods.ztw(make_tiny_model(num_exits=2))
    model.compile(optimizer="adam")
    before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError,
                       match=r"ztw_regime\(regime, epochs=\.\.\.\)"):
        model.fit(x, y, epochs=2, callbacks=[methods.ztw_regime(Joint())],
                  verbose=0)
    assert all(np.array_equal(b, np.array(w))
               for b, w in zip(before, model.weights))
