"""ZTW trained under regimes: the ensembles learn only in their phase."""

import keras
import numpy as np
import pytest

from keras_eexit.methods import ztw
from keras_eexit.methods import ztw_regime
from keras_eexit.methods.ztw import ensemble_heads
from keras_eexit.regimes import Joint
from keras_eexit.regimes import Phase
from keras_eexit.regimes import TwoStage
from tests.conftest import make_tiny_model


class Snapshots(keras.callbacks.Callback):
    """Every model weight (by path) at the start and end of each epoch."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = [], []

    def _values(self):
        return {v.path: np.array(v) for v in self.model.weights}

    def on_epoch_begin(self, epoch, logs=None):
        self.begin.append(self._values())

    def on_epoch_end(self, epoch, logs=None):
        self.end.append(self._values())

    def changed(self, epoch):
        b, e = self.begin[epoch], self.end[epoch]
        return {p for p in b if not np.array_equal(b[p], e[p])}


def test_ensembles_train_only_in_their_phase(tiny_data):
    x, y = tiny_data
    model = ztw(make_tiny_model(num_exits=3))
    model.compile(optimizer="adam", metrics=["accuracy"])
    regime = ztw_regime(TwoStage(1, 1), ensemble_epochs=2,
                        learning_rate=0.05)
    assert [p.name for p in regime.phases_for(3)] == [
        "backbone", "heads", "ztw_ensemble"]
    assert regime.epochs_for(model) == 4
    snapshots = Snapshots()
    history = model.fit(x, y, batch_size=8, callbacks=[regime, snapshots],
                        verbose=0)
    assert history.history["phase"] == [0, 1, 2, 2]
    ensemble = {v.path for h in ensemble_heads(model)
                for v in h.ensemble_variables()}
    ready = {h.ensemble_ready.path for h in ensemble_heads(model)}
    for epoch in (0, 1):  # backbone, heads: the ensembles never move
        changed = snapshots.changed(epoch)
        assert changed and not changed & (ensemble | ready)
    assert all(snapshots.end[1][p] == 0 for p in ready)
    for epoch in (2, 3):  # the ensemble phase: the ensembles only
        assert snapshots.changed(epoch) - ready == ensemble
    assert all(float(h.ensemble_ready) == 1.0 for h in ensemble_heads(model))
    # After fit the model is plain again: a later fit trains the network
    # (ensembles stay frozen).
    assert model.train_step_plan() == []
    assert all(layer.trainable for layer in model.heads + model.segments)


def test_joint_needs_a_length_for_the_ensemble_phase(tiny_data):
    with pytest.raises(ValueError, match="epochs="):
        ztw_regime(Joint()).phases_for(3)
    phases = ztw_regime(Joint(), epochs=5).phases_for(3)
    assert [(p.name, p.epochs) for p in phases] == [
        ("joint", 5), ("ztw_ensemble", 2)]


def test_ensemble_phase_needs_ztw_heads(tiny_data):
    x, y = tiny_data
    model = make_tiny_model(num_exits=2)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="ZTW ensembles"):
        model.fit(x, y, callbacks=[ztw_regime(TwoStage(1, 1))], verbose=0)


def test_phase_train_step_argument():
    with pytest.raises(ValueError, match="train_step"):
        Phase("p", 1, train_step=3)
    with pytest.raises(ValueError, match="train_step"):
        Phase("p", 1, train_segments="none", cache_features=True,
              train_step=lambda model, phase: None)
