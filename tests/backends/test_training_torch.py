"""Training on the PyTorch backend: regimes, freezing, resume, EWC, methods.

Runs only under `KERAS_BACKEND=torch`: `test_training_torch_run.py` runs
this module there with TensorFlow made unimportable, so it also shows
that training needs no TensorFlow. The checks of `test_training_jax.py`
hold on PyTorch's eager trainer too (its helpers are shared): a frozen
stage keeps its weights and its optimizer slots bit for bit in every
regime, each phase trains what it names, a failing fit leaves a usable
model, `BackupAndRestore` resumes to the uninterrupted run's weights;
and an update differentiates the trainable variables only.
"""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.compat import optimizer_slots
from keras_eexit.compat import trainable_parameters
from keras_eexit.models import get_model
from keras_eexit.regimes.registry import REGIMES
from keras_eexit.regimes.registry import regime_for_budget
from keras_eexit.utils.variables import to_numpy
from tests.backends.test_training_jax import HYBRIDS
from tests.backends.test_training_jax import _data
from tests.backends.test_training_jax import _expected
from tests.backends.test_training_jax import _model
from tests.conftest import WeightRecorder
from tests.conftest import make_tiny_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="run under KERAS_BACKEND=torch by test_training_torch_run.py")


class SlotRecorder(keras.callbacks.Callback):
    """Per epoch: which segments / heads had an optimizer slot change.

    Place it after the regime: it reads the slots at epoch begin, after a
    phase's optimizer reset."""

    def __init__(self):
        super().__init__()
        self.changed = []

    def _slots(self):
        model = self.model
        return [[[to_numpy(s) for v in trainable_parameters(layer)
                  for s in optimizer_slots(model.optimizer, v).values()]
                 for layer in layers]
                for layers in (model.segments, model.heads)]

    def on_epoch_begin(self, epoch, logs=None):
        self._before = self._slots()

    def on_epoch_end(self, epoch, logs=None):
        after = self._slots()
        self.changed.append(tuple(
            {k + 1 for k, (b, a) in enumerate(zip(before, now))
             if any(not np.array_equal(x, y) for x, y in zip(b, a))}
            for before, now in zip(self._before, after)))


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.slow] * (name in HYBRIDS))
    for name in sorted(set(REGIMES) - {"disjoint"})])
def test_every_regime_trains_exactly_what_each_phase_names(name):
    x, y = _data(32)
    model = make_tiny_model()
    if name == "separate":
        model = regimes.Separate.prepare_model(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    weights, slots = WeightRecorder(), SlotRecorder()
    regime = regime_for_budget(name, 4, model.num_exits)
    epochs = None if regime.epochs_for(model) else 4
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0,
                        shuffle=False, callbacks=[regime, weights, slots])
    expected = _expected(regime, model.num_exits, history.history["phase"])
    for epoch, (moved, kept, (may_s, may_h)) in enumerate(
            zip(weights.changed, slots.changed, expected)):
        # A frozen stage keeps weights, BatchNorm statistics and Adam's
        # slots bit for bit; a Fisher epoch changes nothing.
        for segments, heads in (moved, kept):
            assert segments <= may_s, (name, epoch, segments, may_s)
            assert heads <= may_h, (name, epoch, heads, may_h)
    assert any(s or h for s, h in weights.changed), name
    assert np.all(np.isfinite(history.history["loss"]))


def test_frozen_backbone_keeps_adams_slots_bit_for_bit():
    """Without the regimes' optimizer reset between phases, the backbone
    enters the heads phase with non-zero Adam moments: an update of every
    variable the optimizer knows (zero gradients for the frozen ones)
    would still move them."""
    x, y = _data(32)
    model = _model(keras.optimizers.Adam(1e-2))
    weights, slots = WeightRecorder(), SlotRecorder()
    seen = {}

    class Moments(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            kernel = self.model.segments[0].weights[0]
            seen[epoch] = [to_numpy(s) for s in optimizer_slots(
                self.model.optimizer, kernel).values()]

    model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
              callbacks=[regimes.TwoStage(2, 2, reset_optimizer=False,
                                          verbose=False),
                         weights, slots, Moments()])
    assert weights.changed[0] == ({1, 2, 3}, {3})
    assert all(np.abs(s).max() > 0 for s in seen[1])
    for epoch in (2, 3):
        assert weights.changed[epoch] == (set(), {1, 2})
        assert slots.changed[epoch] == (set(), {1, 2})
    assert all(layer.trainable for layer in model.segments + model.heads)


def test_an_update_differentiates_the_trainable_variables_only():
    """Keras' own PyTorch step calls `loss.backward()`, which leaves
    `.grad` on every tensor the loss reads; here none is left, frozen,
    trainable or outside the model (the teacher of distillation)."""
    x, y = _data(32)
    model = _model()
    regime = regime_for_budget("distillation", 4, model.num_exits)
    touched = []

    class Grads(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            teacher = self.model.regime_state.teacher
            held = list(self.model.weights) + list(
                teacher.weights if teacher is not None else [])
            touched.extend(v.path for v in held if v.value.grad is not None)

    model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
              callbacks=[regime, Grads()])
    assert touched == []


def test_training_learns_and_evaluate_matches_predict():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    model = _model(keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0,
                        callbacks=[regimes.Joint(verbose=False)])
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    logits = model.predict(x, verbose=0)
    for name in model.exit_names:
        accuracy = float(np.mean(np.argmax(logits[name], -1) == y))
        assert after[f"{name}_accuracy"] == pytest.approx(accuracy,
                                                          abs=1e-6)


