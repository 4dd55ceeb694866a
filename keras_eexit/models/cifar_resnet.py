"""`cifar_resnet`: the CIFAR ResNets 20/32/56 and ResNet-34, with exits."""

import numbers

import keras

from keras_eexit.layers.zero_pad_shortcut import ZeroPadShortcut
from keras_eexit.models.zoo_common import assemble
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.models.zoo_common import check_positions
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.utils.validation import check_choice

# depth -> (blocks per stage, filters per stage)
_CONFIGS = {
    20: ((3, 3, 3), (16, 32, 64)),
    32: ((5, 5, 5), (16, 32, 64)),
    56: ((9, 9, 9), (16, 32, 64)),
    34: ((3, 4, 6, 3), (64, 128, 256, 512)),
}
DEPTHS = tuple(sorted(_CONFIGS))
"""Depths `cifar_resnet` builds: 20, 32, 34 and 56."""

SHORTCUTS = ("zero_pad", "projection")


def _conv_bn(x, filters, kernel, strides, name):
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _basic_block(x, filters, strides, shortcut, name):
    """Two 3x3 convolutions and a shortcut; output layer `{name}_out`."""
    y = _conv_bn(x, filters, 3, strides, f"{name}_1")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    if strides != 1 or x.shape[-1] != filters:
        if shortcut == "zero_pad":
            x = ZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)
        else:
            x = _conv_bn(x, filters, 1, strides, f"{name}_shortcut")
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def cifar_resnet(
    depth=20,
    num_classes=10,
    input_shape=(32, 32, 3),
    exits=None,
    head=None,
    final_head="linear",
    shortcut=None,
    damping=False,
    **head_kwargs,
):
    """A CIFAR-style ResNet with internal exits after chosen residual blocks.

    Depths 20, 32 and 56 are the CIFAR ResNets of He et al. (2016, Sec.
    4.2): a 3x3 convolution with 16 filters, then three stages of
    `n = (depth - 2) / 6` basic blocks with 16, 32 and 64 filters (the
    first block of stages 2 and 3 halves the resolution), global average
    pooling and a linear classifier (the final exit). Their downsampling
    shortcuts are parameter-free ("option A": subsample, zero-pad the
    channels), which gives the paper's 0.27M parameters for ResNet-20.

    Depth 34 is ResNet-34 (basic blocks `[3, 4, 6, 3]`, 64 to 512 filters)
    with the CIFAR stem (one 3x3 convolution, stride 1, no max-pool) and
    1x1-convolution projection shortcuts, as used by Zniber et al. for
    sequentially trained early exits with EWC / LwF: its internal exits are
    Shallow-Deep-Network classifiers (`"sdn_pool"`: mixed max/average
    pooling to 4x4, then one `Dense`). We place them after every second
    residual block (blocks 2, 4, ..., 14 of 16: 7 internal exits, 8 exits
    with the final one). The paper's text was not reachable when this was
    written; pass `exits=` to follow another placement.

    Blocks are numbered from 1 across stages (ResNet-20 has blocks 1-9);
    block `b` ends at the layer `stage{s}_block{i}_out`.

    Args:
        depth: 20, 32, 56 or 34.
        num_classes: number of classes (>= 2).
        input_shape: `(height, width, 3-or-any channels)`, spatial sides
            >= 8. Defaults to `(32, 32, 3)`.
        exits: 1-based indices of the blocks after which the internal exits
            go, strictly increasing, each below the number of blocks (the
            final exit follows the last block). Defaults to the end of
            every stage but the last for depths 20/32/56 (`[n, 2n]`: 3
            exits) and to `[2, 4, ..., 14]` for depth 34.
        head: the head of the internal exits: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory. Defaults
            to `"linear"` for depths 20/32/56 and `"sdn_pool"` for 34.
        final_head: the head of the final exit, by default `"linear"`
            (global average pooling and a `Dense` layer: the ResNet's own
            classifier).
        shortcut: `"zero_pad"` (option A) or `"projection"` (1x1
            convolution and batch normalization, option B). Defaults to
            `"zero_pad"` for depths 20/32/56 and `"projection"` for 34.
        damping: if `True`, every exit head (final included) gets one extra
            output unit standing for no class
            (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to the internal heads only.

    Returns:
        A `MultiExitModel` named `"cifar_resnet{depth}"` with
        `len(exits) + 1` exits.

    Example:

    ```python
    model = cifar_resnet(depth=56, exits=[9, 18], num_classes=100)
    model.num_exits  # 3
    ```

    References:
        - [He et al., 2016. Deep Residual Learning for Image Recognition](
            https://arxiv.org/abs/1512.03385) (CVPR 2016)
        - [Kaya et al., 2019. Shallow-Deep Networks](
            https://arxiv.org/abs/1810.07052) (internal classifiers)
        - [Zniber et al., 2026. Balancing Stability and Plasticity in
            Sequentially Trained Early-Exiting Neural Networks](
            https://arxiv.org/abs/2605.05358) (ResNet-34 with SDN exits)
    """
    if (
        isinstance(depth, bool)
        or not isinstance(depth, numbers.Integral)
        or depth not in _CONFIGS
    ):
        raise ValueError(
            f"Invalid value received for argument `depth`. Expected one of "
            f"{list(DEPTHS)}. Received: depth={depth!r}"
        )
    num_classes = check_num_classes(num_classes)
    input_shape = check_input_shape(input_shape, rank=3, min_size=8)
    depth = int(depth)
    blocks, filters = _CONFIGS[depth]
    num_blocks = sum(blocks)
    if exits is None:
        if depth == 34:
            exits = list(range(2, num_blocks, 2))
        else:
            exits = [blocks[0], blocks[0] + blocks[1]]
    exits = check_positions("exits", exits, num_blocks - 1, "block")
    if head is None:
        head = "sdn_pool" if depth == 34 else "linear"
    if shortcut is None:
        shortcut = "projection" if depth == 34 else "zero_pad"
    check_choice("shortcut", shortcut, SHORTCUTS)

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, filters[0], 3, 1, "stem")
    x = keras.layers.ReLU(name="stem_relu")(x)
    block_names = []
    for stage, (count, width) in enumerate(zip(blocks, filters), 1):
        for i in range(1, count + 1):
            strides = 2 if stage > 1 and i == 1 else 1
            name = f"stage{stage}_block{i}"
            x = _basic_block(x, width, strides, shortcut, name)
            block_names.append(f"{name}_out")
    backbone = keras.Model(inputs, x, name=f"resnet{depth}_backbone")
    taps = [block_names[b - 1] for b in exits]
    heads = make_heads(head, num_classes, len(taps), damping=damping,
                       **head_kwargs)
    heads += make_heads(final_head, num_classes, 1, start=len(taps) + 1,
                        damping=damping)
    return assemble(backbone, taps, heads, name=f"cifar_resnet{depth}")
