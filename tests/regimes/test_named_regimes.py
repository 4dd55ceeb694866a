"""Named regimes: phase order and lengths, what trains, what each optimises."""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.losses.distillation import ExitDistillation as DistillTerm


def _fit(model, regime, recorder, data, epochs=None, lr=0.05, **kwargs):
    x, y = data
    model.compile(optimizer=keras.optimizers.Adam(lr))
    epochs = epochs or regime.epochs_for(model)
    return model.fit(x, y, epochs=epochs, batch_size=16, verbose=0,
                     callbacks=[regime, recorder], **kwargs)


def test_two_stage_freezes_backbone_and_bn_then_trains_internal_heads(
        model_factory, tiny_data, recorder):
    model = model_factory()
    regime = regimes.TwoStage(backbone_epochs=2, heads_epochs=3)
    history = _fit(model, regime, recorder, tiny_data)
    assert regime.epochs == 5
    assert history.history["phase"] == [0, 0, 1, 1, 1]
    assert recorder.changed[:2] == [({1, 2, 3}, {3})] * 2
    # Heads phase: segments (weights AND BatchNorm statistics) untouched.
    assert recorder.changed[2:] == [(set(), {1, 2})] * 3
    np.testing.assert_allclose(recorder.exit_weights[0], [0, 0, 1])
    # The heads' losses are averaged over the K exits (Kubaty et al.).
    np.testing.assert_allclose(recorder.exit_weights[3], [1 / 3, 1 / 3, 0])
    # The model is usable and fully trainable again after fit.
    assert all(layer.trainable for layer in model.segments + model.heads)
    assert model.regime_state is None and model.train_step_plan() == []


def test_frozen_segments_keep_their_optimizer_state(model_factory,
                                                    tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    state = {}

    class Snap(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                state["before"] = [np.array(v) for v in
                                   self.model.optimizer.variables]

    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[regimes.TwoStage(1, 2, cache_features=False),
                         Snap()])
    after = [np.array(v) for v in model.optimizer.variables]
    changed = sum(not np.array_equal(a, b)
                  for a, b in zip(state["before"], after))
    head_vars = sum(len(h.trainable_weights) for h in model.heads[:2])
    # Adam: momentum + velocity per trained head variable, plus the step.
    assert changed == 2 * head_vars + 1


def test_one_by_one_heads(model_factory, tiny_data, recorder):
    model = model_factory()
    regime = regimes.Disjoint(1, 2, heads="one_by_one")
    history = _fit(model, regime, recorder, tiny_data)
    assert history.history["phase"] == [0, 1, 1, 2, 2]
    assert [c[1] for c in recorder.changed] == [{3}, {1}, {1}, {2}, {2}]
    assert all(c[0] == set() for c in recorder.changed[1:])


def test_feature_cache_matches_recomputation(model_factory, tiny_data):
    """Count and fill epochs see the same batches: identical heads."""
    results = []
    for cache in (False, True):
        model = model_factory()
        x, y = tiny_data
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                  callbacks=[regimes.TwoStage(1, 2, cache_features=cache,
                                              verbose=False)])
        results.append([np.array(w) for h in model.heads for w in h.weights])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_feature_cache_replays_and_learns(model_factory, tiny_data):
    model = model_factory()
    x, y = tiny_data
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            caches = self.model.train_pipeline.active("batch")
            if caches:
                cache, = caches
                seen[epoch] = (cache.mode, cache.memory_bytes())

    history = model.fit(x, y, epochs=7, batch_size=8, verbose=0,
                        callbacks=[regimes.TwoStage(1, 6, verbose=False),
                                   Probe()])
    assert [seen[e][0] for e in range(1, 7)] == [
        "count", "fill", "replay", "replay", "replay", "replay"]
    # 32 samples x (4 + 4 + 4 floats at 8x8 each) x 4 bytes + labels
    # (int64; JAX's integers are 32-bit without x64).
    label_bytes = 4 if keras.backend.backend() == "jax" else 8
    assert seen[6][1] == 32 * 3 * 8 * 8 * 4 * 4 + 32 * label_bytes
    losses = history.history["exit_1_loss"]
    assert losses[-1] < losses[1]


def test_mixed(model_factory, tiny_data, recorder):
    history = _fit(model_factory(), regimes.Mixed(2, 2), recorder, tiny_data)
    assert history.history["phase"] == [0, 0, 1, 1]
    assert recorder.changed[0] == ({1, 2, 3}, {3})
    assert recorder.changed[2] == ({1, 2, 3}, {1, 2, 3})
    np.testing.assert_allclose(recorder.exit_weights[2], [1 / 3] * 3)


def test_branch_wise(model_factory, tiny_data, recorder):
    history = _fit(model_factory(), regimes.BranchWise(1), recorder,
                   tiny_data)
    assert history.history["phase"] == [0, 1, 2]
    assert recorder.changed == [({1}, {1}), ({2}, {2}), ({3}, {3})]