def test_a_trained_model_saves_and_loads_without_tensorflow(tmp_path):
    from keras_eexit.models import load_model

    x, y = _data(32)
    model = _model()
    model.fit(x, y, batch_size=16, verbose=0,
              callbacks=[regimes.TwoStage(1, 1, verbose=False)])
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    for name, logits in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(loaded.predict(x, verbose=0)[name],
                                      logits)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(
        model.evaluate(x, y, verbose=0))


def test_a_failing_step_leaves_the_model_whole_and_trainable():
    x, y = _data(32)
    model = _model()

    class Boom(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.params and batch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                  callbacks=[regimes.TwoStage(1, 2, verbose=False), Boom()])
    assert all(layer.trainable for layer in model.segments + model.heads)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.predict(x, verbose=0)


def test_backup_and_restore_resumes_in_phase_with_identical_weights(
        tmp_path):
    x, y = _data(32)

    def run(callbacks):
        model = _model(keras.optimizers.Adam(1e-2), seed=3)
        keras.utils.set_random_seed(7)
        model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
                  callbacks=[regimes.TwoStage(2, 2, verbose=False),
                             *callbacks])
        return model

    reference = run([])

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        run([backup, Stop()])
    resumed = run([keras.callbacks.BackupAndRestore(
        str(tmp_path / "backup"))])
    for a, b in zip(reference.weights + reference.optimizer.variables,
                    resumed.weights + resumed.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("regularizer", ["ewc", "lwf"])
def test_sequential_regimes_measure_and_penalise(regularizer):
    x, y = _data(32)
    model = _model()
    history = model.fit(
        x, y, batch_size=16, verbose=0, shuffle=False,
        callbacks=[regimes.SequentialRegime(1, warmup_epochs=1,
                                            regularizer=regularizer,
                                            fisher_samples=16)])
    logs = history.history
    assert max(logs[f"{regularizer}_loss"]) > 0.0
    if regularizer == "ewc":
        # Two Fisher passes of 16 samples each (after stages 1 and 2).
        assert logs["fisher_samples"] == [16.0, 16.0]
    assert model.regime_state is None  # released at the end


def test_gradient_equilibrium_averages_exit_gradients_on_torch():
    """With GE, segment k's gradient is the mean over exits j >= k (the
    TensorFlow test's closed form, through a `torch.autograd.Function`)."""
    import torch

    x, y = _data(16)
    model = make_tiny_model()
    model.compile(optimizer="sgd")
    labels = {n: y for n in model.exit_names}
    segments = [s.trainable_weights[0] for s in model.segments]

    def grads(weights, equilibrium):
        model.gradient_equilibrium = equilibrium
        model.exit_weights.assign(weights)
        loss = model.compute_loss(x, labels, model(x, training=True))
        return [g.detach().numpy() for g in torch.autograd.grad(
            loss, [v.value for v in segments])]

    per_exit = [grads(np.eye(3)[j], False) for j in range(3)]
    with_ge = grads(np.ones(3), True)
    for k in range(3):
        expected = np.mean([per_exit[j][k] for j in range(k, 3)], axis=0)
        np.testing.assert_allclose(with_ge[k], expected, rtol=1e-4,
                                   atol=1e-7)
    # Not the plain sum: the check above can fail.
    assert not np.allclose(with_ge[0], np.sum(
        [per_exit[j][0] for j in range(3)], axis=0), rtol=1e-3)
    model.gradient_equilibrium = False
    # And in `fit`, installed by the regime for its phase.
    plans = []

    class Plan(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            plans.append(self.model.train_step_plan())

    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                        callbacks=[regimes.Joint(gradient_equilibrium=True,
                                                 verbose=False), Plan()])
    assert plans == [["1. gradients: GradientEquilibrium"]]
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("name", ["sdn", "pbee", "gpf", "dfs"])
def test_methods_train_on_torch(name):
    from keras_eexit.methods.registry import get_method

    x, y = _data(32)
    method = get_method(name)
    keras.utils.set_random_seed(0)
    model = method.build(get_model("small_cnn", num_classes=4,
                                   input_shape=(8, 8, 1), width=4))
    model.compile(optimizer="sgd")
    before = [to_numpy(w) for w in model.weights]
    regime = method.adapt(regime_for_budget("joint", 2, model.num_exits),
                          epochs=2)
    history = model.fit(x, y, batch_size=16, verbose=0, epochs=None
                        if regime.epochs_for(model) else 2,
                        callbacks=[regime])
    assert np.all(np.isfinite(history.history["loss"]))
    assert any(not np.array_equal(b, to_numpy(w))
               for b, w in zip(before, model.weights))


from tests.backends.test_training_jax import (  # noqa: E402
    test_l2w_trains_model_and_network_and_keeps_frozen_stages)
from tests.backends.test_training_jax import (  # noqa: E402
    test_a_contributor_for_tensorflow_only_is_refused_in_one_line)
from tests.backends.test_training_jax import (  # noqa: E402
    test_feature_cache_matches_recomputation)
from tests.backends.test_training_jax import (  # noqa: E402
    test_feature_cache_replays_and_learns)
from tests.backends.test_training_jax import (  # noqa: E402
    test_ztw_ensembles_train_only_in_their_phase)

SHARED = (test_l2w_trains_model_and_network_and_keeps_frozen_stages,
          test_ztw_ensembles_train_only_in_their_phase,
          test_a_contributor_for_tensorflow_only_is_refused_in_one_line,
          test_feature_cache_matches_recomputation,
          test_feature_cache_replays_and_learns)
"""The JAX module's checks of the methods' own steps and the feature
cache, collected here."""
