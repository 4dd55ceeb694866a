"""Tests of the exit heads in `keras_eexit.layers`."""

import keras
import numpy as np
import pytest

from keras_eexit.layers import HEADS
from keras_eexit.layers import ConvPoolHead
from keras_eexit.layers import LinearHead
from keras_eexit.layers import MLPHead
from keras_eexit.layers import SDNPoolHead
from keras_eexit.layers import get_head
from keras_eexit.testing import run_layer_test

NUM_CLASSES = 3
ALL_HEADS = [LinearHead, SDNPoolHead, ConvPoolHead, MLPHead]
BATCH = 4

# Feature shapes (without batch) for input ranks 2, 3 and 4.
FEATURE_SHAPES = {2: (6,), 3: (8, 3), 4: (8, 8, 3)}

# (head class, constructor arguments) grid: defaults plus notable options.
HEAD_CASES = [
    (LinearHead, {}),
    (LinearHead, {"pooling": "max", "dropout": 0.25}),
    (SDNPoolHead, {}),
    (SDNPoolHead, {"reduced_size": 2}),
    (ConvPoolHead, {"filters": 4, "hidden_units": 5}),
    (
        ConvPoolHead,
        {
            "filters": 4,
            "hidden_units": 5,
            "second_pool": False,
            "flatten": True,
        },
    ),
    (MLPHead, {"hidden_units": (8, 4), "activation": "gelu", "dropout": 0.1}),
    (MLPHead, {"hidden_units": 3, "pooling": "max"}),
]


def _case_id(case):
    cls, kwargs = case
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{cls.__name__}({args})"


def _features(rank, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH,) + FEATURE_SHAPES[rank]).astype("float32")


def run_head_test(cls, kwargs, rank, tmp_path):
    """The layer contract at one input rank (mixed policies: once per head,
    in `test_layer_contract.py`)."""
    keras.utils.set_random_seed(rank)
    run_layer_test(cls, {"num_classes": NUM_CLASSES, "name": "exit_1",
                         **kwargs},
                   _features(rank), expected_output_shape=(BATCH, NUM_CLASSES),
                   policies=(), directory=tmp_path)


@pytest.mark.parametrize("rank", [2, 3, 4])
@pytest.mark.parametrize("case", HEAD_CASES, ids=_case_id)
def test_head(case, rank, tmp_path):
    cls, kwargs = case
    run_head_test(cls, kwargs, rank, tmp_path)


@pytest.mark.parametrize("cls", ALL_HEADS)
def test_mixed_precision_logits_are_float32(cls):
    head = cls(NUM_CLASSES, dtype="mixed_bfloat16")
    inputs = keras.Input((8, 8, 3))
    assert keras.backend.standardize_dtype(head(inputs).dtype) == "float32"
    outputs = head(_features(4))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    # The layers before the logits compute in the mixed dtype.
    sublayers = head._flatten_layers(include_self=False)
    dtypes = {layer.name: layer.compute_dtype for layer in sublayers}
    assert dtypes.pop("logits") == "float32"
    assert set(dtypes.values()) <= {"bfloat16"}


def test_full_precision_logits_follow_policy():
    head = LinearHead(NUM_CLASSES, dtype="float64")
    outputs = head(_features(4).astype("float64"))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float64"


# --- SDNPoolHead: closed form -------------------------------------------------


def _np_pool(x, pool_size, reduce):
    """Non-overlapping 'valid' pooling of a channels-last numpy array."""
    batch, channels = x.shape[0], x.shape[-1]
    spatial = x.shape[1:-1]
    out = [d // p for d, p in zip(spatial, pool_size)]
    crop = tuple(slice(0, o * p) for o, p in zip(out, pool_size))
    x = x[(slice(None),) + crop]
    blocks = []
    for o, p in zip(out, pool_size):
        blocks += [o, p]
    x = x.reshape((batch, *blocks, channels))
    return reduce(x, axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


def _np_dense(head, features):
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in head.logits.weights)
    return features.reshape(features.shape[0], -1) @ kernel + bias


@pytest.mark.parametrize(
    "shape, pool_size",
    [((8, 8, 3), (2, 2)), ((9, 13, 2), (2, 3)), ((12, 3), (3,))],
)
@pytest.mark.parametrize("alpha", [1.0, 0.0, 0.3])
def test_sdn_pool_closed_form(shape, pool_size, alpha):
    x = np.random.default_rng(1).normal(size=(2,) + shape).astype("float32")
    head = SDNPoolHead(NUM_CLASSES, reduced_size=4)
    head.build((None,) + shape)
    assert head.max_pool.pool_size == pool_size
    head.alpha.assign(alpha)
    mixed = alpha * _np_pool(x, pool_size, np.max) + (1.0 - alpha) * _np_pool(
        x, pool_size, np.mean
    )
    expected = _np_dense(head, mixed)
    actual = keras.ops.convert_to_numpy(head(x))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 4, 3), (7, 7, 2), (5, 3), (6,)])
