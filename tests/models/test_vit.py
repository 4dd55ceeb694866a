"""`vit_exits` and its layers: shapes, closed-form costs, saving, training,
LiteRT export and argument errors."""

import keras
import numpy as np
import pytest

from keras_eexit import MultiExitModel
from keras_eexit.layers.token_head import TokenHead
from keras_eexit.layers.add_position_embedding import AddPositionEmbedding
from keras_eexit.layers.transformer_block import TransformerBlock
from keras_eexit.models.vit import vit_exits

# A reduced configuration: 16x16 images, 4x4 patches (16 tokens + class).
SMALL = dict(image_size=16, patch_size=4, dim=16, depth=3, heads=2,
             mlp_dim=24, exits_after=(1, 2))


def _images(model, batch=4, seed=0):
    shape = tuple(model.segments[0].inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(batch,) + shape).astype("float32")


def _block_params(d, m):
    # 2 LayerNorms, q/k/v/output projections with biases, 2-layer MLP.
    return 2 * 2 * d + 4 * (d * d + d) + (d * m + m) + (m * d + d)


def _closed_form_params(num_classes, image_size, patch_size, dim, depth,
                        mlp_dim, exits, channels=3, pooling="cls",
                        internal_norm=False):
    """Cumulative parameters of segments and heads up to each exit."""
    tokens = (image_size // patch_size) ** 2 + (pooling == "cls")
    embedding = (patch_size * patch_size * channels * dim + dim  # conv
                 + (dim if pooling == "cls" else 0)  # class token
                 + tokens * dim)  # position embedding
    dense = dim * num_classes + num_classes
    totals, previous = [], 0
    running = embedding
    for k, block in enumerate(exits):
        running += (block - previous) * _block_params(dim, mlp_dim)
        previous = block
        norm = k == len(exits) - 1 or internal_norm
        running += dense + (2 * dim if norm else 0)
        totals.append(running)
    return totals


def _closed_form_macs(num_classes, image_size, patch_size, dim, depth,
                      mlp_dim, exits, channels=3, pooling="cls"):
    """Cumulative multiply-adds up to each exit (batch of one).

    Per block with T tokens: q, k, v and output projections 4*T*d^2,
    attention scores Q K^T and the weighted sum of values 2*T^2*d (over all
    heads), the MLP 2*T*d*m. Patch embedding: one kernel of p*p*c inputs
    per output of the (N, d) token grid. Each head: one d x C product.
    """
    patches = (image_size // patch_size) ** 2
    t = patches + (pooling == "cls")
    block = 4 * t * dim * dim + 2 * t * t * dim + 2 * t * dim * mlp_dim
    running = patches * patch_size * patch_size * channels * dim
    totals, previous = [], 0
    for b in exits:
        running += (b - previous) * block + dim * num_classes
        previous = b
        totals.append(running)
    return totals


# --------------------------------------------------------------- the paper
@pytest.fixture(scope="module")
def paper_model():
    keras.utils.set_random_seed(0)
    return vit_exits(num_classes=10)


def test_default_size_outputs_are_named_logits(paper_model):
    model = paper_model
    names = [f"exit_{k}" for k in range(1, 7)]
    assert isinstance(model, MultiExitModel)
    assert model.exit_names == names
    assert [h.name for h in model.heads] == names
    assert model.num_classes == 10
    assert tuple(model.segments[0].inputs[0].shape) == (None, 32, 32, 3)
    out = model(np.zeros((2, 32, 32, 3), "float32"))
    assert sorted(out) == names
    assert all(tuple(out[n].shape) == (2, 10) for n in names)
    # Segment 1 = embedding + blocks 1-2; then one block per segment.
    blocks = [[layer.name for layer in s.layers
               if isinstance(layer, TransformerBlock)]
              for s in model.segments]
    assert blocks == [["block_1", "block_2"]] + [
        [f"block_{b}"] for b in range(3, 8)]
    # Internal exits: a Dense on the class token; the final exit: norm too.
    assert [h.norm for h in model.heads] == [False] * 5 + [True]
    assert all(h.pooling == "cls" for h in model.heads)


def test_default_size_parameters_match_closed_form(paper_model):
    expected = _closed_form_params(10, 32, 4, 256, 7, 1024,
                                   [2, 3, 4, 5, 6, 7])
    assert paper_model.params_per_exit() == expected
    assert expected[-1] == 5_573_692


def test_default_size_macs_match_closed_form(paper_model):
    expected = _closed_form_macs(10, 32, 4, 256, 7, 1024,
                                 [2, 3, 4, 5, 6, 7])
    assert paper_model.macs_per_exit() == expected
    assert paper_model.flops_per_exit() == [2 * m for m in expected]


@pytest.mark.parametrize("pooling,internal_norm", [
    ("cls", False), ("mean", True)])
def test_small_macs_and_params_match_closed_form(pooling, internal_norm):
    config = dict(SMALL, exits_after=(1, 3), mlp_dim=40)
    model = vit_exits(num_classes=5, pooling=pooling,
                      internal_norm=internal_norm, **config)
    args = (5, 16, 4, 16, 3, 40, [1, 3])
    assert model.macs_per_exit() == _closed_form_macs(*args,
                                                      pooling=pooling)
    assert model.params_per_exit() == _closed_form_params(
        *args, pooling=pooling, internal_norm=internal_norm)


def test_attention_products_are_counted():
    """One block's FLOPs include Q K^T and A V (2 * T^2 * d multiply-adds)."""
    import tensorflow as tf

    from keras_eexit.models.flops import count_flops

    t, d, m = 9, 8, 12
    block = TransformerBlock(d, 2, m)
    block.build((1, t, d))
    flops = count_flops(block, tf.TensorSpec((1, t, d), "float32"))
    projections_and_mlp = 4 * t * d * d + 2 * t * d * m
    assert flops == 2 * (projections_and_mlp + 2 * t * t * d)


def test_final_exit_is_appended_and_positions_follow_arguments():
    model = vit_exits(num_classes=3, **dict(SMALL, exits_after=[2]))
    assert model.num_exits == 2
    blocks = [[layer.name for layer in s.layers
               if isinstance(layer, TransformerBlock)]
              for s in model.segments]
    assert blocks == [["block_1", "block_2"], ["block_3"]]


def test_mean_pooling_has_no_class_token():
    model = vit_exits(num_classes=3, pooling="mean", **SMALL)
    embedding = model.segments[0].get_layer("position_embedding")
    assert not embedding.class_token
    assert tuple(model.segments[0].outputs[0].shape) == (None, 16, 16)
    out = model(_images(model))
    assert all(tuple(v.shape) == (4, 3) for v in out.values())


def test_damping_heads_have_an_extra_unit(tmp_path):
    model = vit_exits(num_classes=4, damping=True, **SMALL)
    x = _images(model)
    out = model(x)
    assert all(tuple(v.shape) == (4, 5) for v in out.values())
    assert model.num_classes == 4
    model.save(tmp_path / "damping.keras")
    loaded = keras.saving.load_model(tmp_path / "damping.keras",
                                     safe_mode=True)
    assert isinstance(loaded.heads[0].head, TokenHead)
    for name, value in loaded(x).items():
        np.testing.assert_allclose(value, out[name], atol=1e-6)


# ----------------------------------------------------------- serialization
def test_layer_configs_round_trip():
    for layer in (
        TransformerBlock(8, 2, 12, dropout=0.1, attention_dropout=0.2,
                         activation="relu", epsilon=1e-5, norm_first=False),
        AddPositionEmbedding(class_token=False, initializer_stddev=0.1),
        TokenHead(3, pooling="mean", norm=False, dropout=0.3),
    ):
        config = keras.saving.serialize_keras_object(layer)
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(layer)
        assert clone.get_config() == layer.get_config()


# ------------------------------------------------------------- the layers
def test_transformer_block_matches_a_hand_computation():
    keras.utils.set_random_seed(0)
    block = TransformerBlock(4, 2, 6)
    x = np.random.default_rng(0).normal(size=(1, 3, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(block(x))

    def norm(v, layer):
        mean = v.mean(-1, keepdims=True)
        var = v.var(-1, keepdims=True)
        return ((v - mean) / np.sqrt(var + 1e-6) * np.array(layer.gamma)
                + np.array(layer.beta))

    att = block.attention
    h = norm(x[0], block.norm_1)
    q, k, v = (np.einsum("td,dnh->tnh", h, np.array(p.kernel))
               + np.array(p.bias) for p in (att._query_dense,
                                            att._key_dense,
                                            att._value_dense))
    scores = np.einsum("tnh,snh->nts", q, k) / np.sqrt(2.0)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("nts,snh->tnh", weights, v)
    attended = (np.einsum("tnh,nhd->td", heads,
                          np.array(att._output_dense.kernel))
                + np.array(att._output_dense.bias))
    r = x[0] + attended
    hidden = norm(r, block.norm_2) @ np.array(block.mlp_hidden.kernel) + \
        np.array(block.mlp_hidden.bias)
    from scipy.special import erf

    hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2.0)))
    out = r + hidden @ np.array(block.mlp_output.kernel) + np.array(
        block.mlp_output.bias)
    np.testing.assert_allclose(y[0], out, atol=1e-5)


def test_transformer_block_masks():
    keras.utils.set_random_seed(0)
    block = TransformerBlock(8, 2, 16)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    changed = x.copy()
    changed[:, 3:] = rng.normal(size=(2, 2, 8))
    mask = np.array([[True] * 3 + [False] * 2] * 2)
    # Padding tokens do not influence the real tokens.
    a = keras.ops.convert_to_numpy(block(x, mask=mask))
    b = keras.ops.convert_to_numpy(block(changed, mask=mask))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-5)
    unmasked = keras.ops.convert_to_numpy(block(changed))
    assert not np.allclose(unmasked[:, :3], b[:, :3], atol=1e-3)
    # An explicit attention mask does the same.
    attention = np.broadcast_to(mask[:, None, :], (2, 5, 5))
    c = keras.ops.convert_to_numpy(block(changed, attention_mask=attention))
    np.testing.assert_allclose(c[:, :3], b[:, :3], atol=1e-5)
    # Masks propagate through Keras' masking (e.g. Embedding(mask_zero)).
    tokens = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(10, 8, mask_zero=True)(tokens)
    pooled = TokenHead(3, pooling="mean")(block(embedded))
    keras.Model(tokens, pooled)(np.array([[1, 2, 0, 0, 0]]))


