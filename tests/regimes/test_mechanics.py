"""Regime mechanics: early-stopping phases, learning rates, bad input."""

import warnings

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.regimes import Phase
from keras_eexit.regimes import Regime


def test_monitored_phase_ends_on_plateau_and_last_phase_ends_fit(
        model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    regime = Regime([
        # No change counts as an improvement: the phase stalls after epoch 1.
        Phase("stall", epochs=10, monitor="val_loss", patience=2,
              min_delta=1e9, learning_rate=1e-3),
        Phase("train", epochs=2, learning_rate=0.1),
    ], verbose=False)
    assert regime.epochs is None
    history = model.fit(x, y, validation_data=(x, y), epochs=50, verbose=0,
                        callbacks=[regime])
    assert history.history["phase"] == [0, 0, 0, 1, 1]
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)


def test_restore_best_weights_of_a_phase(model_factory, tiny_data,
                                         recorder):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(2.0))  # noisy on purpose
    regime = Regime([Phase("noisy", epochs=6, monitor="val_loss",
                           patience=6, restore_best=True)], verbose=False)
    history = model.fit(x, y, validation_data=(x[:8], y[:8]), epochs=6,
                        batch_size=4, verbose=0,
                        callbacks=[regime, recorder])
    best = int(np.argmin(history.history["val_loss"]))
    segments, heads = recorder.snapshots[best]
    for layer, values in zip(model.segments + model.heads,
                             segments + heads):
        for w, v in zip(layer.weights, values):
            np.testing.assert_array_equal(np.array(w), v)


def test_monitor_missing_from_logs(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = Regime([Phase("p", epochs=3, monitor="val_exit_3_accuracy")])
    with pytest.raises(ValueError, match="not in the logs"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[regime])


def test_fit_shorter_than_regime_warns(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match="pass epochs=5"):
        model.fit(x, y, epochs=2, verbose=0,
                  callbacks=[regimes.TwoStage(2, 3, verbose=False)])


def test_phase_references_missing_exit(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = Regime([Phase("p", epochs=1, train_heads=[1, 5])])
    with pytest.raises(ValueError, match=r"references exit 5.*valid: 1\.\.3"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])


@pytest.mark.parametrize("make,match", [
    (lambda: regimes.TwoStage(0, 2), "backbone_epochs"),
    (lambda: regimes.Mixed(2, -1), "joint_epochs"),
    (lambda: regimes.BranchWise(0), "epochs_per_exit"),
    (lambda: regimes.SequentialRegime(1, warmup_epochs=-1), "warmup_epochs"),
    (lambda: regimes.Distillation(temperature=0, backbone_epochs=1),
     "temperature"),
    (lambda: regimes.Distillation(alpha=1.5, backbone_epochs=1), "alpha"),
    (lambda: regimes.Distillation(alpha=-0.1, mode="joint"), "alpha"),
    (lambda: regimes.TwoStage(1, 1, heads="all"), "heads"),
    (lambda: Phase("p", epochs=0), "epochs"),
    (lambda: Phase("p", 1, train_heads=[0]), "train_heads"),
    (lambda: Phase("p", 1, cache_features=True), "cache_features"),
    (lambda: Phase("p", 1, restore_best=True), "restore_best"),
    (lambda: Regime([Phase("a"), Phase("b", 1)]), "every phase but"),
    (lambda: regimes.get_regime("mixed", backbone_epochs=1, joint_epoch=1),
     "Valid parameters"),
])
def test_bad_regime_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_phase_learning_rate_needs_a_float_learning_rate(model_factory,
                                                         tiny_data):
    x, y = tiny_data
    model = model_factory()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(optimizer=keras.optimizers.SGD(schedule))
    with pytest.raises(ValueError, match="schedule"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint(learning_rate=0.01)])


def test_two_regimes_in_one_fit(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="compose them"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[regimes.Joint(), regimes.Mixed(1, 1)])


def test_regime_state_is_not_saved_with_the_model(model_factory, tiny_data,
                                                  tmp_path):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[regimes.Distillation(backbone_epochs=1,
                                              distill_epochs=1,
                                              verbose=False)])
    count = model.count_params()
    assert count == model_factory().count_params()
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