def test_sdn_pool_no_reduction_when_small(shape):
    x = np.random.default_rng(2).normal(size=(2,) + shape).astype("float32")
    head = SDNPoolHead(NUM_CLASSES, reduced_size=4)
    outputs = keras.ops.convert_to_numpy(head(x))
    assert head.alpha is None and head.max_pool is None
    expected = _np_dense(head, x)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def test_sdn_pool_alpha_initialised_in_unit_interval():
    keras.utils.set_random_seed(3)
    for _ in range(5):
        head = SDNPoolHead(NUM_CLASSES)
        head.build((None, 16, 16, 2))
        alpha = float(keras.ops.convert_to_numpy(head.alpha))
        assert 0.0 <= alpha <= 1.0
        assert head.alpha.trainable


def test_sdn_pool_requires_static_spatial_dims():
    with pytest.raises(ValueError, match="known \\(static\\) spatial"):
        SDNPoolHead(NUM_CLASSES).build((None, None, None, 3))


# --- ConvPoolHead: structure --------------------------------------------------


def _max_pools(head):
    return [
        layer
        for layer in head._flatten_layers(include_self=False)
        if isinstance(
            layer, (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D)
        )
    ]


@pytest.mark.parametrize(
    "shape, pool_type",
    [
        ((8, 8, 3), keras.layers.MaxPooling2D),
        ((8, 3), keras.layers.MaxPooling1D),
    ],
)
@pytest.mark.parametrize("second_pool, count", [(True, 2), (False, 1)])
def test_conv_pool_number_of_max_pools(shape, pool_type, second_pool, count):
    head = ConvPoolHead(
        NUM_CLASSES, filters=4, hidden_units=4, second_pool=second_pool
    )
    head.build((None,) + shape)
    pools = _max_pools(head)
    assert len(pools) == count
    assert all(isinstance(pool, pool_type) for pool in pools)


@pytest.mark.parametrize(
    "shape, count, flat_size",
    [
        ((1, 1, 3), 0, 4),  # both pools skipped
        ((2, 2, 3), 1, 4),  # second pool skipped: the map is already 1x1
        ((1, 6, 3), 2, 2 * 4),  # height kept at 1, width 6 -> 3 -> 2
        ((7, 5, 3), 2, 2 * 2 * 4),  # "same" padding: 7 -> 4 -> 2, 5 -> 3 -> 2
        ((1, 3), 0, 4),
    ],
)
def test_conv_pool_never_shrinks_below_one(shape, count, flat_size):
    head = ConvPoolHead(NUM_CLASSES, filters=4, hidden_units=5, flatten=True)
    x = np.ones((2,) + shape, dtype="float32")
    assert tuple(head(x).shape) == (2, NUM_CLASSES)
    assert len(_max_pools(head)) == count
    assert head.hidden.kernel.shape == (flat_size, 5)


def test_conv_pool_unknown_spatial_dims_with_global_pooling():
    inputs = keras.Input((None, None, 3))
    head = ConvPoolHead(NUM_CLASSES, filters=4, hidden_units=4)
    assert tuple(head(inputs).shape) == (None, NUM_CLASSES)
    x = np.ones((2, 5, 3, 3), dtype="float32")
    assert tuple(head(x).shape) == (2, NUM_CLASSES)


def test_conv_pool_rank2_skips_conv_part():
    head = ConvPoolHead(NUM_CLASSES, filters=4, hidden_units=5)
    head.build((None, 6))
    assert head.conv is None and not _max_pools(head)
    assert head.hidden.kernel.shape == (6, 5)


def test_conv_pool_flatten_requires_static_spatial_dims():
    with pytest.raises(ValueError, match="known \\(static\\) spatial"):
        ConvPoolHead(NUM_CLASSES, flatten=True).build((None, None, 8, 3))


def test_mlp_head_layer_sizes():
    head = MLPHead(NUM_CLASSES, hidden_units=(7, 5))
    head.build((None, 4, 4, 6))
    kernels = [layer.kernel.shape for layer in head.hidden_layers]
    assert kernels == [(6, 7), (7, 5)]
    assert head.logits.kernel.shape == (5, NUM_CLASSES)
    assert MLPHead(NUM_CLASSES, hidden_units=9).hidden_units == (9,)


