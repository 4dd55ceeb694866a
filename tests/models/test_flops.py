"""Tests of the analytic FLOP counter and its TF-profiler cross-check."""

import keras
import pytest
import tensorflow as tf

from keras_eexit.models.flops import count_flops
from keras_eexit.models.flops import count_params
from keras_eexit.models.flops import profiler_flops


def spec(*shape):
    return tf.TensorSpec(shape, tf.float32)


# -- closed forms, one layer at a time ----------------------------------------


def test_dense():
    assert count_flops(keras.layers.Dense(5), spec(1, 7)) == 2 * 7 * 5


def test_dense_counts_batch():
    assert count_flops(keras.layers.Dense(5), spec(3, 7)) == 3 * 2 * 7 * 5


def test_dense_on_sequence_uses_batch_matmul():
    # Dense on a rank-3 input lowers to a broadcast BatchMatMulV2.
    assert count_flops(keras.layers.Dense(5), spec(1, 4, 7)) == 2 * 4 * 7 * 5


def test_conv2d_same():
    layer = keras.layers.Conv2D(4, 3, padding="same")
    assert count_flops(layer, spec(1, 8, 8, 3)) == 2 * 8 * 8 * 4 * 3 * 3 * 3


def test_conv2d_valid_strided():
    layer = keras.layers.Conv2D(4, 3, strides=2, padding="valid")
    # (9 - 3) // 2 + 1 = 4 output rows and columns.
    assert count_flops(layer, spec(1, 9, 9, 3)) == 2 * 4 * 4 * 4 * 3 * 3 * 3


def test_conv2d_rectangular_kernel_and_dilation():
    layer = keras.layers.Conv2D(6, (3, 5), dilation_rate=2)
    # Effective kernel 5 x 9 on 12 x 14: output 8 x 6.
    assert count_flops(layer, spec(1, 12, 14, 2)) == 2 * 8 * 6 * 6 * 3 * 5 * 2


def test_grouped_conv2d():
    layer = keras.layers.Conv2D(4, 3, groups=2)
    # Each output channel sees 4 / 2 = 2 input channels.
    assert count_flops(layer, spec(1, 8, 8, 4)) == 2 * 6 * 6 * 4 * 3 * 3 * 2


def test_conv3d():
    layer = keras.layers.Conv3D(4, 3)
    assert count_flops(layer, spec(1, 6, 6, 6, 2)) == 2 * 4**3 * 4 * 27 * 2


def test_depthwise_conv2d():
    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    assert count_flops(layer, spec(1, 8, 8, 3)) == 2 * 6 * 6 * 3 * 2 * 3 * 3


def test_separable_conv2d_is_depthwise_plus_pointwise():
    layer = keras.layers.SeparableConv2D(4, 3)
    depthwise = 2 * 6 * 6 * 3 * 3 * 3
    pointwise = 2 * 6 * 6 * 3 * 4
    assert count_flops(layer, spec(1, 8, 8, 3)) == depthwise + pointwise


def test_conv1d():
    layer = keras.layers.Conv1D(8, 5)
    assert count_flops(layer, spec(1, 40, 1)) == 2 * 36 * 8 * 5 * 1


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_transpose(padding):
    layer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding=padding)
    # Every input element meets a full 3 x 3 x 4 kernel slice.
    assert count_flops(layer, spec(1, 8, 8, 3)) == 2 * 8 * 8 * 3 * 3 * 3 * 4


def test_multi_head_attention():
    heads, key_dim, steps, width = 2, 4, 6, 8
    mha = keras.layers.MultiHeadAttention(heads, key_dim)
    projections = 3 * 2 * steps * width * heads * key_dim
    scores = 2 * heads * steps * steps * key_dim  # Q K^T (einsum)
    mixing = 2 * heads * steps * steps * key_dim  # A V (einsum)
    output = 2 * steps * heads * key_dim * width
    expected = projections + scores + mixing + output
    assert (
        count_flops(lambda x: mha(x, x), spec(1, steps, width)) == expected
    )


def test_einsum_with_ellipsis():
    w = tf.ones((5, 3))

    def fn(x):
        return tf.einsum("...ij,jk->...ik", x, w)

    assert count_flops(fn, spec(2, 4, 6, 5)) == 2 * 2 * 4 * 6 * 5 * 3


def test_transposed_matmul():
    w = tf.ones((5, 7))

    def fn(x):
        return tf.matmul(x, w, transpose_b=True)

    assert count_flops(fn, spec(3, 7)) == 2 * 3 * 7 * 5


def test_elementwise_ops_are_not_counted():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Softmax(),
        ]
    )
    assert count_flops(model, spec(1, 8, 8, 3)) == 0


# -- models and structured inputs ---------------------------------------------


def test_functional_model_sums_its_layers():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2)(x)  # 3 x 3 output
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, outputs)
    expected = (
        2 * 8 * 8 * 4 * 3 * 3 * 3 + 2 * 3 * 3 * 6 * 3 * 3 * 4 + 2 * 54 * 10
    )
    assert count_flops(model, spec(1, 8, 8, 3)) == expected


