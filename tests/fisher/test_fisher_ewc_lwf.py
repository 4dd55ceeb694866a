"""EWC's empirical Fisher, the EWC and LwF terms, and SequentialRegime
with them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import regimes
from keras_eexit.chain import run_to_exit
from keras_eexit.fisher import EWCPenalty
from keras_eexit.fisher import FisherStore
from keras_eexit.fisher import empirical_fisher
from keras_eexit.fisher import fisher_variables
from keras_eexit.losses import LwFPenalty


def _loop_fisher(model, x, y, exit):
    variables = fisher_variables(model, exit)
    total = [np.zeros(v.shape) for v in variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            log_p = tf.nn.log_softmax(run_to_exit(model, x[i:i + 1],
                                                  exit - 1, False))
            value = log_p[0, int(y[i])]
        for t, g in zip(total, tape.gradient(value, variables)):
            t += g.numpy() ** 2
    return {v.path: t / len(x) for v, t in zip(variables, total)}


@pytest.mark.parametrize("exit", [1, 3])
def test_empirical_fisher_equals_per_sample_loop(model_factory, tiny_data,
                                                 exit):
    x, y = tiny_data
    model = model_factory()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    fisher = empirical_fisher(model, ds, exit, num_samples=25)
    expected = _loop_fisher(model, x[:25], y[:25], exit)
    assert set(fisher) == set(expected)
    assert len(fisher) == 2 * 2 * exit  # conv k,b + bn γ,β per segment
    for path, value in expected.items():
        np.testing.assert_allclose(fisher[path], value, atol=1e-5,
                                   rtol=1e-4)


def test_per_batch_fisher_is_an_approximation(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    exact = empirical_fisher(model, ds, 2)
    approx = empirical_fisher(model, ds, 2, per_batch=True)
    assert set(exact) == set(approx)
    assert any(not np.allclose(exact[p], approx[p]) for p in exact)


def test_fisher_bad_input(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(ValueError, match=r"exit numbers in 1\.\.3"):
        empirical_fisher(model, ds, 4)
    with pytest.raises(ValueError, match=r"exit numbers in 1\.\.3"):
        empirical_fisher(model, ds, 0)
    with pytest.raises(ValueError, match="gave none"):
        empirical_fisher(model, ds.take(0), 1)
    with pytest.raises(ValueError, match="num_samples"):
        empirical_fisher(model, ds, 1, num_samples=0)


def test_ewc_penalty_equals_numpy(model_factory):
    model = model_factory()
    model.build((None, 8, 8, 1))
    rng = np.random.default_rng(0)
    store = FisherStore(model)
    protected = [v for s in model.segments for v in s.trainable_weights]
    assert [v.path for v in store.protected] == [v.path for v in protected]
    assert not set(map(id, protected)) & set(map(id, store.weights))
    fisher = [rng.random(v.shape).astype("float32") for v in protected]
    anchors = [np.array(v) + rng.normal(size=v.shape).astype("float32")
               for v in protected]
    for f, a, var_f, var_a in zip(fisher, anchors, store.fisher,
                                  store.anchors):
        var_f.assign(f)
        var_a.assign(a)
    value, _ = EWCPenalty(3.0, store=store)(model, None, None, None)
    expected = 3.0 * sum(
        (f * (np.array(v) - a) ** 2).sum()
        for v, f, a in zip(protected, fisher, anchors))
    assert float(value) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="Fisher store"):
        EWCPenalty(1.0)(model, None, None, None)


def test_sequential_ewc_freezes_right_stages_and_fisher_passes(
        model_factory, tiny_data, recorder):
    x, y = tiny_data
    model = model_factory()
    regime = regimes.SequentialRegime(1, warmup_epochs=1, regularizer="ewc",
                                      lam=10.0)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    fishers = {}

    class Peek(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            store = self.model.regime_state.fisher_store
            fishers[epoch] = [np.array(f) for f in store.fisher]

    history = model.fit(x, y, epochs=regime.epochs_for(model), batch_size=8,
                        verbose=0, callbacks=[regime, recorder, Peek()])
    names = [p.name for p in regime.phases]
    assert names == ["backbone", "stage_1", "fisher_1", "stage_2",
                     "fisher_2", "stage_3"]
    assert history.history["phase"] == [0, 1, 2, 3, 4, 5]
    assert recorder.changed == [({1, 2, 3}, {3}), ({1}, {1}), (set(), set()),
                                ({1, 2}, {2}), (set(), set()),
                                ({1, 2, 3}, {3})]
    # No Fisher before exit 1's pass; exit ν's covers segments 1..ν only;
    # the Fisher only grows.
    assert not any(f.any() for f in fishers[1])
    per_segment = 4  # conv kernel, bias, BN gamma, beta
    assert all(f.sum() > 0 for f in fishers[2][:per_segment])
    assert not any(f.any() for f in fishers[2][per_segment:])
    assert all(f.sum() > 0 for f in fishers[4][:2 * per_segment])
    for before, after in zip(fishers[2], fishers[4]):
        assert np.all(after >= before)
    assert max(history.history["ewc_loss"]) > 0


def test_fisher_pass_equals_empirical_fisher(model_factory, tiny_data):
    """The in-fit pass computes the same Fisher as the public function."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    regime = regimes.Regime([
        regimes.Phase("noop", 1, train_segments="none", train_heads=[1],
                      weights=[1, 0, 0]),
        regimes.Phase("fisher", 1, train_segments="none", train_heads="none",
                      fisher_exit=2, fisher_samples=20),
    ], verbose=False)
    captured = {}

    class Peek(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                s = self.model.regime_state.fisher_store
                captured.update({v.path: np.array(f) for v, f in
                                 zip(s.protected, s.fisher)})

    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0,
              callbacks=[regime, Peek()])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    expected = empirical_fisher(model, ds, 2, num_samples=20)
    for path, value in captured.items():
        if path in expected:
            np.testing.assert_allclose(value, expected[path], rtol=1e-4,
                                       atol=1e-6)
        else:
            assert not value.any()  # segment 3: not protected for exit 2


