"""GPF's exits: past states, imitated futures and the imitation loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import chain
from keras_eexit.methods.gpf import gpf
from tests.conftest import make_tiny_model

X = np.random.default_rng(2).normal(size=(6, 8, 8, 1)).astype("float32")
Y = np.array([0, 1, 2, 3, 0, 1])


@pytest.fixture(scope="module")
def model():
    # 4 exits: GPF exits 1..3 (n = 3), the final exit plain.
    return gpf(make_tiny_model(num_exits=4), state_dim=5,
               state_head="linear")


def _memory(model, training):
    state = X
    for k in range(model.num_exits):
        state, _ = chain.run_stage(model, k, state, training=training)
    return state["exits"]


def _imitation_loss(memory, n):
    """The benchmark's `GPF.aux_loss`: for each source exit i < n, one
    cosine-embedding loss over its imitations of exits i+1..n (stacked),
    averaged over the n - 1 sources."""
    total = 0.0
    for i in range(1, n):
        real = np.concatenate([np.array(memory[j - 1][0])
                               for j in range(i + 1, n + 1)])
        imitated = np.concatenate([np.array(memory[i - 1][1][:, j - i - 1])
                                   for j in range(i + 1, n + 1)])
        total += _cosine_loss(real, imitated)
    return total / (n - 1)


def _cosine_loss(real, imitated):
    real = real / np.linalg.norm(real, axis=-1, keepdims=True)
    imitated = imitated / np.linalg.norm(imitated, axis=-1, keepdims=True)
    return float(np.mean(1.0 - np.sum(real * imitated, -1)))


def test_structure(model):
    assert [type(h).__name__ for h in model.heads] == [
        "GPFHead", "GPFHead", "GPFHead", "Sequential"]
    assert [h.position for h in model.heads[:3]] == [1, 2, 3]
    assert model.heads[0].imitation_weight == 1.0  # the benchmark's
    assert model.num_classes == 4


def test_imitation_loss_closed_form(model):
    memory = _memory(model, training=True)
    n, total = 3, 0.0
    for i in range(1, n):  # source exit i imitates exits i+1..n
        imitations = np.array(memory[i - 1][1])
        assert imitations.shape == (6, n - i, 5)
        for j in range(i + 1, n + 1):
            real = np.array(memory[j - 1][0])
            total += _cosine_loss(real, imitations[:, j - i - 1]) / (
                (n - 1) * (n - i))
    model(X, training=True)
    assert len(model.losses) == 2  # added by the targets, exits 2 and 3
    np.testing.assert_allclose(float(sum(model.losses)), total, rtol=1e-5)
    # Not in inference: no loss, and carries hold the states only.
    model(X, training=False)
    assert not model.losses
    assert all(len(c) == 1 for c in _memory(model, training=False)[:3])


def test_frozen_source_adds_no_imitation_loss(model):
    model(X, training=True)
    everything = float(sum(model.losses))
    model.heads[0].trainable = False
    try:
        memory = _memory(model, training=True)
        assert len(memory[0]) == 1 and len(memory[1]) == 2
        model(X, training=True)
        without = float(sum(model.losses))
    finally:
        model.heads[0].trainable = True
    assert 0 < without < everything


def test_reads_past_without_gradient_and_nothing_later(model):
    before = {k: np.array(v) for k, v in model(X).items()}
    kernel = model.heads[3].layers[-1].kernel
    saved = np.array(kernel)
    kernel.assign(saved + 1.0)
    after = {k: np.array(v) for k, v in model(X).items()}
    kernel.assign(saved)
    for name in ("exit_1", "exit_2", "exit_3"):
        np.testing.assert_array_equal(after[name], before[name])
    kernel = model.heads[0].head.logits.kernel  # exit 1's state head
    saved = np.array(kernel)
    kernel.assign(saved + 0.5)
    after = {k: np.array(v) for k, v in model(X).items()}
    kernel.assign(saved)
    assert not np.allclose(after["exit_2"], before["exit_2"])
    with tf.GradientTape() as tape:
        logits = model(X, training=False)["exit_2"]
        loss = keras.losses.sparse_categorical_crossentropy(
            Y, logits, from_logits=True)
    grads = tape.gradient(loss, model.heads[0].trainable_variables
                          + model.heads[1].trainable_variables)
    first = len(model.heads[0].trainable_variables)
    assert all(g is None or not np.any(np.array(g)) for g in grads[:first])
    assert any(g is not None and np.any(np.array(g)) for g in grads[first:])


def test_flops_and_saving(model, tmp_path):
    plain = make_tiny_model(num_exits=4)
    d, c, n = 5, 4, 3
    extra = model.flops_per_exit()[0] - plain.flops_per_exit()[0]
    # exit 1: state head (channels 4 -> d instead of -> c), imitators of
    # 2 later states, n slot projections, 1 gate projection, balance.
    head = 2 * 4 * d - 2 * 4 * c
    assert extra == head + 2 * d * d * 2 + 2 * n * d * c + 2 * d * c \
        + 2 * c * c
    path = str(tmp_path / "gpf.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for name, value in model(X).items():
        np.testing.assert_allclose(np.array(loaded(X)[name]),
                                   np.array(value), rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("regime", ["joint", "mixed", "two_stage"])
def test_loss_is_the_benchmarks_under_every_regime(model, regime):
    """On one batch, GPF's training loss under `gpf_regime(regime)` is
    Kubaty et al.'s (`methods/early_exit.py`): `Σ_k k·CE_k / Σ_k k` over
    the K outputs plus `GPF.aux_loss()` with weight 1. Under `TwoStage`'s
    heads phase the frozen final exit's term (a constant) is left out."""
    from keras_eexit import regimes
    from keras_eexit.losses.exit_weights import exit_weights
    from keras_eexit.methods.gpf import gpf_regime

    inner = {"joint": regimes.Joint(), "mixed": regimes.Mixed(1, 1),
             "two_stage": regimes.TwoStage(1, 1)}[regime]
    phase = gpf_regime(inner).phases_for(4)[-1]
    model.compile(optimizer="adam")
    model.exit_weights.assign(exit_weights(phase.weights, 4))
    out = model(X, training=True)
    loss = float(model.compute_loss(X, {n: Y for n in model.exit_names},
                                    out))
    ce = [float(keras.losses.sparse_categorical_crossentropy(
        Y, out[name], from_logits=True).numpy().mean())
        for name in model.exit_names]
    reference = sum((k + 1) * ce[k] for k in range(4)) / 10.0 \
        + _imitation_loss(_memory(model, training=True), 3)
    if regime == "two_stage":
        reference -= 4 * ce[3] / 10.0
    assert loss == pytest.approx(reference, rel=1e-5)


def test_a_phase_training_one_exit_keeps_its_weights():
    from keras_eexit import regimes
    from keras_eexit.losses.exit_weights import exit_weights
    from keras_eexit.methods.gpf import gpf_regime

    backbone = gpf_regime(regimes.TwoStage(1, 1)).phases_for(4)[0]
    np.testing.assert_allclose(exit_weights(backbone.weights, 4),
                               [0, 0, 0, 1])