@pytest.mark.parametrize("container", [tuple, list])
def test_structured_input(container):
    a = keras.Input((7,))
    b = keras.Input((4, 4, 2))
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(3, 1)(b)
    )
    joined = keras.layers.Concatenate()([keras.layers.Dense(5)(a), pooled])
    model = keras.Model([a, b], keras.layers.Dense(2)(joined))
    expected = 2 * 7 * 5 + 2 * 4 * 4 * 3 * 2 + 2 * 8 * 2
    input_spec = container([spec(1, 7), spec(1, 4, 4, 2)])
    assert count_flops(model, input_spec) == expected


def test_callable_taking_a_state_tuple():
    # A "state" of two scales, as an MSDNet segment would take.
    fine, coarse = keras.layers.Dense(3), keras.layers.Dense(3)

    def segment(state):
        x, y = state
        return fine(x) + coarse(y)

    assert (
        count_flops(segment, (spec(1, 4), spec(1, 6))) == 2 * 4 * 3 + 2 * 6 * 3
    )


# -- control flow and nested functions ----------------------------------------


def test_nested_tf_function_is_followed():
    dense = keras.layers.Dense(5)
    dense.build((None, 7))
    inner = tf.function(lambda x: dense(x))
    assert count_flops(lambda x: inner(x) * 2.0, spec(1, 7)) == 2 * 7 * 5


def test_cond_counts_the_costlier_branch():
    small, big = tf.ones((4, 2)), tf.ones((4, 9))

    def fn(x):
        return tf.cond(
            tf.reduce_sum(x) > 0,
            lambda: tf.reduce_sum(tf.matmul(x, small)),
            lambda: tf.reduce_sum(tf.matmul(x, big)),
        )

    assert count_flops(fn, spec(1, 4)) == 2 * 4 * 9


def test_rnn_loop_counts_every_step_once():
    steps, features, units = 5, 3, 4
    lstm = keras.layers.LSTM(units)
    per_step = 2 * features * 4 * units + 2 * units * 4 * units
    assert count_flops(lstm, spec(1, steps, features)) == steps * per_step


def test_while_loop_without_static_trip_count():
    w = tf.ones((3, 3))

    def fn(x):
        _, y = tf.while_loop(
            lambda i, y: tf.reduce_sum(y) < 100.0,
            lambda i, y: (i + 1, tf.matmul(y, w)),
            (tf.constant(0), x),
        )
        return y

    with pytest.raises(ValueError, match="while_iterations"):
        count_flops(fn, spec(1, 3))
    assert count_flops(fn, spec(1, 3), while_iterations=4) == 4 * 2 * 3 * 3


# -- errors -------------------------------------------------------------------


def test_input_spec_with_wrong_shape():
    dense = keras.layers.Dense(5)
    dense.build((None, 7))
    with pytest.raises(ValueError, match="input_spec"):
        count_flops(dense, spec(1, 9))


def test_input_spec_with_wrong_structure():
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(ValueError, match="input_spec"):
        count_flops(model, spec(1, 3))


@pytest.mark.parametrize(
    "bad", [(1, 7), spec(None, 7), [spec(1, 7), "x"], []]
)
def test_malformed_input_spec(bad):
    with pytest.raises(ValueError, match="input_spec"):
        count_flops(keras.layers.Dense(5), bad)


def test_unknown_static_shape_names_the_op():
    dense = keras.layers.Dense(5, name="inner_dense")
    dense.build((None, 7))
    # Traced once with an unknown batch: its MatMul has shape (None, 5).
    inner = tf.function(
        lambda x: dense(x), input_signature=[spec(None, 7)]
    )
    with pytest.raises(ValueError, match="inner_dense.*MatMul"):
        count_flops(lambda x: inner(x), spec(1, 7))


def test_bad_while_iterations():
    with pytest.raises(ValueError, match="while_iterations"):
        count_flops(keras.layers.Dense(2), spec(1, 3), while_iterations=-1)


# -- parameters ---------------------------------------------------------------


def test_count_params_includes_non_trainable_weights():
    model = keras.Sequential(
        [
            keras.Input((7,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(),
        ]
    )
    assert count_params(model) == (7 * 5 + 5) + 4 * 5


def test_count_params_needs_a_built_layer():
    with pytest.raises(ValueError, match="not built"):
        count_params(keras.layers.Dense(5))
    with pytest.raises(ValueError, match="layer"):
        count_params("dense")


# -- cross-check against the TF profiler --------------------------------------


def test_profiler_agrees_on_a_bias_free_network():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, use_bias=False)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, use_bias=False)(x)
    model = keras.Model(inputs, outputs)
    analytic = count_flops(model, spec(1, 16, 16, 3))
    profiled = profiler_flops(model, spec(1, 16, 16, 3))
    print(f"bias-free net: analytic={analytic} profiler={profiled}")
    assert analytic == pytest.approx(profiled, rel=0.01)


def test_profiler_sees_inside_nested_functions():
    dense = keras.layers.Dense(5, use_bias=False)
    dense.build((None, 7))
    inner = tf.function(lambda x: dense(x))
    assert profiler_flops(lambda x: inner(x), spec(1, 7)) == 2 * 7 * 5


