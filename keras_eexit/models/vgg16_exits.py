"""`vgg16_exits`: VGG-16 from `keras.applications` with internal exits."""

import keras

from keras_eexit.models.zoo_common import assemble
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.models.zoo_common import check_positions
from keras_eexit.models.zoo_common import make_heads

# The 13 convolution layers of keras.applications.VGG16, in forward order.
VGG16_CONV_LAYERS = (
    "block1_conv1",
    "block1_conv2",
    "block2_conv1",
    "block2_conv2",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block4_conv1",
    "block4_conv2",
    "block4_conv3",
    "block5_conv1",
    "block5_conv2",
    "block5_conv3",
)


def vgg16_exits(
    num_classes=10,
    input_shape=(32, 32, 3),
    exits_after=(5, 9),
    weights=None,
    head="linear",
    damping=False,
    **head_kwargs,
):
    """VGG-16 with exits after chosen convolution layers and at the end.

    The backbone is `keras.applications.VGG16(include_top=False)`: 13
    convolution layers (each with its ReLU) in five blocks separated by
    max-pooling. Internal exits read the output of the convolution layers
    listed in `exits_after` (numbered 1 to 13 in forward order: 5 is
    `block3_conv1`, 9 is `block4_conv2`); the final exit reads the
    backbone's output, the max-pooled output of convolution 13.

    Args:
        num_classes: number of classes (>= 2).
        input_shape: `(height, width, channels)`, sides >= 32. Defaults to
            `(32, 32, 3)` (CIFAR).
        exits_after: strictly increasing convolution indices between 1 and
            12 after which internal exits go. Defaults to `(5, 9)`.
        weights: forwarded to `keras.applications.VGG16`: `None` (random
            initialisation), `"imagenet"` (downloads, so only where a
            network is available) or the path to a weights file.
        head: the exit head of every exit: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to every head.

    Returns:
        A `MultiExitModel` named `"vgg16_exits"` with
        `len(exits_after) + 1` exits.

    Example:

    ```python
    model = vgg16_exits(num_classes=100)
    model.num_exits  # 3
    ```

    References:
        - [Simonyan and Zisserman, 2015. Very Deep Convolutional Networks
            for Large-Scale Image Recognition](
            https://arxiv.org/abs/1409.1556) (ICLR 2015)
    """
    num_classes = check_num_classes(num_classes)
    input_shape = check_input_shape(input_shape, rank=3, min_size=32)
    positions = check_positions(
        "exits_after", exits_after, len(VGG16_CONV_LAYERS) - 1, "convolution"
    )
    backbone = keras.applications.VGG16(
        include_top=False, weights=weights, input_shape=input_shape
    )
    taps = [VGG16_CONV_LAYERS[p - 1] for p in positions]
    heads = make_heads(head, num_classes, len(taps) + 1, damping=damping,
                       **head_kwargs)
    return assemble(backbone, taps, heads, name="vgg16_exits")
