"""Training on the JAX backend: regimes, freezing, resume, failures, EWC.

Runs only under `KERAS_BACKEND=jax`: `test_training_jax_run.py` runs this
module there with TensorFlow made unimportable, so it also shows that
training needs no TensorFlow. What the TensorFlow suite checks of the
regimes' mechanics must hold on JAX's stateless trainer too: a frozen
stage keeps its weights and optimizer slots bit for bit, each phase
trains what it names, a failing or interrupted fit leaves a usable model,
`BackupAndRestore` resumes inside the phase it stopped in.
"""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.compat import optimizer_slots
from keras_eexit.regimes.registry import REGIMES
from keras_eexit.regimes.registry import regime_for_budget
from tests.conftest import WeightRecorder
from tests.conftest import make_tiny_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="run under KERAS_BACKEND=jax by test_training_jax_run.py")


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=n)
    return x, y


def _model(optimizer=None, seed=0):
    model = make_tiny_model(seed=seed)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05),
                  metrics=["accuracy"])
    return model


def _expected(regime, num_exits, phases_run):
    """What each epoch may change: {segments}, {heads} of its phase."""
    phases = regime.phases_for(num_exits)
    return [({k + 1 for k in range(num_exits)
              if phases[p].trains("segments", k, num_exits)},
             {k + 1 for k in range(num_exits)
              if phases[p].trains("heads", k, num_exits)})
            for p in phases_run]


HYBRIDS = {"joint_branch", "joint_two_stage", "pretrained_branch",
           "disjoint"}
"""Regimes whose phases are other regimes' (`disjoint` is `two_stage`'s
class): frozen bit-exact there with `-m slow`, as their parts are in CI."""


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.slow] * (name in HYBRIDS))
    for name in sorted(set(REGIMES) - {"separate"})])
def test_every_regime_trains_exactly_what_each_phase_names(name):
    x, y = _data()
    model = _model()
    recorder = WeightRecorder()
    regime = regime_for_budget(name, 4, model.num_exits)
    epochs = None if regime.epochs_for(model) else 4
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0,
                        shuffle=False, callbacks=[regime, recorder])
    phases_run = history.history["phase"]
    expected = _expected(regime, model.num_exits, phases_run)
    for epoch, ((segments, heads), (may_s, may_h)) in enumerate(
            zip(recorder.changed, expected)):
        # A frozen stage is bit-identical; a Fisher epoch changes nothing.
        assert segments <= may_s, (name, epoch, segments, may_s)
        assert heads <= may_h, (name, epoch, heads, may_h)
    assert any(s or h for s, h in recorder.changed), name
    assert np.all(np.isfinite(history.history["loss"]))


def test_two_stage_freezes_backbone_and_keeps_its_optimizer_slots():
    x, y = _data()
    model = _model(keras.optimizers.Adam(1e-2))
    recorder = WeightRecorder()
    seen = {}

    class Slots(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            kernel = self.model.segments[0].weights[0]
            seen[epoch] = [np.array(s) for s in optimizer_slots(
                self.model.optimizer, kernel)]

    model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
              callbacks=[regimes.TwoStage(2, 2, verbose=False), recorder,
                         Slots()])
    assert recorder.changed[0][0] == {1, 2, 3}
    assert recorder.changed[2][0] == set()
    assert recorder.changed[3][0] == set()
    assert recorder.changed[2][1] == {1, 2}
    for before, after in zip(seen[1], seen[3]):
        np.testing.assert_array_equal(before, after)
    assert all(layer.trainable for layer in model.segments + model.heads)


def test_training_learns_and_evaluate_matches_predict():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 8, 8, 1)).astype("float32")
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


def test_a_failing_step_leaves_the_model_whole_and_trainable():
    x, y = _data()
    model = _model()
    weights = [np.array(w) for w in model.weights]

    class Boom(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.params and batch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                  callbacks=[regimes.TwoStage(1, 2, verbose=False), Boom()])
    # Every variable holds a value again; flags are the user's.
    assert all(np.all(np.isfinite(np.array(w))) for w in model.weights)
    assert len(model.weights) == len(weights)
    assert all(layer.trainable for layer in model.segments + model.heads)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.predict(x, verbose=0)


