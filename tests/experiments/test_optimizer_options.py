"""The optimiser options the recipes need: SGD / AdamW, weight decay,
clipnorm, multi-step schedules; the defaults stay Adam at a constant rate."""

import math

import keras
import numpy as np
import pytest

from keras_eexit import experiments
from keras_eexit import regimes
from keras_eexit.experiments import ExperimentConfig
from keras_eexit.experiments import build


def _optimizer(config, regime=None, steps=10, epochs=4):
    regime = regime or regimes.regime_for_budget("joint", epochs, 3)
    rate = build.learning_rate(config, regime, 3, steps, epochs)
    return build.make_optimizer(config, rate)


def test_default_is_adam_at_a_constant_rate():
    config = ExperimentConfig()
    optimizer = _optimizer(config)
    assert type(optimizer) is keras.optimizers.Adam
    assert optimizer.weight_decay is None and optimizer.clipnorm is None
    assert float(optimizer.learning_rate) == pytest.approx(3e-3)
    assert "Adam lr 0.003, seed 0" in config.describe()


def test_sgd_with_momentum_nesterov_decay_and_clipnorm():
    config = ExperimentConfig(optimizer="sgd", learning_rate=0.1,
                              momentum=0.9, nesterov=True,
                              weight_decay=1e-4, clipnorm=1.0)
    optimizer = _optimizer(config)
    assert type(optimizer) is keras.optimizers.SGD
    assert optimizer.momentum == 0.9 and optimizer.nesterov
    assert optimizer.weight_decay == 1e-4 and optimizer.clipnorm == 1.0
    assert ("SGD lr 0.1 (momentum 0.9, Nesterov, weight decay 0.0001, "
            "clipnorm 1)") in config.describe()


def test_adamw_without_weight_decay_has_none():
    # keras.optimizers.AdamW's own default is 0.004: "no weight decay"
    # must not silently become that.
    optimizer = _optimizer(ExperimentConfig(optimizer="adamw"))
    assert type(optimizer) is keras.optimizers.AdamW
    assert optimizer.weight_decay == 0.0


def test_multistep_schedule_multiplies_at_each_milestone():
    config = ExperimentConfig(optimizer="sgd", learning_rate=0.1,
                              schedule="multistep", milestones=(1, 3),
                              decay_factor=0.5)
    regime = regimes.regime_for_budget("joint", 4, 3)
    schedule = build.learning_rate(config, regime, 3, 10, 4)
    assert isinstance(schedule,
                      keras.optimizers.schedules.PiecewiseConstantDecay)
    rates = [float(schedule(step)) for step in (0, 10, 11, 30, 31)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.05, 0.05, 0.025],
                               rtol=1e-6)
    assert ExperimentConfig.from_dict(config.to_dict()) == config


def test_multistep_refuses_per_phase_rates():
    regime = regimes.regime_for_budget("two_stage", 4, 3,
                                       backbone_learning_rate=0.1)
    config = ExperimentConfig(schedule="multistep", milestones=(2,))
    with pytest.raises(ValueError, match="--schedule multistep cannot"):
        build.learning_rate(config, regime, 3, 10, 4)


class _Rates(keras.callbacks.Callback):
    """The learning rate each training batch ran with."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_cosine_decays_each_phase_from_its_own_rate():
    # Kubaty et al.'s D.3/D.4 set-ups: a cosine schedule with a rate
    # searched per phase; each phase starts at its own rate and decays
    # over its own epochs (the authors' CosineAnnealingLR per run).
    config = ExperimentConfig(
        dataset="digits", regime="two_stage", optimizer="sgd",
        regime_params={"backbone_epochs": 2, "heads_epochs": 1,
                       "backbone_learning_rate": 0.2,
                       "heads_learning_rate": 0.05},
        schedule="cosine", learning_rate=0.2, epochs=3, batch_size=512)
    rates = _Rates()
    experiments.run(config, verbose=0, callbacks=[rates])
    n = len(rates.rates) // 3  # batches per epoch
    assert n >= 2 and len(rates.rates) == 3 * n
    backbone, heads = rates.rates[:2 * n], rates.rates[2 * n:]

    def cosine(rate, steps):
        return [rate * (1 + math.cos(math.pi * t / (steps - 1))) / 2
                for t in range(steps)]

    np.testing.assert_allclose(backbone, cosine(0.2, 2 * n), atol=1e-7)
    np.testing.assert_allclose(heads, cosine(0.05, n), atol=1e-7)


@pytest.mark.parametrize("changes,argument", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"momentum": 0.9}, "momentum"),
    ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"clipnorm": 0.0}, "clipnorm"),
    ({"milestones": (3,)}, "milestones"),
    ({"schedule": "multistep", "milestones": (3, 2)}, "milestones"),
    ({"augment": "rotate"}, "augment"),
])
def test_bad_optimizer_settings_fail_at_once(changes, argument):
    with pytest.raises(ValueError, match=argument):
        ExperimentConfig(**changes)


def test_phase_cosine_resumes_on_the_same_curve():
    # A run resumed in its second phase (epoch 3, phase started at epoch 2)
    # continues that phase's curve from the regime state alone.
    import types

    from keras_eexit.experiments.phase_schedule import PhaseCosineDecay

    regime = regimes.get_regime("two_stage", backbone_epochs=2,
                                heads_epochs=3, heads_learning_rate=0.05)
    state = types.SimpleNamespace(phase_index=keras.Variable(1),
                                  phase_start=keras.Variable(2))
    optimizer = keras.optimizers.SGD(0.1)
    model = types.SimpleNamespace(regime_state=state, num_exits=3,
                                  optimizer=optimizer)
    schedule = PhaseCosineDecay(regime, 0.1, steps_per_epoch=4, epochs=5)
    schedule.set_model(model)
    schedule.on_epoch_begin(3)
    schedule.on_train_batch_begin(2)
    t, total = 4 + 2, 3 * 4 - 1
    expected = 0.05 * (1 + math.cos(math.pi * t / total)) / 2
    assert float(optimizer.learning_rate) == pytest.approx(expected)
