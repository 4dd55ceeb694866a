"""The joint regime and per-exit weight schemes."""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.regimes import exit_weights


def test_weight_schemes():
    np.testing.assert_allclose(exit_weights("uniform", 4), [1, 1, 1, 1])
    # "Strategies at a glance", Alg. 1 line 11: w_n = c·n/Σk with c = 1.
    linear = exit_weights("linear", 4)
    np.testing.assert_allclose(linear, np.arange(1, 5) / 10, rtol=1e-6)
    np.testing.assert_allclose(exit_weights("linear", 4, scale=4).mean(), 1,
                               rtol=1e-6)
    np.testing.assert_allclose(exit_weights("to_final", 3), [0.3, 0.65, 1])
    han = exit_weights("han", 5)
    np.testing.assert_allclose([han[0], han[-1], han.mean()], [0.6, 1.4, 1],
                               rtol=1e-6)
    np.testing.assert_allclose(exit_weights([1, 0, 2], 3), [1, 0, 2])


@pytest.mark.parametrize("bad", ["squared", [1, 2], [1, -1, 1], [0, 0, 0],
                                 [1, float("nan"), 1]])
def test_bad_weights(bad):
    with pytest.raises(ValueError, match="weights"):
        exit_weights(bad, 3)


class _Probe(keras.callbacks.Callback):
    """Records exit weights and learning rate while training runs."""

    def on_epoch_end(self, epoch, logs=None):
        self.weights = self.model.exit_weights.numpy().copy()
        self.learning_rate = float(self.model.optimizer.learning_rate)


def test_joint_assigns_the_weights_then_gives_them_back(model_factory,
                                                        tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    probe = _Probe()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[regimes.Joint("to_final", reduction="sum",
                                       verbose=False), probe])
    np.testing.assert_allclose(probe.weights, [0.3, 0.65, 1.0])
    np.testing.assert_allclose(model.exit_weights.numpy(), [1, 1, 1])


def test_joint_learning_rate_only_while_it_runs(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    probe = _Probe()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[regimes.Joint(learning_rate=0.01, verbose=False),
                         probe])
    assert probe.learning_rate == pytest.approx(0.01)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.5)


def test_regime_prints_its_phase(model_factory, tiny_data, capsys):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[regimes.Joint(verbose=True)])
    assert "phase 1/1 'joint'" in capsys.readouterr().out


def test_regime_cannot_be_reused_across_models(model_factory, tiny_data):
    x, y = tiny_data
    regime = regimes.Joint(verbose=False)
    first, second = model_factory(), model_factory()
    for m in (first, second):
        m.compile(optimizer="sgd")
    first.fit(x, y, epochs=1, verbose=0, callbacks=[regime])
    with pytest.raises(ValueError, match="already bound to model"):
        second.fit(x, y, epochs=1, verbose=0, callbacks=[regime])


def test_regime_needs_a_multi_exit_model(tiny_data):
    x, y = tiny_data
    plain = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Flatten(), keras.layers.Dense(4)])
    plain.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="MultiExitModel"):
        plain.fit(x, y, epochs=1, verbose=0, callbacks=[regimes.Joint()])


def test_weights_of_wrong_length_fail_at_train_begin(model_factory,
                                                     tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="3 finite non-negative numbers"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint([1.0, 2.0], verbose=False)])


def test_unknown_regime_name():
    with pytest.raises(ValueError, match=r"Unknown regime 'jiont'.*'joint'"):
        regimes.get_regime("jiont")


def test_phase_validation():
    with pytest.raises(ValueError, match="epochs"):
        regimes.Phase("p", epochs=0)
    with pytest.raises(ValueError, match="every phase but the last"):
        regimes.Regime([regimes.Phase("a"), regimes.Phase("b", 2)])


@pytest.mark.parametrize("kwargs", [
    {"weights": "uniform", "scale": 2.0},
    {"weights": [1, 2, 3], "scale": 2.0},
    {"weights": "linear", "schedule": "sdn", "scale": 2.0},
    {"weights": "linear", "scale": 0.0},
    {"weights": "linear", "scale": True},
])
def test_scale_is_c_of_the_linear_weights_only(kwargs):
    with pytest.raises(ValueError, match="scale"):
        regimes.Joint(**kwargs)


def test_joint_scale_sets_c_of_algorithm_1(model_factory, tiny_data):
    """docs/regimes.md: `scale=` changes Alg. 1's c; the loss is the
    paper's sum (line 12), with no `reduction` given."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    probe = _Probe()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0,
              callbacks=[regimes.Joint("linear", scale=3.0, verbose=False),
                         probe])
    np.testing.assert_allclose(probe.weights, [0.5, 1.0, 1.5], rtol=1e-6)
