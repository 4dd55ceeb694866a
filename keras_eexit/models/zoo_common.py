"""Shared machinery of the model zoo: argument checks and assembly.

Every zoo builder makes a functional backbone whose block outputs carry
recognisable names, cuts it after the tap layers with `split_backbone`, and
attaches one head per piece. The heads are named `"exit_1"`, ...,
`"exit_K"`, so that their weights are recognisable by path.
"""

import numbers

from keras_eexit.models.backbone_split import split_backbone
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.utils.validation import invalid_value



def check_input_shape(input_shape, rank, min_size=1, channels=None):
    """Checks a channels-last input shape without the batch axis.

    Args:
        input_shape: the shape to check, for example `(32, 32, 3)`.
        rank: the number of axes expected (2 for sequences, 3 for images).
        min_size: smallest allowed size of each spatial axis.
        channels: if given, the required number of channels.

    Returns:
        The shape as a tuple of Python integers.
    """
    expected = (
        f"a tuple of {rank} positive integers (spatial axes >= {min_size}"
        + ("" if channels is None else f", {channels} channels")
        + ")"
    )
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise invalid_value("input_shape", expected, input_shape) from None
    if len(shape) != rank or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
        for d in shape
    ):
        raise invalid_value("input_shape", expected, input_shape)
    if any(d < min_size for d in shape[:-1]) or (
        channels is not None and shape[-1] != channels
    ):
        raise invalid_value("input_shape", expected, input_shape)
    return tuple(int(d) for d in shape)


def check_positions(argument, positions, last, what):
    """Checks a list of 1-based positions after which internal exits go.

    Args:
        argument: name of the argument, for the message.
        positions: an iterable of integers.
        last: largest allowed position (the final exit always comes after
            the last position of the backbone, so `last` is one less).
        what: what a position counts, for the message (`"block"`, ...).

    Returns:
        The positions as a list of Python integers, strictly increasing.
    """
    expected = (
        f"a non-empty, strictly increasing list of {what} indices between 1 "
        f"and {last}"
    )
    if isinstance(positions, (str, bytes)) or isinstance(
        positions, numbers.Number
    ):
        raise invalid_value(argument, expected, positions)
    try:
        values = list(positions)
    except TypeError:
        raise invalid_value(argument, expected, positions) from None
    if not values or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral)
        for v in values
    ):
        raise invalid_value(argument, expected, positions)
    values = [int(v) for v in values]
    if values[0] < 1 or values[-1] > last or any(
        b <= a for a, b in zip(values, values[1:])
    ):
        raise invalid_value(argument, expected, positions)
    return values


def conv_bn_relu(x, conv, filters, kernel, name, strides=1):
    """One convolution block: convolution, batch normalization, ReLU.

    The convolution has no bias (the normalization has one) and He-normal
    initial weights; the block's output layer is named `f"{name}_out"`, the
    tap of the zoo builders.

    Args:
        x: the input tensor (symbolic).
        conv: the convolution class (`keras.layers.Conv1D`, `Conv2D`, ...).
        filters: output channels.
        kernel: kernel size.
        name: prefix of the layer names (`"stage1"` gives `"stage1_conv"`,
            `"stage1_bn"`, `"stage1_out"`).
        strides: convolution strides.

    Returns:
        The block's output tensor.
    """
    import keras

    x = conv(filters, kernel, strides=strides, padding="same",
             use_bias=False, kernel_initializer="he_normal",
             name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM,
                                        name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_out")(x)


def make_heads(head, num_classes, count, start=1, damping=False,
               **head_kwargs):
    """Creates `count` new heads named `exit_{start}`, `exit_{start + 1}`...

    With `damping=True` every head is a `keras_eexit.layers.DampingHead`
    (one extra output unit standing for no class, for the damping losses).
    """
    from keras_eexit.layers import get_head

    return [
        get_head(head, num_classes, name=f"exit_{k}", damping=damping,
                 **head_kwargs)
        for k in range(start, start + count)
    ]


def assemble(backbone, taps, heads, name):
    """Cuts `backbone` after `taps` and returns the `MultiExitModel`."""
    segments = split_backbone(backbone, taps)
    if len(segments) != len(heads):
        raise ValueError(
            f"Internal error: {len(segments)} segments for {len(heads)} "
            "heads."
        )
    return MultiExitModel(segments, heads, name=name)


# BatchNorm momentum of the small zoo models. Keras' default (0.99) needs
# several hundred steps before the moving statistics match the batch
# statistics; the embedded data sets give a few dozen steps per epoch, and
# regimes that train a segment for only a few epochs (branch-wise, two-stage)
# would freeze it with unconverged statistics.
BN_MOMENTUM = 0.9


# The initialization of the MSDNet and RANet reference code:
# normal(0, sqrt(2 / (k * k * out_channels))) for every convolution, i.e.
# He initialization with fan-out.
REFERENCE_CONV_INIT = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out",
               "distribution": "untruncated_normal"},
}


def reference_conv_block(x, filters, kernel, strides, name, bn_momentum):
    """The `ConvBasic` of the MSDNet/RANet code: conv, BatchNorm, ReLU.

    The convolution has no bias, pads `kernel // 2` pixels on every side as
    PyTorch does (explicit zero padding before a strided convolution, where
    Keras' `"same"` would pad asymmetrically) and uses
    `REFERENCE_CONV_INIT`; BatchNorm uses PyTorch's epsilon 1e-5.

    Args:
        x: the input tensor (symbolic, channels last).
        filters: output channels.
        kernel: kernel size (odd).
        strides: convolution stride.
        name: prefix of the layer names.
        bn_momentum: BatchNorm momentum (Keras convention).

    Returns:
        The block's output tensor.
    """
    import keras

    if strides > 1 and kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=False,
        kernel_initializer=REFERENCE_CONV_INIT, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(
        momentum=bn_momentum, epsilon=1e-5, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
