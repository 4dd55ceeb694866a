"""`msdnet_cifar`: the Multi-Scale Dense Network (MSDNet) for CIFAR, and
the network body it shares with `msdnet_imagenet` (`build_msdnet`)."""

import math
import numbers

import keras

from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.models.zoo_common import BN_MOMENTUM
from keras_eexit.models.zoo_common import REFERENCE_CONV_INIT
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.models.zoo_common import reference_conv_block
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import check_int_list
from keras_eexit.utils.validation import invalid_value

STEP_MODES = ("lin_grow", "even")
"""Layer-count schedules of `msdnet_cifar` (the reference's `--stepmode`)."""


def _block_steps(blocks, base, step, step_mode):
    """Dense layers per block (the reference's `self.steps`)."""
    steps = [base]
    for i in range(1, blocks):
        steps.append(step if step_mode == "even" else step * i + 1)
    return steps


def _plan(num_scales, steps):
    """Scales entering and leaving every layer, pruned as `--prune max`.

    Returns one list per block of `(in_scales, out_scales)` pairs, one per
    dense layer. The `L` layers of the network are cut into `num_scales`
    runs of `ceil(L / num_scales)` layers; each run after the first starts
    with a layer that drops the finest remaining scale (its output has one
    scale fewer than its input), which a transition layer follows.
    """
    total = sum(steps)
    interval = math.ceil(total / num_scales)
    plan, n = [], 0
    for count in steps:
        block = []
        for _ in range(count):
            n += 1
            block.append((num_scales - max(0, n - 2) // interval,
                          num_scales - (n - 1) // interval))
        plan.append(block)
    return plan


class _Builder:
    """Creates MSDNet's layers (functional calls) with unique names."""

    def __init__(self, growth_rate, growth_factors, bottleneck_factors,
                 bottleneck, reduction, bn_momentum):
        self.growth_rate = growth_rate
        self.growth_factors = growth_factors
        self.bottleneck_factors = bottleneck_factors
        self.bottleneck = bottleneck
        self.reduction = reduction
        self.bn_momentum = bn_momentum

    def conv_basic(self, x, filters, kernel, strides, name):
        """Conv (no bias) -> BatchNorm -> ReLU, PyTorch padding `k // 2`."""
        return reference_conv_block(x, filters, kernel, strides, name,
                                    self.bn_momentum)

    def conv_bn(self, x, filters, down, width, name):
        """The reference's `ConvBN`: optional 1x1 bottleneck, then 3x3."""
        if self.bottleneck:
            inner = min(x.shape[-1], width * filters)
            x = self.conv_basic(x, inner, 1, 1, f"{name}_1x1")
        return self.conv_basic(x, filters, 3, 2 if down else 1,
                               f"{name}_3x3")

    def imagenet_stem(self, image, filters):
        """The ImageNet first scale: 7x7/2 conv (with bias), BN, ReLU, 3x3/2
        max pooling, both padded as PyTorch pads (3 and 1 pixels)."""
        x = keras.layers.ZeroPadding2D(3, name="first_s1_pad")(image)
        x = keras.layers.Conv2D(
            filters, 7, strides=2, kernel_initializer=REFERENCE_CONV_INIT,
            name="first_s1_conv")(x)
        x = keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=1e-5, name="first_s1_bn")(x)
        x = keras.layers.ReLU(name="first_s1_relu")(x)
        # Zeros pad like PyTorch's -inf here: the inputs are >= 0.
        x = keras.layers.ZeroPadding2D(1, name="first_s1_pool_pad")(x)
        return keras.layers.MaxPooling2D(3, strides=2,
                                         name="first_s1_pool")(x)

    def first_layer(self, image, channels, num_scales, stem):
        """The finest scale from the image (`stem`: `"cifar"`, a 3x3 conv
        block, or `"imagenet"`), then 3x3 convolutions, stride 2 from each
        scale to the next coarser."""
        feats, x = {}, image
        for s in range(num_scales):
            filters = channels * self.growth_factors[s]
            if s == 0 and stem == "imagenet":
                x = self.imagenet_stem(x, filters)
            else:
                x = self.conv_basic(x, filters, 3, 1 if s == 0 else 2,
                                    f"first_s{s + 1}")
            feats[s] = x
        return feats

    def dense_layer(self, feats, out_scales, num_scales, name):
        """One MSDNet layer (`MSDNLayer`) on the scales `feats` holds.

        Scale `s` (0 finest) concatenates its input with new features: a
        3x3 convolution of its own input and, when the finer scale `s - 1`
        is among the inputs, a strided 3x3 convolution of that one (half of
        the growth each). Scales finer than `num_scales - out_scales` are
        dropped.
        """
        new = {}
        for s in range(num_scales - out_scales, num_scales):
            growth = self.growth_rate * self.growth_factors[s]
            tag = f"{name}_s{s + 1}"
            if s - 1 in feats:
                down = self.conv_bn(feats[s - 1], growth // 2, True,
                                    self.bottleneck_factors[s - 1],
                                    f"{tag}_down")
                normal = self.conv_bn(feats[s], growth // 2, False,
                                      self.bottleneck_factors[s],
                                      f"{tag}_normal")
                parts = [feats[s], down, normal]
            else:
                normal = self.conv_bn(feats[s], growth, False,
                                      self.bottleneck_factors[s],
                                      f"{tag}_normal")
                parts = [feats[s], normal]
            new[s] = keras.layers.Concatenate(name=f"{tag}_cat")(parts)
        return new

    def transition(self, feats, channels, name):
        """1x1 conv blocks giving scale `s` `channels * factor[s]` maps."""
        return {
            s: self.conv_basic(x, channels * self.growth_factors[s], 1, 1,
                               f"{name}_s{s + 1}_trans")
            for s, x in feats.items()
        }


def msdnet_cifar(
    num_classes=100,
    exits=7,
    input_shape=(32, 32, 3),
    channels=16,
    growth_rate=6,
    growth_factors=(1, 2, 4),
    bottleneck_factors=(1, 2, 4),
    bottleneck=True,
    base=1,
    step=1,
    step_mode="lin_grow",
    reduction=0.5,
    head_filters=128,
    bn_momentum=BN_MOMENTUM,
    damping=False,
):
    """The Multi-Scale Dense Network (MSDNet) for CIFAR, with its exits.

    MSDNet (Huang et al., ICLR 2018) keeps feature maps at several scales
    throughout the network (32x32, 16x16 and 8x8 on CIFAR). A first layer
    computes the features of every scale (3x3 convolutions, stride 2 from
    one scale to the next coarser one). Each later layer is dense at every
    scale: scale `s` concatenates its input with new features computed from
    it (a 3x3 convolution) and from the finer scale `s - 1` (a strided 3x3
    convolution), each preceded by a 1x1 bottleneck. The layers are grouped
    into blocks, and a classifier reads the coarsest scale after each
    block, so that even the first exits see coarse, high-level features.
    The finest scales are pruned once they can no longer reach a classifier
    in time (the reference's `--prune max`): the `L` layers are cut into as
    many runs as scales, each run after the first drops the finest
    remaining scale, and a transition layer (1x1 convolutions) then halves
    the channels.

    The architecture follows the authors' code (gaohuang/MSDNet, Lua, and
    its PyTorch port kalviny/MSDNet-PyTorch, `models/msdnet.py`). The
    defaults are the 7-classifier CIFAR network of the Lua README
    (`-nBlocks 7 -stepmode lin_grow -step 1 -base 1`, 16 initial channels;
    the PyTorch README trains the same layout with 5 blocks for CIFAR-100
    budgeted batch classification) with the defaults of both codes'
    options: `growthRate 6, grFactor 1-2-4, bnFactor 1-2-4, bottleneck,
    prune max, reduction 0.5` (three scales; the Lua defaults `1-2-4-4`
    are cut to the three CIFAR scales). Its blocks have 1, 2, ..., 7 dense
    layers (28 in all); layers 11 and 21 drop a scale. This is the network
    of the published CIFAR-100 table of MSDNet with 7 exits: built for
    CIFAR-100 it has 0.30M to 3.98M parameters and 6.79M to 136.6M
    convolution/linear multiply-adds per exit (cumulative), against the
    published 0.30M-4.00M and 6.86M-137.30M (counted by the authors'
    `op_counter.py`, which also counts ReLUs, pooling and linear biases):
    within 1%. The PyTorch
    README's "anytime" command (`--nBlocks 7 --stepmode even --step 2
    --base 4`) is a different network (`base=4, step=2,
    step_mode="even"`: 0.44M-3.08M parameters, 15.0M-75.5M multiply-adds),
    which does not match that table.

    Each exit's classifier is `keras_eexit.layers.msdnet_head.MSDNetHead`
    (two 3x3 stride-2 conv blocks of 128 channels, pooling, linear) on the
    coarsest scale. The model is a chain of stages, one per block; the
    state passed between stages is the list of the scales' feature maps,
    coarsest first (the exit head reads the first), and shrinks as scales
    are pruned.

    Padding (one pixel on every side of a 3x3 convolution, also when
    strided), the order of the concatenated features, the convolutions'
    initialization (normal, fan-out) and the batch normalization epsilon
    (1e-5) follow the reference, so its weights can be mapped layer by
    layer. Differences,
    none of which changes the counts: global average pooling in the heads
    (the reference's `AvgPool2d(2)` equals it on CIFAR) and Keras' default
    initialization of the heads. The batch normalization momentum defaults
    to `0.9` (`zoo_common.BN_MOMENTUM`, Keras convention: the weight of the
    old moving statistics), which is PyTorch's default `momentum=0.1` that
    the reference trains with; the zoo uses it because its short training
    runs need the moving statistics to converge quickly.

    The parameter counts include the batch normalizations' moving
    statistics (`MultiExitModel.params_per_exit`), which PyTorch's
    `parameters()` leaves out (about 0.5% of the total).

    Args:
        num_classes: number of classes (>= 2). Defaults to 100.
        exits: number of exits, one after each block (`--nBlocks`), >= 1.
            Defaults to 7.
        input_shape: `(height, width, channels)`; each spatial side must be
            at least `2 ** (len(growth_factors) - 1)` (4 for the default),
            so that the coarsest scale is at least 1x1. Defaults to
            `(32, 32, 3)`.
        channels: base width (`--nChannels`); the first layer gives scale
            `s` `channels * growth_factors[s]` maps. Defaults to 16.
        growth_rate: maps added by each dense layer at scale `s` are
            `growth_rate * growth_factors[s]` (`--growthRate`); half come
            from the finer scale, so this product must be even for every
            scale but the finest. Defaults to 6.
        growth_factors: one integer per scale, finest first (`--grFactor`);
            its length is the number of scales. Defaults to `(1, 2, 4)`.
        bottleneck_factors: one integer per scale, finest first: a
            bottleneck before a 3x3 convolution producing `g` maps from
            scale `s` has at most `bottleneck_factors[s] * g` channels
            (`--bnFactor`). Defaults to `(1, 2, 4)`.
        bottleneck: whether the 3x3 convolutions of the dense layers have a
            1x1 bottleneck before them (`--bottleneck`). Defaults to `True`.
        base: dense layers of the first block (`--base`). Defaults to 1.
        step: dense layers of the later blocks (`--step`); see
            `step_mode`. Defaults to 1.
        step_mode: `"lin_grow"` (block `i + 1` has `step * i + 1` layers,
            for `i >= 1`) or `"even"` (every block after the first has
            `step` layers) (`--stepmode`). Defaults to `"lin_grow"`.
        reduction: channel ratio of the transition layers after a scale is
            pruned, in [0, 1]; `0` leaves them out (`--reduction`). Defaults
            to 0.5.
        head_filters: channels of the heads' convolutions (128 in the
            reference). Defaults to 128.
        bn_momentum: momentum of every batch normalization, a float in
            [0, 1). Defaults to `BN_MOMENTUM` (0.9).
        damping: if `True`, every exit head (final included) is a
            `keras_eexit.layers.DampingHead` around the `MSDNetHead`: its
            linear layer gets one extra output unit standing for no class
            (the damping paper's damping neuron, "added to the last fully
            connected layer of each classifier", paper 004, L11), for the
            damping losses (`Joint(loss="damping" | "power_sqrt")`).
            Defaults to `False`.

    Returns:
        A `MultiExitModel` named `"msdnet_cifar"` with `exits` exits
        `"exit_1"`, ..., `"exit_{exits}"`.

    Example:

    ```python
    model = msdnet_cifar(num_classes=100)
    [round(p / 1e6, 2) for p in model.params_per_exit()]
    # [0.3, 0.65, 1.11, 1.73, 2.39, 3.06, 3.98]
    small = msdnet_cifar(num_classes=10, exits=3, channels=4,
                         growth_rate=2, head_filters=8)
    small(np.zeros((2, 32, 32, 3)))["exit_3"].shape  # (2, 10)
    ```

    References:
        - [Huang et al., 2018. Multi-Scale Dense Networks for Resource
            Efficient Image Classification](
            https://arxiv.org/abs/1703.09844) (ICLR 2018); code:
            https://github.com/gaohuang/MSDNet and
            https://github.com/kalviny/MSDNet-PyTorch (`models/msdnet.py`,
            `op_counter.py`, `args.py`, README)
    """
    return build_msdnet(
        "msdnet_cifar", num_classes=num_classes, exits=exits,
        input_shape=input_shape, channels=channels, growth_rate=growth_rate,
        growth_factors=growth_factors,
        bottleneck_factors=bottleneck_factors, bottleneck=bottleneck,
        base=base, step=step, step_mode=step_mode, reduction=reduction,
        head_filters=head_filters, bn_momentum=bn_momentum, stem="cifar",
        damping=damping)


def build_msdnet(name, *, num_classes, exits, input_shape, channels,
                 growth_rate, growth_factors, bottleneck_factors, bottleneck,
                 base, step, step_mode, reduction, head_filters, bn_momentum,
                 stem, damping=False):
    """Checks the arguments of an MSDNet builder and builds the network.

    The shared body of `msdnet_cifar` and `msdnet_imagenet` (their
    docstrings describe the arguments). `stem` is `"cifar"` (the finest
    scale from a 3x3 conv block) or `"imagenet"` (7x7/2 conv block and
    3x3/2 max pooling, so the finest scale is a quarter of the image
    side); `head_filters=None` gives each head as many channels as the
    coarsest scale it reads (the reference's ImageNet classifier);
    `damping=True` wraps every head in a `DampingHead`.

    Returns:
        A `MultiExitModel` named `name`.
    """
    num_classes = check_num_classes(num_classes)
    exits = check_positive_int("exits", exits)
    growth_factors = check_int_list("growth_factors", growth_factors)
    num_scales = len(growth_factors)
    bottleneck_factors = check_int_list("bottleneck_factors",
                                        bottleneck_factors, num_scales)
    channels = check_positive_int("channels", channels)
    growth_rate = check_positive_int("growth_rate", growth_rate)
    base = check_positive_int("base", base)
    step = check_positive_int("step", step)
    if head_filters is not None:
        head_filters = check_positive_int("head_filters", head_filters)
    step_mode = check_choice("step_mode", step_mode, STEP_MODES)
    if not isinstance(bottleneck, bool):
        raise invalid_value("bottleneck", "a boolean", bottleneck)
    if (
        isinstance(reduction, bool)
        or not isinstance(reduction, numbers.Real)
        or not 0.0 <= reduction <= 1.0
    ):
        raise invalid_value("reduction", "a float in [0, 1]", reduction)
    reduction = float(reduction)
    bn_momentum = check_number("bn_momentum", bn_momentum, 0.0, 1.0,
                               high_open=True)
    check_bool("damping", damping)
    if any(growth_rate * f % 2 for f in growth_factors[1:]):
        raise invalid_value(
            "growth_rate",
            "an integer whose product with every growth factor but the "
            "first is even (the new maps of a scale come half from the "
            f"finer scale; growth_factors={growth_factors})",
            growth_rate,
        )
    stem_stride = 4 if stem == "imagenet" else 1
    input_shape = check_input_shape(
        input_shape, rank=3, min_size=stem_stride * 2 ** (num_scales - 1))

    steps = _block_steps(exits, base, step, step_mode)
    plan = _plan(num_scales, steps)
    build = _Builder(growth_rate, growth_factors, bottleneck_factors,
                     bottleneck, reduction, bn_momentum)

    segments, heads = [], []
    width = channels  # maps per unit of growth factor at every scale
    state, layer = None, 0
    for k, block in enumerate(plan, 1):
        if k == 1:
            inputs = keras.Input(shape=input_shape, name="image")
            feats = build.first_layer(inputs, channels, num_scales, stem)
        else:
            inputs = [keras.Input(shape=tuple(t.shape[1:]), name=f"scale_{i}")
                      for i, t in enumerate(state)]
            offset = num_scales - len(inputs)
            # The state lists the scales coarsest first.
            feats = {num_scales - 1 - i: t for i, t in enumerate(inputs)}
            feats = {s: feats[s] for s in range(offset, num_scales)}
            if len(inputs) == 1:
                inputs = inputs[0]
        for in_scales, out_scales in block:
            layer += 1
            tag = f"layer{layer}"
            feats = build.dense_layer(feats, out_scales, num_scales, tag)
            width += growth_rate
            if in_scales > out_scales and reduction > 0:
                reduced = math.floor(reduction * width)
                if reduced < 1:
                    raise invalid_value(
                        "reduction",
                        "a ratio leaving every transition layer at least "
                        f"one channel per growth factor (layer {layer} has "
                        f"{width})",
                        reduction,
                    )
                feats = build.transition(feats, reduced, tag)
                width = reduced
        state = [feats[s] for s in sorted(feats, reverse=True)]
        segments.append(keras.Model(
            inputs, state if len(state) > 1 else state[0],
            name=f"stage_{k}"))
        filters = head_filters or state[0].shape[-1]
        heads += make_heads(MSDNetHead, num_classes, 1, start=k,
                            damping=damping, filters=filters,
                            bn_momentum=bn_momentum)
    return MultiExitModel(segments, heads, name=name)
