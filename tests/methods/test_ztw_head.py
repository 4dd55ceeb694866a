"""ZTW's cascading exits and geometric ensembles (layers and chain)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import chain
from keras_eexit.layers import ZTWHead
from keras_eexit.methods.ztw import ensemble_heads
from keras_eexit.methods.ztw import ztw
from tests.conftest import make_tiny_model

X = np.random.default_rng(1).normal(size=(6, 8, 8, 1)).astype("float32")
Y = np.array([0, 1, 2, 3, 0, 1])


@pytest.fixture(scope="module")
def model():
    return ztw(make_tiny_model(num_exits=4))


def _outputs(model):
    return {k: np.array(v) for k, v in model(X, training=False).items()}


def _raw(model):
    """Each exit's own (cascading) logits: the carries in the memory."""
    state = X
    for k in range(model.num_exits):
        state, _ = chain.run_stage(model, k, state, training=False)
    return [np.array(c) for c in state["exits"]]


def test_structure(model):
    heads = model.heads
    assert [type(h).__name__ for h in heads] == [
        "ZTWHead", "ZTWHead", "ZTWHead", "Sequential"]
    assert [h.cascade for h in heads[:3]] == [False, True, True]
    assert ensemble_heads(model) == heads[:3]
    # Ensemble parameters never train with the network.
    names = {v.path for v in model.trainable_variables}
    assert not any("ensemble" in n for n in names)
    assert sum("ensemble" in v.path for v in model.non_trainable_variables) \
        == 9


def test_exit_k_reads_exit_k_minus_1_and_nothing_later(model):
    before = _outputs(model)
    raw = _raw(model)
    # Closed form of exit 3: its head on its features plus the cascading
    # term on exit 2's raw logits, nothing else.
    head = model.heads[2]
    features = chain.head_inputs(model, X, training=False)[2]
    expected = np.array(head.head(features, training=False)) + np.array(
        head.cascade_dense(head.cascade_norm(raw[1])))
    np.testing.assert_allclose(before["exit_3"], expected, rtol=1e-5,
                               atol=1e-5)
    # Changing exit 4 (later) changes nothing before it; changing exit 2
    # changes exit 3 (it reads it) but not exit 1.
    kernel = model.heads[3].layers[-1].kernel
    saved = np.array(kernel)
    kernel.assign(saved + 1.0)
    after = _outputs(model)
    kernel.assign(saved)
    for name in ("exit_1", "exit_2", "exit_3"):
        np.testing.assert_array_equal(after[name], before[name])
    kernel = model.heads[1].head.layers[-1].kernel
    saved = np.array(kernel)
    # (not a constant shift: the layer normalisation would remove it)
    kernel.assign(saved + np.random.default_rng(0).normal(size=saved.shape))
    after = _outputs(model)
    kernel.assign(saved)
    np.testing.assert_array_equal(after["exit_1"], before["exit_1"])
    assert not np.allclose(after["exit_3"], before["exit_3"])


def test_cascade_layer_norm_is_pytorchs():
    """The cascade normalises with ε = 1e-5 (`nn.LayerNorm`, both authors'
    codes); it matters for logits of small spread like these (Keras'
    default 1e-3 fails this comparison)."""
    head = ZTWHead(keras.layers.Dense(4), cascade=True)
    features = np.random.default_rng(3).normal(size=(5, 6)).astype(
        "float32")
    previous = 0.02 * np.random.default_rng(4).normal(size=(5, 4)).astype(
        "float32")
    logits, _ = head((features, (previous,)))
    centred = previous - previous.mean(-1, keepdims=True)
    normed = centred / np.sqrt(centred.var(-1, keepdims=True) + 1e-5)
    expected = np.array(head.head(features)) + normed @ np.array(
        head.cascade_dense.kernel)
    np.testing.assert_allclose(np.array(logits), expected, rtol=1e-5,
                               atol=1e-5)


def test_cascading_input_carries_no_gradient(model):
    with tf.GradientTape() as tape:
        logits = model(X, training=True)["exit_3"]
        loss = keras.losses.sparse_categorical_crossentropy(
            Y, logits, from_logits=True)
    previous = model.heads[1].trainable_variables
    own = model.heads[2].cascade_dense.kernel
    grads = tape.gradient(loss, previous + [own])
    assert all(g is None or not np.any(np.array(g)) for g in grads[:-1])
    assert np.any(np.array(grads[-1]))


def test_ensemble_closed_form_and_saving(model, tmp_path):
    raw = _raw(model)
    plain = _outputs(model)
    for k, head in enumerate(model.heads[:3]):
        np.testing.assert_allclose(plain[f"exit_{k + 1}"], raw[k],
                                   rtol=1e-6)  # not ready: the exit itself
    rng = np.random.default_rng(0)
    for head in ensemble_heads(model):
        head.ensemble_weights.assign(
            rng.normal(size=head.ensemble_weights.shape))
        head.ensemble_bias.assign(rng.normal(size=head.ensemble_bias.shape))
        head.ensemble_ready.assign(1.0)
    try:
        out = _outputs(model)
        for k, head in enumerate(model.heads[:3]):
            logp = [np.array(tf.nn.log_softmax(r)) for r in raw[: k + 1]]
            w = np.exp(np.array(head.ensemble_weights))
            expected = sum(wi * lp for wi, lp in zip(w, logp)) / (k + 1) + \
                np.array(head.ensemble_bias)
            np.testing.assert_allclose(out[f"exit_{k + 1}"], expected,
                                       rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["exit_4"], plain["exit_4"])
        path = str(tmp_path / "ztw.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        again = {k: np.array(v) for k, v in loaded(X).items()}
        for name in out:
            np.testing.assert_allclose(again[name], out[name], rtol=1e-6)
    finally:
        for head in ensemble_heads(model):
            head.ensemble_ready.assign(0.0)


def test_flops_count_cascade_and_ensemble():
    base = make_tiny_model(num_exits=3)
    plain = base.flops_per_exit()
    model = ztw(base)
    c = 4  # classes
    # Exit 1: ensemble of 1; exit 2: cascade dense c·c and ensemble of 2;
    # the final exit: nothing; every cost is cumulative.
    extra = [2 * c * 1, 2 * c * 1 + 2 * c * c + 2 * c * 2]
    extra.append(extra[-1])
    assert [f - p for f, p in zip(model.flops_per_exit(), plain)] == extra


def test_run_heads_on_cached_features_equals_the_model(model):
    features = chain.head_inputs(model, X, training=False)
    logits = chain.run_heads(model, features, training=False)
    out = _outputs(model)
    for name, value in zip(model.exit_names, logits):
        np.testing.assert_allclose(np.array(value), out[name], rtol=1e-6)
    specs = chain.state_specs(model, batch_size=2)
    assert [len(s["exits"]) for s in specs] == [1, 2, 3, 4]
    assert chain.head_input(specs[0]).shape == (2, 8, 8, 4)


def test_plain_models_keep_plain_states():
    base = make_tiny_model(num_exits=2)
    assert not chain.has_exit_memory(base)
    assert not isinstance(chain.state_specs(base)[0], dict)

