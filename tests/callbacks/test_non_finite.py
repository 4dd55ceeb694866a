"""StopOnNonFinite names the exit and term that went NaN."""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.callbacks import NonFiniteLossError
from keras_eexit.callbacks import StopOnNonFinite


def test_nan_labels_stop_with_the_exits_named(model_factory, tiny_data):
    x, y = tiny_data
    soft = keras.utils.to_categorical(y, 4)
    soft[3] = np.nan  # (a ReLU can swallow NaN inputs; labels cannot)
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(NonFiniteLossError) as error:
        model.fit(x, soft, batch_size=8, epochs=2, verbose=0, shuffle=False,
                  callbacks=[StopOnNonFinite("runs/x/backup")])
    message = str(error.value)
    assert "epoch 1, batch 0" in message
    assert "exit_1_loss (cross-entropy of exit_1)" in message
    assert "runs/x/backup" in message


def test_exploding_term_is_named(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(1e30))
    regime = regimes.Distillation(mode="joint", temperature=1.0,
                                  verbose=False)
    with pytest.raises(NonFiniteLossError, match="distillation_loss"):
        model.fit(x, y, batch_size=4, epochs=5, verbose=0,
                  callbacks=[regime, StopOnNonFinite()])


def test_finite_training_is_untouched(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, epochs=2, verbose=0,
                        callbacks=[StopOnNonFinite()])
    assert len(history.epoch) == 2