def test_add_position_embedding_prepends_the_class_token():
    layer = AddPositionEmbedding()
    x = np.ones((2, 4, 3), "float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 5, 3)
    position = np.array(layer.position)[0]
    np.testing.assert_allclose(y[:, 0], np.broadcast_to(position[0], (2, 3)))
    np.testing.assert_allclose(y[:, 1:], 1 + np.broadcast_to(
        position[1:], (2, 4, 3)), atol=1e-6)


def test_token_head_reads_the_class_token_or_the_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6)).astype("float32")
    cls = TokenHead(3, norm=False)
    mean = TokenHead(3, pooling="mean", norm=False)
    for head, summary in ((cls, x[:, 0]), (mean, x.mean(1))):
        y = keras.ops.convert_to_numpy(head(x))
        np.testing.assert_allclose(
            y, summary @ np.array(head.logits.kernel)
            + np.array(head.logits.bias), atol=1e-5)


# --------------------------------------------------------------- training
def _data(model, n=16, classes=3):
    x = _images(model, batch=n)
    y = np.random.default_rng(1).integers(0, classes, size=n)
    return x, y


# ------------------------------------------------------------------ export
# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("kwargs,argument", [
    ({"image_size": 30}, "patch_size"),
    ({"patch_size": 0}, "patch_size"),
    ({"heads": 5}, "heads"),
    ({"dim": 2.5}, "dim"),
    ({"depth": 0}, "depth"),
    ({"mlp_dim": -1}, "mlp_dim"),
    ({"exits_after": [0, 2]}, "exits_after"),
    ({"exits_after": [3, 8]}, "exits_after"),
    ({"exits_after": [3, 3]}, "exits_after"),
    ({"exits_after": []}, "exits_after"),
    ({"dropout": 1.0}, "dropout"),
    ({"head_dropout": -0.1}, "head_dropout"),
    ({"internal_norm": "yes"}, "internal_norm"),
    ({"num_classes": 1}, "num_classes"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        vit_exits(**kwargs)


def test_bad_pooling_lists_choices():
    with pytest.raises(ValueError, match=r"pooling.*\['cls', 'mean'\]"):
        vit_exits(pooling="max")


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="`heads`"):
        TransformerBlock(10, 3, 8)
    with pytest.raises(ValueError, match="`input_shape`"):
        TransformerBlock(8, 2, 8)(np.zeros((1, 3, 6), "float32"))
    with pytest.raises(ValueError, match="`input_shape`"):
        TokenHead(3)(np.zeros((1, 6), "float32"))
    with pytest.raises(ValueError, match="pooling"):
        TokenHead(3, pooling="max")
