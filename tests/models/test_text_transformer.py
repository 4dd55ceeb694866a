"""`text_transformer_exits`: a BERT-style encoder with an exit per layer.

The builtin backend is always tested; the keras-hub backend when keras-hub
is installed (the `[text]` extra). Everything runs offline at tiny widths.
"""

import keras
import numpy as np
import pytest

from keras_eexit.data.text_vocab import CHARACTERS
from keras_eexit.data.text_vocab import VOCABULARY_SIZE
from keras_eexit.data.text_vocab import TextVocabulary
from keras_eexit.data.text_vocab import tokenize
from keras_eexit.layers.cls_head import ClsHead
from keras_eexit.layers.text_embedding import TextEmbedding
from keras_eexit.layers.token_padding_mask import TokenPaddingMask
from keras_eexit.layers.text_encoder import TextEncoderLayer
from keras_eexit.models import text_transformer as tt
from keras_eexit.models.text_transformer import text_transformer_exits

SEQ = 16
SMALL = dict(num_layers=3, hidden_dim=16, num_heads=2, intermediate_dim=32)

BACKENDS = [
    "builtin",
    pytest.param("keras_hub", marks=pytest.mark.skipif(
        not tt.keras_hub_available(), reason="keras-hub is not installed")),
]

POSITIVE = ["good", "great", "fine", "superb", "lovely", "bright"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "grim"]
FILLER = ["the", "film", "was", "plot", "a", "very", "it"]


