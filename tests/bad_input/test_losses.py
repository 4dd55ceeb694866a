"""Bad input to losses and objective terms: one clear message each."""

import keras
import numpy as np
import pytest

from keras_eexit import losses
from keras_eexit import regimes
from keras_eexit.fisher import AccumulateFisher
from keras_eexit.fisher import EWCPenalty


@pytest.mark.parametrize("loss", ["mse", "mean_absolute_error", "hinge"])
def test_compile_with_a_loss_that_cannot_take_logits(loss, tiny_model):
    with pytest.raises(ValueError) as info:
        tiny_model.compile(optimizer="sgd", loss=loss)
    message = str(info.value)
    assert f"Received: loss={loss!r}" in message
    for accepted in ("None", "'sparse_categorical_crossentropy'",
                     "keras.losses.Loss", "function (y_true, logits)"):
        assert accepted in message


def test_compile_with_a_loss_instance_still_trains(tiny_model, tiny_data):
    tiny_model.compile(optimizer="sgd",
                       loss=keras.losses.SparseCategoricalCrossentropy(
                           from_logits=True))
    x, y = tiny_data
    history = tiny_model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("make,argument", [
    (lambda: regimes.Distillation(alpha=True, backbone_epochs=1), "alpha"),
    (lambda: regimes.Distillation(alpha=1.5, backbone_epochs=1), "alpha"),
    (lambda: regimes.Distillation(temperature=float("nan"),
                                  backbone_epochs=1), "temperature"),
    (lambda: losses.ExitDistillation(students=[0]), "exits"),
    (lambda: losses.ExitDistillation(students=[1], weight=-1.0), "weight"),
    (lambda: losses.LwFPenalty(rho=True, exits=[1]), "rho"),
    (lambda: EWCPenalty(lam=float("inf")), "lam"),
    (lambda: losses.DampingLoss(lam=-0.1), "lam"),
    (lambda: losses.ExitDampingLoss(losses.DampingLoss(), alpha=0.0),
     "alpha"),
    (lambda: losses.SelectiveCrossEntropy(label_smoothing=1.0),
     "label_smoothing"),
    (lambda: AccumulateFisher(None, exit=0), "exit"),
])
def test_term_arguments(make, argument):
    with pytest.raises(ValueError,
                       match=f"Invalid value received for argument "
                             f"`{argument}`"):
        make()
