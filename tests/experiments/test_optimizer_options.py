"""The optimiser options the recipes need: SGD / AdamW, weight decay,
clipnorm, multi-step schedules; the defaults stay Adam at a constant rate."""

import keras
import numpy as np
import pytest

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


def test_decaying_schedules_refuse_per_phase_rates():
    regime = regimes.regime_for_budget("two_stage", 4, 3,
                                       backbone_learning_rate=0.1)
    for schedule, extra in (("cosine", {}),
                            ("multistep", {"milestones": (2,)})):
        config = ExperimentConfig(schedule=schedule, **extra)
        with pytest.raises(ValueError, match=f"--schedule {schedule}"):
            build.learning_rate(config, regime, 3, 10, 4)


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