def sentiment_task(num_samples=48, seed=0):
    """Short phrases labelled by whether they hold a positive word."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(num_samples):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        words = list(rng.choice(FILLER, size=rng.integers(0, 2))) + [word]
        texts.append(" ".join(words))
        labels.append(label)
    return tokenize(texts, SEQ), np.array(labels)


def build(backend, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    config = dict(SMALL, num_classes=2, sequence_length=SEQ, dropout=0.0,
                  backend=backend)
    config.update(kwargs)
    return text_transformer_exits(**config)


def outputs(model, x):
    out = model(x, training=False)
    return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}


# --------------------------------------------------------------- tokenizer
def test_tokenize_cls_first_sep_then_padding():
    ids = tokenize(["Ab!", "x" * 40, "é"], sequence_length=8)
    assert ids.dtype == np.int32 and ids.shape == (3, 8)
    assert ids[:, 0].tolist() == [CHARACTERS.cls_id] * 3
    a, b, bang = (CHARACTERS.encode(c)[0] for c in "ab!")
    assert ids[0].tolist() == [2, a, b, bang, 3, 0, 0, 0]
    assert ids[1, -1] == CHARACTERS.sep_id  # truncated, [SEP] kept
    assert ids[2, :3].tolist() == [2, CHARACTERS.unk_id, 3]
    assert CHARACTERS.decode(ids[0]) == "ab!"
    assert CHARACTERS.size == VOCABULARY_SIZE == 61
    assert CHARACTERS.tokens[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def test_word_vocabulary_from_texts():
    vocab = TextVocabulary.from_texts(
        ["A good film, good plot", "a bad film"], max_size=7)
    assert vocab.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a",
                            "film", "good"]
    assert vocab.tokenize("Good bad", 5).tolist() == [[2, 6, 1, 3, 0]]
    assert TextVocabulary(**vocab.get_config()).tokens == vocab.tokens


@pytest.mark.parametrize("call, match", [
    (lambda: tokenize(["a"], 2), "sequence_length"),
    (lambda: tokenize([1, 2], 8), "texts"),
    (lambda: tokenize(["a"], 8, vocabulary="chars"), "vocabulary"),
    (lambda: TextVocabulary(["ab"], level="char"), "tokens"),
    (lambda: TextVocabulary(["a"], level="bpe"), "level"),
])
def test_tokenizer_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ layers
def test_cls_head_reads_the_first_token_only():
    keras.utils.set_random_seed(0)
    head = ClsHead(3, name="exit_1")
    hidden = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(
        "float32")
    logits = keras.ops.convert_to_numpy(head(hidden))
    assert logits.shape == (2, 3)
    later = hidden.copy()
    later[:, 1:] += 5.0
    np.testing.assert_allclose(head(later), logits, atol=1e-6)
    first = hidden.copy()
    first[:, 0] += 1.0
    assert np.abs(keras.ops.convert_to_numpy(head(first)) - logits).min() \
        > 1e-4
    # The pooler is BERT's: tanh(Dense) of the [CLS] vector, then logits.
    pooled = np.tanh(hidden[:, 0] @ head.pooler_dense.kernel.numpy()
                     + head.pooler_dense.bias.numpy())
    np.testing.assert_allclose(
        pooled @ head.logits.kernel.numpy() + head.logits.bias.numpy(),
        logits, atol=1e-5)


def test_layer_configs_round_trip():
    for layer in (ClsHead(4, pooler=False, dropout=0.2, token_index=1),
                  TextEncoderLayer(2, 32, dropout=0.2),
                  TextEmbedding(50, 16, max_sequence_length=8),
                  TokenPaddingMask(padding_id=3)):
        config = layer.get_config()
        again = type(layer).from_config(config)
        assert again.get_config() == config


@pytest.mark.parametrize("call, match", [
    (lambda: ClsHead(1), "num_classes"),
    (lambda: ClsHead(3, token_index=-1), "token_index"),
    (lambda: ClsHead(3)(np.zeros((2, 8), "float32")), "input_shape"),
    (lambda: TextEncoderLayer(3, 8)(np.zeros((1, 4, 8), "float32")),
     "num_heads"),
    (lambda: TextEncoderLayer(2, 8, dropout=1.0), "dropout"),
    (lambda: TextEmbedding(50, 8, max_sequence_length=4)(
        np.zeros((1, 6), "int32")), "max_sequence_length"),
])
def test_layer_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------- model
@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_state_and_costs(backend):
    model = build(backend)
    x, _ = sentiment_task(4)
    out = outputs(model, x)
    assert model.name == "text_transformer"
    assert list(out) == model.exit_names == ["exit_1", "exit_2", "exit_3"]
    assert all(v.shape == (4, 2) for v in out.values())
    token_input = model.segments[0].inputs[0]
    assert tuple(token_input.shape) == (None, SEQ)
    assert token_input.dtype == "int32"
    # The state between stages is the tuple (hidden, padding mask).
    state = model.segments[0](x)
    assert [tuple(t.shape) for t in state] == [(4, SEQ, 16), (4, SEQ)]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(state[1]),
                                  (x != 0).astype("int32"))
    state = model.segments[1](state)
    assert tuple(state[0].shape) == (4, SEQ, 16)
    flops, params = model.flops_per_exit(), model.params_per_exit()
    assert len(flops) == len(params) == 3
    assert 0 < flops[0] < flops[1] < flops[2]
    assert 0 < params[0] < params[1] < params[2]
    # Equal layers (one encoder layer + one head) cost equal FLOPs.
    assert flops[2] - flops[1] == flops[1] - flops[0]


@pytest.mark.skipif(not tt.keras_hub_available(),
                    reason="keras-hub is not installed")
def test_backends_have_the_same_cost():
    hub, builtin = build("keras_hub"), build("builtin")
    assert hub.flops_per_exit() == builtin.flops_per_exit()
    # keras-hub's segment embedding keeps both segment rows (hidden_dim
    # more weights); everything else is the same architecture.
    assert np.array(hub.params_per_exit()) - np.array(
        builtin.params_per_exit()) == pytest.approx([16] * 3)


@pytest.mark.skipif(not tt.keras_hub_available(),
                    reason="keras-hub is not installed")
def test_builtin_layers_compute_keras_hub_bert():
    """With keras-hub's weights, the builtin model gives its outputs."""
    hub, builtin = build("keras_hub"), build("builtin", seed=1)
    source = {w.path: np.array(w) for s in hub.segments for w in s.weights}
    renamed = {
        "embeddings/token_embedding/embeddings": "token_embedding/embeddings",
        "embeddings/position_embeddings": "position_embedding/embeddings",
        **{f"embeddings/embeddings_layer_norm/{n}":
           f"embeddings_layer_norm/{n}" for n in ("gamma", "beta")},
    }
    for segment in builtin.segments:
        for w in segment.weights:
            if w.path == "embeddings/segment_embedding":
                w.assign(source["segment_embedding/embeddings"][0])
            else:
                w.assign(source[renamed.get(w.path, w.path)])
    for a, b in zip(hub.heads, builtin.heads):
        b.set_weights(a.get_weights())
    x, _ = sentiment_task(4)
    a, b = outputs(hub, x), outputs(builtin, x)
    for name in hub.exit_names:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_is_ignored(backend):
    """Padding beyond the text leaves every exit unchanged.

    A model over 8 tokens with the same weights (positions come from the
    same table) must give the logits of the 16-token model on texts that
    fit in 8 tokens: the 8 extra padding positions are never attended to.
    """
    long = build(backend, max_sequence_length=SEQ)
    short = build(backend, seed=1, sequence_length=8,
                  max_sequence_length=SEQ)
    short.set_weights(long.get_weights())
    x = tokenize(["ab", "a fine", "dull"], SEQ)
    assert (x[:, 8:] == 0).all() and (x[:, 1:8] != 0).any()
    a, b = outputs(long, x), outputs(short, x[:, :8])
    for name in long.exit_names:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)
    # The real tokens do matter: changing one changes the [CLS] exits.
    changed = x.copy()
    changed[:, 1] = CHARACTERS.encode("z")[0]
    c = outputs(long, changed)
    assert all(np.abs(c[n] - a[n]).max() > 1e-5 for n in long.exit_names)