def test_lwf_is_zero_at_stage_start_and_grows(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    regime = regimes.SequentialRegime(
        2, warmup_epochs=1, objective="current", regularizer="lwf", rho=1.0,
        verbose=False)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    values = {}

    class Probe(keras.callbacks.Callback):
        def _lwf(self):
            term = LwFPenalty(1.0, [1])
            out = self.model(x, training=False)
            return float(term(self.model, x, None, out)[0])

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:  # first epoch of stage 2 (LwF on exit 1)
                values["start"] = self._lwf()

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 4:
                values["end"] = self._lwf()

    history = model.fit(x, y, epochs=regime.epochs_for(model), batch_size=8,
                        verbose=0, callbacks=[regime, Probe()])
    assert history.history["phase"] == [0, 1, 1, 2, 2, 3, 3]
    assert values["start"] == pytest.approx(0.0, abs=1e-6)
    assert values["end"] > 1e-4
    assert max(history.history["lwf_loss"]) > 0


def test_lwf_trains_earlier_heads(model_factory, tiny_data, recorder):
    x, y = tiny_data
    model = model_factory()
    regime = regimes.SequentialRegime(1, warmup_epochs=1, objective="current",
                                      regularizer="lwf", verbose=False)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(x, y, epochs=3, batch_size=8, verbose=0,
              callbacks=[regime, recorder])
    assert recorder.changed == [({1, 2, 3}, {3}), ({1}, {1}),
                                ({1, 2}, {1, 2})]


@pytest.mark.parametrize("kwargs,match", [
    ({"regularizer": "ewc", "lam": -1.0}, "lam"),
    ({"regularizer": "lwf", "rho": -0.5}, "rho"),
    ({"regularizer": "l2"}, "Unknown regularizer"),
    ({"fisher_samples": 0}, "fisher_samples"),
])
def test_sequential_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regimes.SequentialRegime(1, **kwargs)


def test_ewc_needs_shared_parameters(model_factory, tiny_data):
    x, y = tiny_data
    model = regimes.Separate.prepare_model(model_factory())
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="share none"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            regimes.SequentialRegime(1, regularizer="ewc")])


def test_fisher_phase_for_missing_exit(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = regimes.Regime([regimes.Phase("f", 1, train_segments="none",
                                           train_heads="none",
                                           fisher_exit=4)])
    with pytest.raises(ValueError, match="Fisher of exit 4"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])


def _mlp_model():
    import keras_eexit

    backbone = keras.Sequential(
        [keras.Input((12,)), keras.layers.Dense(8, activation="relu",
                                                name="d0"),
         keras.layers.Dense(8, activation="tanh", name="d1"),
         keras.layers.Dense(8, name="d2")])
    return keras_eexit.MultiExitModel.from_backbone(backbone, ["d0", "d1"],
                                                    num_classes=3)


def _mixed_model():
    """Conv1D without bias + BN, depthwise conv (vectorised fallback)."""
    from keras_eexit import MultiExitModel

    seg1 = keras.Sequential([
        keras.Input((10, 6, 2)),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.DepthwiseConv2D(3, padding="valid"),
    ])
    seg2 = keras.Sequential([keras.Input((3, 1, 4)),
                             keras.layers.Reshape((3, 4)),
                             keras.layers.Conv1D(5, 2, dilation_rate=2)])
    heads = [keras.Sequential([keras.layers.Flatten(),
                               keras.layers.Dense(3)], name=f"exit_{k}")
             for k in (1, 2)]
    return MultiExitModel([seg1, seg2], heads)


@pytest.mark.parametrize("make,shape", [(_mlp_model, (12,)),
                                        (_mixed_model, (10, 6, 2))])
def test_fast_fisher_matches_loop_on_other_layers(make, shape):
    keras.utils.set_random_seed(3)
    model = make()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20,) + shape).astype("float32")
    y = rng.integers(0, 3, size=20)
    final = model.num_exits
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(7)
    fisher = empirical_fisher(model, ds, final)
    expected = _loop_fisher(model, x, y, final)
    for path, value in expected.items():
        np.testing.assert_allclose(fisher[path], value, atol=1e-5,
                                   rtol=1e-4, err_msg=path)


def test_fast_path_covers_conv_dense_bias_and_batchnorm(model_factory):
    from keras_eexit.fisher import per_sample

    model = model_factory()
    variables = fisher_variables(model, 3)
    interceptor = per_sample._Interceptor(variables)
    with interceptor.active():
        run_to_exit(model, tf.zeros((2, 8, 8, 1)), 2, False)
    assert set(interceptor.uses) == {id(v) for v in variables}
    assert set(interceptor.uses.values()) == {1}