def test_backup_and_restore_resumes_in_phase_with_identical_weights(
        tmp_path):
    x, y = _data()

    def run(callbacks):
        model = _model(seed=3)
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
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-6)


def test_distillation_reads_the_teacher_taken_at_its_phase():
    x, y = _data()
    model = _model()
    regime = regime_for_budget("distillation", 4, model.num_exits)
    seen = {}

    class Teacher(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            teacher = self.model.regime_state.teacher
            seen[epoch] = [np.array(w) for w in teacher.weights]

    model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
              callbacks=[regime, Teacher()])
    last = max(seen)
    # The snapshot is a copy that training does not touch (JAX donates
    # the model's arrays to each step).
    for w in seen[last]:
        assert np.all(np.isfinite(w))
    assert any(not np.array_equal(a, np.array(b)) for a, b in zip(
        seen[last], model.weights))


def test_sequential_ewc_measures_the_fisher_and_penalises():
    x, y = _data(64)
    model = _model()
    history = model.fit(
        x, y, batch_size=16, verbose=0, shuffle=False,
        callbacks=[regimes.SequentialRegime(1, warmup_epochs=1,
                                            regularizer="ewc",
                                            fisher_samples=32)])
    store = model.regime_state.fisher_store if model.regime_state else None
    logs = history.history
    assert "ewc_loss" in logs
    assert max(logs["ewc_loss"]) > 0.0
    assert store is None  # released at the end of the regime


def test_gradient_equilibrium_averages_exit_gradients_on_jax():
    """With GE, segment k's gradient is the mean over exits j >= k (the
    TensorFlow test's closed form, through `jax.custom_vjp`)."""
    import jax

    x, y = _data(16)
    model = make_tiny_model()
    model.compile(optimizer="sgd")
    labels = {n: y for n in model.exit_names}
    segments = [s.trainable_weights[0] for s in model.segments]

    def grads(weights, equilibrium):
        model.gradient_equilibrium = equilibrium
        model.exit_weights.assign(weights)
        others = [v for v in model.trainable_variables
                  if all(v is not s for s in segments)]

        def loss(values):
            mapping = list(zip(segments, values)) + [
                (v, v.value) for v in others + list(
                    model.non_trainable_variables)]
            with keras.StatelessScope(state_mapping=mapping):
                out = model(x, training=True)
                return model.compute_loss(x, labels, out)

        return [np.asarray(g) for g in jax.grad(loss)(
            [v.value for v in segments])]

    per_exit = [grads(np.eye(3)[j], False) for j in range(3)]
    with_ge = grads(np.ones(3), True)
    for k in range(3):
        expected = np.mean([per_exit[j][k] for j in range(k, 3)], axis=0)
        np.testing.assert_allclose(with_ge[k], expected, rtol=1e-4,
                                   atol=1e-7)
    model.gradient_equilibrium = False


def test_l2w_trains_model_and_network_and_keeps_frozen_stages():
    # Under TwoStage's head phase L2W's look-ahead and updates move the
    # heads only; the network learns in both phases; two model updates
    # per batch (one per half), as the authors'.
    from keras_eexit.methods import L2W

    x, y = _data(32)
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9))
    l2w = L2W(hidden_units=8, meta_learning_rate=1e-2).attach(model)
    network = [keras.ops.convert_to_numpy(v) for v in l2w.network.weights]
    recorder = WeightRecorder()
    regime = regimes.TwoStage(1, 1, verbose=False)
    history = model.fit(x, y, batch_size=16, verbose=0, shuffle=False,
                        callbacks=[regime, recorder])
    assert np.isfinite(history.history["l2w_meta_loss"]).all()
    assert recorder.changed == _expected(regime, model.num_exits, [0, 1])
    assert recorder.changed[1][0] == set()
    assert any(not np.array_equal(before, keras.ops.convert_to_numpy(v))
               for before, v in zip(network, l2w.network.weights))
    # The head phase's updates (a phase restarts the optimizer's state).
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == (
        2 * 2)
    assert int(keras.ops.convert_to_numpy(l2w.steps)) == 2 * 2
    assert model.train_step_plan() == ["1. step: L2W", "2. loss: L2W"]


