"""Mixed precision and XLA for the regimes; one trace per phase."""

import keras
import numpy as np
import pytest

import keras_eexit
from keras_eexit import regimes as R
from keras_eexit.models.multi_exit_model import MultiExitModel

REGIMES = {
    "joint": lambda: R.Joint(verbose=False),
    "two_stage": lambda: R.TwoStage(2, 2, verbose=False),
    "sequential_ewc": lambda: R.SequentialRegime(
        1, warmup_epochs=2, objective="current", regularizer="ewc",
        verbose=False),
    "sequential_lwf": lambda: R.SequentialRegime(
        1, warmup_epochs=2, objective="current", regularizer="lwf",
        verbose=False),
    "distillation": lambda: R.Distillation(backbone_epochs=2,
                                           distill_epochs=1, verbose=False),
}


@pytest.fixture(scope="module")
def digits():
    data = keras_eexit.data.load_arrays("digits")
    return data["x_train"][:384], data["y_train"][:384]


BFLOAT16_IN_CI = {"joint", "two_stage"}
"""bfloat16 differs from float16 in its dtype, not in the regime's code
path (no loss scaling): the other regimes run it with `-m slow`."""

FLOAT16_SLOW = {"sequential_lwf"}
"""float16 with `-m slow` only: the sequential schedule runs in CI with
EWC (its Fisher pass under loss scaling too), and a penalty against a
teacher's outputs with distillation."""


@pytest.mark.large
@pytest.mark.parametrize("policy,name", [
    pytest.param(policy, name, marks=[pytest.mark.slow] * (
        (policy == "mixed_bfloat16" and name not in BFLOAT16_IN_CI)
        or (policy == "mixed_float16" and name in FLOAT16_SLOW)))
    for name in sorted(REGIMES)
    for policy in ("mixed_float16", "mixed_bfloat16")])
def test_mixed_precision(policy, name, digits):
    x, y = digits
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = keras_eexit.models.get_model("small_cnn")
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        regime = REGIMES[name]()
        history = model.fit(x, y, batch_size=64, verbose=0,
                            epochs=regime.epochs_for(model) or 3,
                            callbacks=[regime]).history
        out = model(x[:2])
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    losses = history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[1] < losses[0]  # the first phase learns
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32"
               for v in out.values())
    assert all(v.dtype == "float32" for v in model.trainable_weights)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer,
                          keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("name,traces", [
    # Distillation (Alg. 5): backbone, distill_1, distill_2.
    ("joint", 1), ("distillation", 3),
    # backbone, stage_1, fisher_1, stage_2, fisher_2, stage_3.
    ("sequential_ewc", 6),
    # backbone + the cached head phase's count and fill steps (2 epochs).
    ("two_stage", 3),
])
def test_jit_compile_traces_once_per_phase(name, traces, digits,
                                           monkeypatch):
    x, y = digits
    count = []
    original = MultiExitModel.train_step

    def counting(self, data):
        count.append(1)
        return original(self, data)

    monkeypatch.setattr(MultiExitModel, "train_step", counting)
    keras.utils.set_random_seed(0)
    model = keras_eexit.models.get_model("small_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    regime = REGIMES[name]()
    history = model.fit(x, y, batch_size=64, verbose=0,
                        epochs=regime.epochs_for(model) or 3,
                        callbacks=[regime]).history
    assert np.all(np.isfinite(history["loss"]))
    assert len(count) == traces