@pytest.mark.parametrize("objective,heads", [
    ("cumulative", [{3}, {1}, {1, 2}, {1, 2, 3}]),
    ("current", [{3}, {1}, {2}, {3}]),
])
def test_sequential(model_factory, tiny_data, recorder, objective, heads):
    regime = regimes.SequentialRegime(1, warmup_epochs=1, objective=objective)
    history = _fit(model_factory(), regime, recorder, tiny_data)
    assert history.history["phase"] == [0, 1, 2, 3]
    assert [c[0] for c in recorder.changed] == [{1, 2, 3}, {1}, {1, 2},
                                                {1, 2, 3}]
    assert [c[1] for c in recorder.changed] == heads


def test_sequential_without_warmup_covers_the_final_exit(model_factory):
    assert regimes.SequentialRegime(2).epochs_for(model_factory()) == 6


def test_separate_trains_independent_submodels(model_factory, tiny_data,
                                               recorder):
    shared = model_factory()
    model = regimes.Separate.prepare_model(shared)
    history = _fit(model, regimes.Separate(1), recorder, tiny_data)
    assert history.history["phase"] == [0, 1, 2]
    assert recorder.changed == [({1}, {1}), ({2}, {2}), ({3}, {3})]
    # Cascading through unshared prefixes costs more than a shared chain.
    own, chain = model.flops_per_exit(), shared.flops_per_exit()
    assert own[0] == chain[0] and own[1] > chain[1] and own[2] > chain[2]
    conv1, conv, head = 2 * 64 * 4 * 9, 2 * 64 * 4 * 9 * 4, 2 * 16
    assert own[2] == 3 * conv1 + 3 * conv + 3 * head


def test_separate_needs_unshared_model(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="prepare_model"):
        model.fit(x, y, epochs=3, verbose=0,
                  callbacks=[regimes.Separate(1)])


def test_distillation_teacher_gets_no_gradient():
    import tensorflow as tf

    term = DistillTerm([1], temperature=3.0, weight=1.0, teacher="final")

    class Fake:
        exit_names = ["exit_1", "exit_2"]
        num_exits = 2

    student = tf.Variable([[1.0, 0.0, -1.0]])
    teacher = tf.Variable([[0.5, 2.0, 0.0]])
    with tf.GradientTape(persistent=True) as tape:
        value, _ = term(Fake(), None, None,
                        {"exit_1": student, "exit_2": teacher})
    assert tape.gradient(value, teacher) is None
    assert np.abs(tape.gradient(value, student)).sum() > 0


def test_composition_with_plus(model_factory, tiny_data, recorder):
    regime = regimes.Mixed(1, 1) + regimes.BranchWise(1)
    history = _fit(model_factory(), regime, recorder, tiny_data)
    assert history.history["phase"] == [0, 1, 2, 3, 4]
    assert regime.epochs_for(3) == 5


def test_sdn_schedule_weights(model_factory, tiny_data, recorder):
    """SDN's `model_funcs.py` counts epochs from 1 (`for epoch in
    range(1, epochs+1)`): the first epoch trains at 0.01 + τ/E, the last
    at τ."""
    _fit(model_factory(), regimes.Joint(schedule="sdn"), recorder,
         tiny_data, epochs=4)
    taus = np.array([0.45, 0.9])
    for epoch, weights in enumerate(recorder.exit_weights, start=1):
        internal = np.minimum(taus, 0.01 + epoch * taus / 4)
        np.testing.assert_allclose(weights, list(internal) + [1.0],
                                   rtol=1e-6)
    np.testing.assert_allclose(recorder.exit_weights[0],
                               [0.1225, 0.235, 1.0], rtol=1e-6)
    np.testing.assert_allclose(recorder.exit_weights[-1], [0.45, 0.9, 1.0],
                               rtol=1e-6)
    sched = regimes.sdn_schedule(7)
    np.testing.assert_allclose(sched(99, 100)[:6],
                               [0.15, 0.3, 0.45, 0.6, 0.75, 0.9])
    np.testing.assert_allclose(
        sched(0, 4)[:6], 0.01 + np.array([0.15, 0.3, 0.45, 0.6, 0.75,
                                          0.9]) / 4)


def test_gradient_equilibrium_averages_exit_gradients(model_factory,
                                                      tiny_data):
    """With GE, segment k's gradient is the mean over exits j >= k."""
    import tensorflow as tf

    x, y = tiny_data
    model = model_factory()
    labels = {n: y for n in model.exit_names}

    def grads(weights, equilibrium):
        model.gradient_equilibrium = equilibrium
        model.exit_weights.assign(weights)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = model.compute_loss(x, labels, out)
        variables = [s.trainable_weights[0] for s in model.segments]
        return [g.numpy() for g in tape.gradient(loss, variables)]

    per_exit = [grads(np.eye(3)[j], False) for j in range(3)]
    with_ge = grads(np.ones(3), True)
    for k in range(3):
        expected = np.mean([per_exit[j][k] for j in range(k, 3)], axis=0)
        np.testing.assert_allclose(with_ge[k], expected, rtol=1e-4,
                                   atol=1e-7)
