"""The damping paper's λ (sec. 5) and its Table 5 analysis."""

import keras
import numpy as np
import pytest
from scipy.special import softmax

from keras_eexit import MultiExitModel
from keras_eexit import evaluation
from keras_eexit import losses
from keras_eexit import regimes
from keras_eexit.layers import DampingHead


def test_lambda_defaults_are_the_papers():
    assert losses.DampingLoss().lam == 0.005
    assert losses.PowerSqrtDampingLoss().lam == 0.005
    assert regimes.Joint(loss="damping")._term.loss.lam == 0.005
    assert losses.DAMPING_LAMBDAS == {"cifar100": 0.005, "cifar10": 0.075,
                                      "imagenet": 0.01}
    assert losses.DampingLoss("cifar10").lam == 0.075
    joint = regimes.Joint(loss="power_sqrt", lam="imagenet")
    assert joint._term.loss.lam == 0.01
    assert losses.DampingLoss.from_config(
        losses.DampingLoss("cifar10").get_config()).lam == 0.075
    with pytest.raises(ValueError, match="argument `lam`.*'cifar10'"):
        losses.DampingLoss("cifar")


def test_damping_losses_sum_over_exits_by_default():
    joint = regimes.Joint(loss="damping")
    np.testing.assert_allclose(
        losses.exit_weights(joint.phases_for(3)[0].weights, 3), [1, 1, 1])
    assert joint.reduction == "sum"
    assert regimes.Joint().reduction == "mean"


def _damping_model(seed=0):
    keras.utils.set_random_seed(seed)
    segments = [keras.Sequential([keras.Input((6,)),
                                  keras.layers.Dense(8, activation="relu")]),
                keras.Sequential([keras.Input((8,)),
                                  keras.layers.Dense(8, activation="relu")])]
    heads = [DampingHead(3, name=f"exit_{k}") for k in (1, 2)]
    return MultiExitModel(segments, heads)


def test_damping_outputs_are_the_mean_post_softmax_damping_value():
    model = _damping_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 6)).astype("float32")
    y = rng.integers(0, 3, size=20)
    report = evaluation.damping_outputs(model, (x, y), batch_size=7)
    out = model(x, training=False)
    for k, name in enumerate(model.exit_names):
        probs = softmax(np.array(out[name], "float64"), -1)
        assert report.damping[k] == pytest.approx(probs[:, -1].mean(),
                                                   rel=1e-5)
        assert report.accuracy[k] == pytest.approx(
            (probs[:, :-1].argmax(-1) == y).mean())
    assert report.table()[0].endswith(f"({report.damping[0]:.3f})")
    one_hot = np.eye(3)[y]
    again = evaluation.damping_outputs(model, (x, one_hot))
    np.testing.assert_allclose(again.damping, report.damping, rtol=1e-6)


def test_damping_outputs_need_damping_heads(tiny_model, tiny_data):
    with pytest.raises(ValueError, match="needs a damping unit"):
        evaluation.damping_outputs(tiny_model, tiny_data)
