"""Phase options added for the papers' procedures (mechanics)."""

import keras
import numpy as np
import pytest

from keras_eexit.regimes import Phase
from keras_eexit.regimes import Regime


def _assert_weights(model, snapshot):
    """The model's segments and heads hold the recorded values."""
    segments, heads = snapshot
    for layer, values in zip(model.segments + model.heads,
                             segments + heads):
        for w, v in zip(layer.weights, values):
            np.testing.assert_array_equal(np.array(w), v)


class _Inject(keras.callbacks.Callback):
    """Writes scripted metric values into the epoch logs (runs first)."""

    def __init__(self, series):
        super().__init__()
        self.series = series

    def on_epoch_end(self, epoch, logs=None):
        for name, values in self.series.items():
            logs[name] = values[epoch]


@pytest.mark.large
def test_several_monitors_end_when_every_one_stalls(model_factory,
                                                    tiny_data, recorder):
    x, y = tiny_data
    # min mode: "a" improves at epochs 0-1, "b" at epochs 0-2; patience 2
    # ends the phase at epoch 4, when both have stalled twice. The best
    # weights are those of epoch 2, the last in which any improved.
    series = {"a": [1.0, 0.5, 0.6, 0.7, 0.8, 0.1, 0.1],
              "b": [1.0, 0.9, 0.8, 0.85, 0.9, 0.1, 0.1]}
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    regime = Regime([Phase("p", 7, monitor=["a", "b"], patience=2,
                           restore_best=True),
                     Phase("after", 1, train_segments="none",
                           train_heads="none")], verbose=False)
    history = model.fit(x, y, epochs=7, batch_size=16, verbose=0,
                        callbacks=[_Inject(series), regime, recorder])
    assert history.history["phase"] == [0, 0, 0, 0, 0, 1]
    _assert_weights(model, recorder.snapshots[2])


def test_one_monitor_keeps_its_old_meaning(model_factory, tiny_data):
    x, y = tiny_data
    series = {"a": [1.0, 0.5, 0.6, 0.7, 0.1]}
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = Regime([Phase("p", 5, monitor="a", patience=2),
                     Phase("q", 1)], verbose=False)
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0,
                        callbacks=[_Inject(series), regime])
    assert history.history["phase"] == [0, 0, 0, 0, 1]


def test_monitor_must_be_names():
    with pytest.raises(ValueError, match="argument `monitor`"):
        Phase("p", 2, monitor=[])
    with pytest.raises(ValueError, match="argument `monitor`"):
        Phase("p", 2, monitor=["a", 3])
    assert Phase("p", 2, monitor=["a", "b"]).monitors == ("a", "b")


def test_reference_exit_is_kept_when_the_phase_ends(model_factory,
                                                    tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                seen["end_of_phase"] = np.array(
                    self.model(x, training=False)["exit_2"])
            if epoch == 3:
                seen["reference"] = np.array(
                    self.model.regime_state.reference_outputs(2, x))
                seen["now"] = np.array(
                    self.model(x, training=False)["exit_2"])

    regime = Regime([Phase("a", 2, reference_exit=2), Phase("b", 2)],
                    verbose=False)
    model.fit(x, y, epochs=4, batch_size=16, verbose=0,
              callbacks=[regime, Probe()])
    np.testing.assert_allclose(seen["reference"], seen["end_of_phase"],
                               atol=1e-5)
    assert not np.allclose(seen["reference"], seen["now"], atol=1e-4)
    with pytest.raises(ValueError, match="reference of exit 4"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            Regime([Phase("a", 1, reference_exit=4)], verbose=False)])


def test_reading_a_reference_nobody_keeps_is_a_clear_error(model_factory,
                                                           tiny_data):
    from keras_eexit.losses import LwFPenalty

    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = Regime([Phase("a", 1, terms=(LwFPenalty(1.0, [1]),))],
                    verbose=False)
    with pytest.raises(ValueError, match=r"Phase\(reference_exit=1\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])


def test_reset_optimizer_starts_a_phase_with_a_fresh_state(model_factory,
                                                           tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                optimizer = self.model.optimizer
                seen["iterations"] = int(optimizer.iterations)
                seen["slots"] = [np.array(v) for v in optimizer.variables
                                 if "momentum" in v.path
                                 or "velocity" in v.path]
                seen["rate"] = float(optimizer.learning_rate)

    regime = Regime([Phase("a", 1), Phase("b", 1, reset_optimizer=True,
                                          learning_rate=0.01)],
                    verbose=False)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[regime, Probe()])
    assert seen["iterations"] == 0
    assert seen["slots"] and not any(s.any() for s in seen["slots"])
    assert seen["rate"] == pytest.approx(0.01)
    assert int(model.optimizer.iterations) == 2


def test_reset_optimizer_keeps_a_schedule_running(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    schedule = keras.optimizers.schedules.CosineDecay(0.05, 10)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    regime = Regime([Phase("a", 1), Phase("b", 1, reset_optimizer=True)],
                    verbose=False)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[regime])
    assert int(model.optimizer.iterations) == 4  # not restarted