def test_feature_cache_matches_recomputation(tiny_data):
    # The TensorFlow checks of the feature cache: the fill epoch trains
    # the heads exactly as recomputing does; the replay epochs hold the
    # cache (its size in bytes), ignore the batches' content and learn.
    from tests.regimes.test_named_regimes import (
        test_feature_cache_matches_recomputation as check)

    check(make_tiny_model, tiny_data)


def test_feature_cache_replays_and_learns(tiny_data):
    from tests.regimes.test_named_regimes import (
        test_feature_cache_replays_and_learns as check)

    check(make_tiny_model, tiny_data)


def test_ztw_ensembles_train_only_in_their_phase(tiny_data):
    # The TensorFlow check of ZTW's ensemble phase.
    from tests.methods.test_ztw_training import (
        test_ensembles_train_only_in_their_phase as check)

    check(tiny_data)


def test_a_contributor_for_tensorflow_only_is_refused_in_one_line():
    # A contributor declares its backends; the default is TensorFlow's
    # traced step only.
    from keras_eexit.models.train_step import StepContributor

    class CountBatches(StepContributor):
        roles = ("step",)

    model = _model()
    backend = keras.backend.backend()
    with pytest.raises(NotImplementedError, match=(
            f"CountBatches runs on the tensorflow backend only for now. "
            f"Received: KERAS_BACKEND='{backend}'")):
        model.train_pipeline.install(CountBatches())
    assert model.train_step_plan() == []


@pytest.mark.parametrize("case", ["finite", "growth", "non_finite"])
def test_mixed_precision_updates_equal_keras_own_stateless_apply(case):
    # Keras' LossScaleOptimizer.apply cannot run in a traced JAX step (it
    # assigns inside `ops.cond`); the branch-free rule of
    # `apply_to_trainable` gives its `stateless_apply`'s values exactly,
    # scale and counter included.
    from keras_eexit.models.jax_step import apply_to_trainable

    variables = [keras.Variable(np.full((3,), k, "float32"))
                 for k in (1.0, 2.0)]
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.1, momentum=0.9), dynamic_growth_steps=3)
    optimizer.build(variables)
    if case == "growth":  # the step that completes the finite run
        optimizer.step_counter.assign(2)
    grads = [np.array([1.0, 2.0, 3.0], "float32") * 64.0,
             np.array([4.0, 5.0, 6.0], "float32") * 64.0]
    if case == "non_finite":
        grads[1][0] = np.inf
    values = [v.value for v in variables]
    slots = [v.value for v in optimizer.variables]
    expected = optimizer.stateless_apply(slots, grads, values)
    got = apply_to_trainable(optimizer, slots, grads, variables, values)
    for want, have in zip(expected, got):
        for a, b in zip(want, have):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    scale = float(np.asarray(got[1][[id(v) for v in optimizer.variables]
                                    .index(id(optimizer.dynamic_scale))]))
    initial = float(optimizer.initial_scale)
    assert scale == {"finite": initial, "growth": 2 * initial,
                     "non_finite": initial / 2}[case]
    # A frozen variable (not handed over) keeps its slots (a momentum an
    # update with a zero gradient would decay).
    untouched = optimizer_slots(optimizer.inner_optimizer, variables[1])
    for slot in untouched.values():
        slot.assign(np.ones(slot.shape, "float32"))
    values, slots = apply_to_trainable(
        optimizer, [v.value for v in optimizer.variables], grads[:1],
        variables[:1], [variables[0].value])
    for slot in untouched.values():
        index = [id(v) for v in optimizer.variables].index(id(slot))
        np.testing.assert_array_equal(np.asarray(slots[index]),
                                      np.asarray(slot.value))