def test_learns_the_toy_task():
    model = build("builtin", num_layers=2)
    x, y = sentiment_task(96)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=12, batch_size=16, verbose=0)
    assert history.history["exit_2_accuracy"][-1] > 0.9


# ------------------------------------------------------------------ export
# -------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="bert"), "backend"),
    (dict(num_heads=3), "num_heads"),
    (dict(max_sequence_length=8), "max_sequence_length"),
    (dict(sequence_length=1), "sequence_length"),
    (dict(vocabulary_size=4), "vocabulary_size"),
    (dict(dropout=1.5), "dropout"),
    (dict(num_classes=1), "num_classes"),
])
def test_argument_errors(kwargs, match):
    config = dict(SMALL, num_classes=2, sequence_length=SEQ,
                  backend="builtin")
    config.update(kwargs)
    with pytest.raises(ValueError, match=match):
        text_transformer_exits(**config)


@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="builtin"), "preset"),
    (dict(num_layers=2), "num_layers"),
    (dict(preset=""), "preset"),
])
def test_preset_argument_errors(kwargs, match):
    config = dict(num_classes=2, preset="bert_tiny_en_uncased")
    config.update(kwargs)
    with pytest.raises(ValueError, match=match):
        text_transformer_exits(**config)


def test_keras_hub_backend_without_keras_hub(monkeypatch):
    monkeypatch.setattr(tt, "keras_hub_available", lambda: False)
    with pytest.raises(ImportError, match="pip install keras-hub"):
        text_transformer_exits(2, backend="keras_hub")
    with pytest.raises(ImportError, match="pip install keras-hub"):
        text_transformer_exits(2, preset="bert_tiny_en_uncased")
    model = text_transformer_exits(2, sequence_length=8, num_layers=1,
                                   hidden_dim=8, num_heads=2)
    assert isinstance(model.segments[0].layers[-1], TextEncoderLayer)


def test_auto_backend_prefers_keras_hub():
    model = text_transformer_exits(2, sequence_length=8, num_layers=1,
                                   hidden_dim=8, num_heads=2)
    encoder = type(model.segments[0].layers[-1])
    expected = "keras_hub" if tt.keras_hub_available() else "keras_eexit"
    assert encoder.__module__.startswith(expected)


def test_preset_loads_a_local_preset(tmp_path):
    """A preset directory saved by keras-hub: no download needed."""
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=12, dropout=0.0)
    backbone.save_to_preset(str(tmp_path))
    model = text_transformer_exits(3, sequence_length=10,
                                   preset=str(tmp_path), dropout=0.0)
    assert model.exit_names == ["exit_1", "exit_2"]
    # The stages compute the preset's encoder on single-segment inputs.
    x = np.array([[2, 7, 9, 4, 3, 0, 0, 0, 0, 0],
                  [2, 5, 3, 0, 0, 0, 0, 0, 0, 0]], "int32")
    state = x
    for segment in model.segments:
        state = segment(state)
    expected = backbone({"token_ids": x, "segment_ids": np.zeros_like(x),
                         "padding_mask": (x != 0).astype("int32")})
    np.testing.assert_allclose(state[0], expected["sequence_output"],
                               atol=1e-5)
    # Every head's pooler starts from the preset's pooler.
    for head in model.heads:
        np.testing.assert_array_equal(head.pooler_dense.kernel.numpy(),
                                      backbone.pooled_dense.kernel.numpy())
    with pytest.raises(ValueError, match="sequence_length"):
        text_transformer_exits(3, sequence_length=16, preset=str(tmp_path))


def test_preset_that_cannot_load(monkeypatch):
    keras_hub = pytest.importorskip("keras_hub")

    def offline(preset, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(keras_hub.models.BertBackbone, "from_preset",
                        staticmethod(offline))
    with pytest.raises(RuntimeError, match="internet access"):
        text_transformer_exits(3, preset="bert_tiny_en_uncased")