def test_global_pooling_modes():
    x = np.random.default_rng(4).normal(size=(2, 3, 5, 4)).astype("float32")
    for pooling, reduce in [("avg", np.mean), ("max", np.max)]:
        head = LinearHead(NUM_CLASSES, pooling=pooling)
        outputs = keras.ops.convert_to_numpy(head(x))
        expected = _np_dense(head, reduce(x, axis=(1, 2)))
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


# --- Registry -----------------------------------------------------------------


def test_heads_registry():
    assert HEADS == {
        "linear": LinearHead,
        "sdn_pool": SDNPoolHead,
        "conv_pool": ConvPoolHead,
        "mlp": MLPHead,
    }


@pytest.mark.parametrize("name, cls", sorted(HEADS.items()))
def test_get_head_by_name(name, cls):
    first = get_head(name, NUM_CLASSES, name="exit_1")
    second = get_head(name, NUM_CLASSES, name="exit_2")
    assert isinstance(first, cls) and isinstance(second, cls)
    assert first is not second
    assert (first.name, second.name) == ("exit_1", "exit_2")
    assert first.num_classes == NUM_CLASSES


def test_get_head_forwards_kwargs_and_class():
    head = get_head("linear", 5, dropout=0.2, pooling="max")
    assert (head.dropout, head.pooling, head.num_classes) == (0.2, "max", 5)
    head = get_head(MLPHead, 5, name="exit_3", hidden_units=(4,))
    assert isinstance(head, MLPHead) and head.name == "exit_3"
    assert head.hidden_units == (4,)


def test_get_head_with_factory():
    calls = []

    def factory(num_classes, name=None):
        calls.append((num_classes, name))
        return keras.layers.Dense(num_classes, name=name)

    first = get_head(factory, 4, name="exit_1")
    second = get_head(factory, 4, name="exit_2")
    assert isinstance(first, keras.layers.Dense) and first is not second
    assert calls == [(4, "exit_1"), (4, "exit_2")]


def test_get_head_unknown_name_lists_choices():
    with pytest.raises(ValueError) as info:
        get_head("linaer", NUM_CLASSES)
    message = str(info.value)
    assert "linaer" in message
    for name in HEADS:
        assert name in message


@pytest.mark.parametrize(
    "head, match",
    [
        (LinearHead(NUM_CLASSES), "not a layer instance"),
        (42, "a head name"),
        (lambda num_classes, name=None: "not a layer", "a factory returning"),
    ],
)
def test_get_head_rejects_bad_heads(head, match):
    with pytest.raises(ValueError, match=match):
        get_head(head, NUM_CLASSES)


# --- Argument validation ------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_HEADS)
@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.5, True, "3", None])
def test_invalid_num_classes(cls, num_classes):
    with pytest.raises(ValueError, match="Expected an integer >= 2"):
        cls(num_classes)


@pytest.mark.parametrize("cls", [LinearHead, ConvPoolHead, MLPHead])
@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, "0.5", None])
def test_invalid_dropout(cls, dropout):
    with pytest.raises(ValueError, match="argument `dropout`"):
        cls(NUM_CLASSES, dropout=dropout)


@pytest.mark.parametrize("cls", [LinearHead, MLPHead])
def test_invalid_pooling(cls):
    with pytest.raises(ValueError, match="Valid choices: \\['avg', 'max'\\]"):
        cls(NUM_CLASSES, pooling="sum")


@pytest.mark.parametrize(
    "cls, kwargs, argument",
    [
        (SDNPoolHead, {"reduced_size": 0}, "reduced_size"),
        (SDNPoolHead, {"reduced_size": 2.0}, "reduced_size"),
        (ConvPoolHead, {"filters": 0}, "filters"),
        (ConvPoolHead, {"hidden_units": -1}, "hidden_units"),
        (ConvPoolHead, {"second_pool": "yes"}, "second_pool"),
        (ConvPoolHead, {"flatten": 1}, "flatten"),
        (MLPHead, {"hidden_units": 0}, "hidden_units"),
        (MLPHead, {"hidden_units": (8, 0)}, "hidden_units"),
        (MLPHead, {"hidden_units": "64"}, "hidden_units"),
        (MLPHead, {"hidden_units": (8, 2.5)}, "hidden_units"),
        (MLPHead, {"hidden_units": ()}, "hidden_units"),
    ],
)
def test_invalid_sizes(cls, kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        cls(NUM_CLASSES, **kwargs)


@pytest.mark.parametrize("cls", ALL_HEADS)
@pytest.mark.parametrize(
    "shape", [(None,), (None, 2, 2, 2, 3), (None, 4, None)]
)
def test_invalid_input_shape(cls, shape):
    with pytest.raises(ValueError, match="argument `input_shape`"):
        cls(NUM_CLASSES).build(shape)
