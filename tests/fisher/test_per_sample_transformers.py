"""Exact one-pass squared per-sample gradients on transformer models."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import regimes
from keras_eexit.models.text_transformer import keras_hub_available
from keras_eexit.models.text_transformer import text_transformer_exits
from keras_eexit.models.vit import vit_exits
from keras_eexit.chain import run_to_exit
from keras_eexit.fisher import fisher_variables
from keras_eexit.fisher import per_sample

KINDS = [
    "vit",
    "builtin",
    "builtin_python_add",
    pytest.param("keras_hub", marks=pytest.mark.skipif(
        not keras_hub_available(), reason="keras-hub is not installed")),
]


def _model_and_data(kind, n=6):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n).astype("int32")
    if kind == "vit":
        model = vit_exits(num_classes=3, image_size=8, patch_size=4, dim=8,
                          depth=2, heads=2, exits_after=(1, 2))
        return model, rng.normal(size=(n, 8, 8, 3)).astype("float32"), y
    model = text_transformer_exits(
        num_classes=3, sequence_length=7, vocabulary_size=20, num_layers=2,
        num_heads=2, hidden_dim=8, intermediate_dim=16,
        backend="builtin" if kind == "builtin_python_add" else kind)
    ids = rng.integers(1, 6, size=(n, 7)).astype("int32")  # repeated ids
    for i in range(n):  # padding: a non-trivial attention mask
        ids[i, [7, 3, 5, 2, 7, 4][i % 6]:] = 0
    return model, ids, y


def _loop(model, x, y, exit, variables):
    total = [np.zeros(v.shape) for v in variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            log_p = tf.nn.log_softmax(run_to_exit(model, x[i:i + 1],
                                                  exit - 1, False))
            value = log_p[0, int(y[i])]
        for t, g in zip(total, tape.gradient(value, variables)):
            t += tf.convert_to_tensor(g).numpy().astype("float64") ** 2
    return total


def _python_add_embedding(self, inputs, training=None):
    """`TextEmbedding.call` written with Python `+` and slicing on its
    variables: uses the interceptor cannot see."""
    x = self.token_embedding(inputs)
    positions = self.position_embeddings[:x.shape[1]]
    x = x + positions[None] + self.segment_embedding
    return self.dropout_layer(self.layer_norm(x), training=training)


@pytest.mark.parametrize("kind", KINDS)
def test_squared_gradient_sums_equal_per_sample_loop(kind, monkeypatch):
    if kind == "builtin_python_add":
        from keras_eexit.layers.text_embedding import TextEmbedding

        monkeypatch.setattr(TextEmbedding, "call", _python_add_embedding)
    model, x, y = _model_and_data(kind)
    final = model.num_exits
    variables = fisher_variables(model, final)
    fallbacks = []
    original = per_sample._per_sample_squares

    def spy(forward, slow, xs, ys, vectorize):
        fallbacks.append(([v.path for v in slow], vectorize))
        return original(forward, slow, xs, ys, vectorize)

    monkeypatch.setattr(per_sample, "_per_sample_squares", spy)
    step = tf.function(lambda a, b: per_sample.squared_gradient_sums(
        lambda t: run_to_exit(model, t, final - 1, False), variables, a,
        b))
    got = step(tf.constant(x), tf.constant(y))
    expected = _loop(model, x, y, final, variables)
    scale = max(np.abs(e).max() for e in expected)
    for v, g, e in zip(variables, got, expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-4,
                                   atol=1e-6 * scale, err_msg=v.path)
    if kind == "builtin_python_add":
        # Variables used through Python `+`/slicing are not interceptable:
        # they take the per-sample loop (never `vectorized_map` over
        # attention) and are still exact.
        assert fallbacks == [(["embeddings/position_embeddings",
                               "embeddings/segment_embedding"], False)]
    else:
        assert fallbacks == []  # every variable in the one backward pass


@pytest.mark.parametrize("kind", [
    # The ViT runs in CI; the text encoders' per-sample squares are checked
    # above, their whole regime with `-m slow`.
    k if k == "vit" else pytest.param(
        *getattr(k, "values", (k,)),
        marks=[pytest.mark.slow, *getattr(k, "marks", ())])
    for k in KINDS if k != "builtin_python_add"])
def test_sequential_ewc_runs(kind):
    model, x, y = _model_and_data(kind, n=8)
    regime = regimes.SequentialRegime(
        1, warmup_epochs=1, objective="current", regularizer="ewc", lam=10.0,
        verbose=False)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    fishers = []

    class Peek(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            state = self.model.regime_state
            fishers.append([np.array(f) for f in state.fisher_store.fisher])

    history = model.fit(x, y, epochs=regime.epochs_for(model), batch_size=4,
                        verbose=0, callbacks=[regime, Peek()])
    assert np.all(np.isfinite(history.history["loss"]))
    assert max(history.history["ewc_loss"]) > 0
    final = fishers[-1]
    assert all(np.isfinite(f).all() for f in final)
    assert sum(float(f.sum()) for f in final) > 0


@pytest.mark.parametrize("equation,position,expected", [
    ("abc,cde->abde", 1, ("abc,abde->acde", "abde,cde->abc")),
    ("abcd,cde->abe", 1, ("abcd,abe->acde", "abe,cde->abcd")),
    ("ab,bc->ac", 1, ("ab,ac->abc", "ac,bc->ab")),
    ("cd,abc->abd", 0, ("abc,abd->acd", "abd,cd->abc")),
    ("abc,cd->ad", 1, ("abc,ad->acd", None)),  # b summed away: use a tape
    ("...b,bc->...c", 1, None),
    ("abc,abd->acd", 1, None),  # batch letter on the kernel
    ("ab,bc->ba", 1, None),  # batch not first in the output
])
def test_einsum_equations(equation, position, expected):
    assert per_sample._einsum_equations(equation, position) == expected