def test_mobilenet_v2_against_profiler():
    model = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    analytic = count_flops(model, spec(1, 32, 32, 3))
    profiled = profiler_flops(model, spec(1, 32, 32, 3))
    print(f"MobileNetV2 32x32: analytic={analytic} profiler={profiled}")
    assert analytic > 0
    # The profiler also counts BN, ReLU6, bias and residual additions
    # (about 3% here), never less than the multiply-adds.
    assert analytic <= profiled <= 1.06 * analytic


# -- the fvcore convention (Kubaty et al.'s reference) ------------------------


def fv(fn, *shape):
    return count_flops(fn, spec(*shape), convention="fvcore")


def test_fvcore_counts_one_per_multiply_add_and_no_bias():
    assert fv(keras.layers.Dense(5), 1, 7) == 7 * 5
    assert fv(keras.layers.Conv2D(4, 3, padding="same"), 1, 8, 8, 3) == (
        8 * 8 * 4 * 3 * 3 * 3)
    assert fv(keras.layers.Conv1D(8, 5), 1, 40, 1) == 36 * 8 * 5
    # Dense on a sequence: a broadcast matmul and a bias Add.
    assert fv(keras.layers.Dense(5), 1, 4, 7) == 4 * 7 * 5


def test_fvcore_elementwise_handlers():
    # fvcore: batch_norm (inference, affine) 2 per element, ReLU and
    # windowed pooling 0, adaptive average pooling 1 per input element;
    # the reference's OP_HANDLERS: softmax 2 per output element.
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Softmax(),
    ])
    assert fv(model, 1, 8, 8, 3) == 2 * 8 * 8 * 3 + 4 * 4 * 3 + 2 * 3


def test_fvcore_residual_add_and_gelu_count_once_per_element():
    inputs = keras.Input((4, 6))
    y = keras.layers.Dense(6, use_bias=False, activation="gelu")(inputs)
    out = keras.layers.Add()([inputs, y])
    model = keras.Model(inputs, out)
    assert fv(model, 1, 4, 6) == 4 * 6 * 6 + 4 * 6 + 4 * 6


def test_fvcore_attention_matches_the_reference_handler():
    # count_scaled_dot_product_attention_ops: matmuls (MACs), the scaling
    # (1 per score) and softmax (2 per score); projections are linears.
    layer = keras.layers.MultiHeadAttention(2, 4)

    def attend(x):
        return layer(x, x)

    tokens, dim, heads, key = 5, 8, 2, 4
    projections = 4 * tokens * dim * heads * key
    scores = heads * tokens * tokens
    matmuls = 2 * scores * key
    assert fv(attend, 1, tokens, dim) == projections + matmuls + 3 * scores


def _resnet20_fvcore(num_classes=10):
    """Closed form of He et al.'s CIFAR ResNet-20 under fvcore + the
    reference handlers: convolutions in MACs, batch norm 2 per element,
    residual add 1 per element, ReLU/slicing/padding 0, global average
    pooling 1 per input element, linear classifier in MACs."""
    total = 32 * 32 * 16 * 27 + 2 * 32 * 32 * 16  # stem conv + BN
    side, channels = 32, 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage and not block else 1
            side //= stride
            out = side * side * width
            total += out * 9 * channels + out * 9 * width  # two convs
            total += 2 * 2 * out + out  # two BNs and the residual add
            channels = width
    return total + side * side * channels + channels * num_classes


def test_fvcore_base_flops_of_the_zoo_cnns_match_closed_forms():
    from keras_eexit import models
    from keras_eexit.models import costs

    resnet = models.get_model("cifar_resnet", input_shape=(32, 32, 3),
                              num_classes=10)
    resnet.build((None, 32, 32, 3))
    assert costs.stage_costs(resnet, "fvcore").base_flops() == (
        _resnet20_fvcore())
    # The library's own count is 2 per multiply-add, convolutions and
    # matmuls only.
    assert costs.stage_costs(resnet).base_flops() == resnet.base_flops()

    cnn = models.get_model("small_cnn", input_shape=(8, 8, 1),
                           num_classes=10)
    cnn.build((None, 8, 8, 1))
    stages = [(8, 1, 32), (4, 32, 64), (2, 64, 128)]
    expected = sum(s * s * c_out * 9 * c_in + 2 * s * s * c_out
                   for s, c_in, c_out in stages) + 2 * 2 * 128 + 128 * 10
    assert costs.stage_costs(cnn, "fvcore").base_flops() == expected

    seq = models.get_model("cnn1d", input_shape=(40, 1), num_classes=10)
    seq.build((None, 40, 1))
    layers = [(40, 1, 32, 5), (20, 32, 64, 5), (10, 64, 128, 3),
              (5, 128, 128, 3)]
    expected = sum(t * c_out * k * c_in + 2 * t * c_out
                   for t, c_in, c_out, k in layers) + 5 * 128 + 128 * 10
    assert costs.stage_costs(seq, "fvcore").base_flops() == expected


def test_bad_convention():
    with pytest.raises(ValueError, match="convention"):
        count_flops(keras.layers.Dense(2), spec(1, 3), convention="macs")
