"""`ranet_cifar`: the Resolution Adaptive Network (RANet) for CIFAR."""

import math
import numbers

import keras

from keras_eexit.layers.aligned_bilinear_resize import AlignedBilinearResize
from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.models.zoo_common import BN_MOMENTUM
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.models.zoo_common import reference_conv_block
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import check_fraction
from keras_eexit.utils.validation import check_int_list
from keras_eexit.utils.validation import invalid_value

STEP_MODES = ("even", "lg")


def _check_scales(scales):
    scales = check_int_list("scales", scales)
    valid = scales[0] == 1 and all(
        s >= 2 and 0 <= s - prev <= 1
        for prev, s in zip(scales, scales[1:])
    )
    if not valid:
        raise invalid_value(
            "scales",
            "a list starting at 1 whose later entries are >= 2 and grow by "
            "0 or 1 from one to the next (e.g. [1, 2, 3]; the reference's "
            "`--scale-list`)",
            scales,
        )
    return scales


def _plan(scales, base_blocks, block_step, step, step_mode):
    """The blocks of each sub-network, as the reference lays them out.

    Returns a list (one per scale, lowest resolution first) of dicts with
    `kind` ("norm" or "up"), `layers`, `trans` and `down`. The number of
    layers of a block is shared across sub-networks by block index, as in
    the reference's `steps` list.
    """
    num_scales = len(scales)
    ends = [0] + [base_blocks + block_step * i for i in range(num_scales)]
    steps = [step]
    plan = []
    for ii in range(num_scales):
        total = ends[ii + 1]
        down_at = set(ends[1:ii + 1][-(scales[ii] - 1):]) if ii else set()
        blocks = []
        for n in range(1, total + 1):
            trans = any(
                n == math.floor((j + 1) * total / scales[ii])
                for j in range(scales[ii] - 1)
            )
            layers = steps[n - 1]
            if n > ends[ii]:
                kind = "norm"
                steps.append(step if step_mode == "even" else steps[-1] + step)
            else:
                kind = "up"
            blocks.append({"kind": kind, "layers": layers, "trans": trans,
                           "down": kind == "up" and n in down_at})
        plan.append(blocks)
    return plan


class _Builder:
    """Creates RANet's layers (functional calls) with unique names."""

    def __init__(self, bn_momentum):
        self.bn_momentum = bn_momentum

    def conv_basic(self, x, filters, kernel, strides, name):
        """Conv (no bias) -> BatchNorm -> ReLU, PyTorch padding `k // 2`."""
        return reference_conv_block(x, filters, kernel, strides, name,
                                    self.bn_momentum)

    def conv_bn(self, x, filters, down, bottleneck, name):
        """The reference's `ConvBN` (bottleneck after: 1x1 then 3x3)."""
        inner = min(x.shape[-1], bottleneck * filters)
        x = self.conv_basic(x, inner, 1, 1, f"{name}_1x1")
        return self.conv_basic(x, filters, 3, 2 if down else 1,
                               f"{name}_3x3")

    @staticmethod
    def resize(x, like, name):
        height, width = like.shape[1:3]
        if tuple(x.shape[1:3]) == (height, width):
            return x
        return AlignedBilinearResize(height, width, name=name)(x)

    def transition(self, x, reduction, name):
        return self.conv_basic(
            x, math.floor(reduction * x.shape[-1]), 1, 1, f"{name}_trans")

    def norm_block(self, x, block, growth, bottleneck, reduction, name):
        """A dense block of one sub-network (`_BlockNormal`)."""
        outs = [x]
        for i in range(block["layers"]):
            new = self.conv_bn(x, growth, False, bottleneck,
                               f"{name}_l{i + 1}")
            x = keras.layers.Concatenate(name=f"{name}_l{i + 1}_cat")(
                [x, new])
            outs.append(x)
        if block["trans"]:
            x = self.transition(x, reduction, name)
        return x, outs

    def up_block(self, x, low, block, growth, bottlenecks, compress,
                 reduction, name):
        """A fusion block (`_BlockUpNormal`): dense layers that also read
        the intermediate features `low` of the previous sub-network."""
        outs = [x]
        layers = block["layers"]
        fused = math.floor(growth * compress)
        for i in range(layers):
            tag = f"{name}_l{i + 1}"
            down = block["down"] and i == layers - 1
            res = self.conv_bn(x, growth - fused, down, bottlenecks[0],
                               f"{tag}_normal")
            up = self.conv_bn(low[i], fused, False, bottlenecks[1],
                              f"{tag}_up")
            x = keras.layers.Concatenate(name=f"{tag}_cat")([
                self.resize(x, res, f"{tag}_resize_in"),
                self.resize(up, res, f"{tag}_resize_up"),
                res,
            ])
            outs.append(x)
        last = self.conv_basic(low[layers],
                               math.floor(x.shape[-1] * compress), 1, 1,
                               f"{name}_last")
        x = keras.layers.Concatenate(name=f"{name}_last_cat")(
            [x, self.resize(last, x, f"{name}_last_resize")])
        if block["trans"]:
            x = self.transition(x, reduction, name)
        return x, outs


def ranet_cifar(
    num_classes=100,
    exits=6,
    input_shape=(32, 32, 3),
    channels=16,
    growth_rate=6,
    growth_factors=(4, 2, 1),
    bottleneck_factors=(4, 2, 1),
    scales=(1, 2, 3),
    base_blocks=2,
    block_step=2,
    step=2,
    step_mode="lg",
    compress_factor=0.25,
    reduction=0.5,
    head_filters=128,
    bn_momentum=BN_MOMENTUM,
    damping=False,
):
    """The Resolution Adaptive Network (RANet) for CIFAR, with its exits.

    RANet (Yang et al., CVPR 2020) runs several sub-networks, one per input
    resolution, from the coarsest to the finest. A first layer computes the
    base features of every resolution (3x3 convolutions, stride 2 from one
    resolution to the next coarser one). The coarsest sub-network is a
    chain of dense blocks with an exit after each block. Every later
    sub-network starts with fusion blocks, whose dense layers also read the
    intermediate features of the previous sub-network (a 3x3 convolution at
    the coarse resolution, bilinearly upsampled) and whose strided last
    layers bring it down to the coarsest resolution; its remaining dense
    blocks carry the exits. Easy images can thus leave after the cheap
    low-resolution sub-networks.

    The architecture follows the authors' code (yangle15/RANet-pytorch,
    `models/RANet.py`) with the CIFAR configuration of its README:
    `--nChannels 16 --growthRate 6 --step 2 --stepmode lg --scale-list
    1-2-3 --grFactor 4-2-1 --bnFactor 4-2-1` and the defaults `--nBlocks 2
    --block-step 2 --compress-factor 0.25 --reduction 0.5`: three
    sub-networks at 8x8, 16x16 and 32x32, with 2, 4 and 6 blocks, of which
    2 each carry an exit (6 exits). Built for CIFAR-100 it has 0.36M to
    2.63M parameters and 8.3M to 58.7M convolution/linear multiply-adds
    per exit (cumulative), the figures the authors' `op_counter.py` gives
    (8.37M to 58.99M, which also counts ReLUs, pooling and linear biases).

    Each exit's classifier is `keras_eexit.layers.MSDNetHead`
    (two 3x3 stride-2 conv blocks of 128 channels, pooling, linear). The
    model is a chain of stages that ends at each exit; the state passed
    between stages is a list whose first tensor is the current features
    (read by the exit head), followed by the base features of the
    sub-networks not started yet and the intermediate features of the
    current sub-network's blocks (which the next sub-network fuses).

    Padding (one pixel on every side of a 3x3 convolution, also when
    strided), bilinear resizing with aligned corners, the convolutions'
    initialization (normal, fan-out) and the batch normalization epsilon
    (1e-5) follow the reference. Differences, none of which changes the
    counts: global average pooling in the heads (the reference's
    `AvgPool2d(2)` equals it on CIFAR) and Keras' default initialization of
    the heads' `Dense` layers. The batch normalization momentum defaults to
    `0.9` (`zoo_common.BN_MOMENTUM`, Keras convention: the weight of the
    old moving statistics), which is PyTorch's default `momentum=0.1` that
    the reference trains with; the zoo uses it because its short training
    runs need the moving statistics to converge quickly.

    The parameter counts include the batch normalizations' moving
    statistics (`MultiExitModel.params_per_exit`), which PyTorch's
    `parameters()` leaves out: 0.1-0.7% above the published figures.

    Args:
        num_classes: number of classes (>= 2). Defaults to 100.
        exits: number of exits; must equal `base_blocks + block_step *
            (len(scales) - 1)`, the number the configuration gives (one
            per block of a sub-network that its successor does not fuse).
            Defaults to 6.
        input_shape: `(height, width, channels)`; each spatial side must
            be at least `2 ** len(set(scales))` (8 for the default), so that
            the coarsest resolution is at least 2x2. Defaults to
            `(32, 32, 3)`.
        channels: base width (`--nChannels`); the first layer gives
            sub-network `i` `channels * growth_factors[i]` channels.
            Defaults to 16.
        growth_rate: channels added by each dense layer of sub-network `i`
            are `growth_rate * growth_factors[i]` (`--growthRate`).
            Defaults to 6.
        growth_factors: one integer per sub-network, coarsest first
            (`--grFactor`). Defaults to `(4, 2, 1)`.
        bottleneck_factors: one integer per sub-network: a dense layer's
            1x1 bottleneck has at most `factor * growth` channels
            (`--bnFactor`). Defaults to `(4, 2, 1)`.
        scales: the resolution level of each sub-network, 1 for the
            coarsest (`--scale-list`): a list starting at 1 whose later
            entries are >= 2 and grow by at most 1. Defaults to `(1, 2, 3)`.
        base_blocks: blocks of the first sub-network (`--nBlocks`).
            Defaults to 2.
        block_step: each sub-network has this many blocks more than the
            previous one (`--block-step`). Defaults to 2.
        step: layers per dense block (`--step`). Defaults to 2.
        step_mode: `"lg"` (the `n`-th block, counted across sub-networks'
            new blocks, has `n * step` layers) or `"even"` (every block has
            `step` layers) (`--stepmode`). Defaults to `"lg"`.
        compress_factor: share of a fusion layer's growth that comes from
            the previous sub-network (`--compress-factor`). Defaults to
            0.25.
        reduction: channel reduction of the transition layers
            (`--reduction`). Defaults to 0.5.
        head_filters: channels of the heads' convolutions (128 in the
            reference). Defaults to 128.
        bn_momentum: momentum of every batch normalization, a float in
            [0, 1). Defaults to `BN_MOMENTUM` (0.9).
        damping: if `True`, every exit head (final included) is a
            `keras_eexit.layers.DampingHead` around the `MSDNetHead`, with
            one extra output unit standing for no class (the damping
            paper's damping neuron, "added to the last fully connected
            layer of each classifier", paper 004, L11; its RANet table is
            appendix C.3), for `Joint(loss="damping" | "power_sqrt")`.
            Defaults to `False`.

    Returns:
        A `MultiExitModel` named `"ranet_cifar"` with `exits` exits
        `"exit_1"`, ..., in the order the reference evaluates them.

    Example:

    ```python
    model = ranet_cifar(num_classes=100)
    [round(p / 1e6, 2) for p in model.params_per_exit()]
    # [0.36, 0.9, 1.31, 1.81, 2.2, 2.63]
    small = ranet_cifar(num_classes=10, channels=4, growth_rate=4,
                        head_filters=16)
    small(np.zeros((2, 32, 32, 3)))["exit_6"].shape  # (2, 10)
    ```

    References:
        - [Yang et al., 2020. Resolution Adaptive Networks for Efficient
            Inference](https://arxiv.org/abs/2003.07326) (CVPR 2020); code:
            https://github.com/yangle15/RANet-pytorch (`models/RANet.py`,
            `op_counter.py`, README)
    """
    num_classes = check_num_classes(num_classes)
    scales = _check_scales(scales)
    num_scales = len(scales)
    growth_factors = check_int_list("growth_factors", growth_factors,
                                    num_scales)
    bottleneck_factors = check_int_list("bottleneck_factors",
                                        bottleneck_factors, num_scales)
    channels = check_positive_int("channels", channels)
    growth_rate = check_positive_int("growth_rate", growth_rate)
    base_blocks = check_positive_int("base_blocks", base_blocks)
    block_step = check_positive_int("block_step", block_step)
    step = check_positive_int("step", step)
    head_filters = check_positive_int("head_filters", head_filters)
    step_mode = check_choice("step_mode", step_mode, STEP_MODES)
    compress_factor = check_fraction("compress_factor", compress_factor)
    reduction = check_fraction("reduction", reduction)
    bn_momentum = check_number("bn_momentum", bn_momentum, 0.0, 1.0,
                               high_open=True)
    check_bool("damping", damping)
    configured = base_blocks + block_step * (num_scales - 1)
    if (
        isinstance(exits, bool)
        or not isinstance(exits, numbers.Integral)
        or exits != configured
    ):
        raise invalid_value(
            "exits",
            f"{configured}, the number of exits of this configuration "
            "(base_blocks + block_step * (len(scales) - 1)); change "
            "`base_blocks`, `block_step` or `scales` for another number",
            exits,
        )
    min_size = 2 ** len(set(scales))
    input_shape = check_input_shape(input_shape, rank=3, min_size=min_size)
    if num_scales > 1 and math.floor(
        growth_rate * min(growth_factors[1:]) * compress_factor
    ) < 1:
        raise invalid_value(
            "compress_factor",
            "a value large enough that every fusion layer receives at "
            "least one channel from the previous sub-network "
            "(growth_rate * growth_factors[i] * compress_factor >= 1 for "
            "every sub-network i > 0)",
            compress_factor,
        )

    plan = _plan(scales, base_blocks, block_step, step, step_mode)
    build = _Builder(bn_momentum)

    # Stage boundaries: the (scale, block) positions of the exits.
    stops = [(ii, n) for ii, blocks in enumerate(plan)
             for n, b in enumerate(blocks) if b["kind"] == "norm"]

    segments, heads = [], []
    layout = None  # (futures, low block sizes) of the state entering a stage
    position = (0, -1)  # (scale, index) of the last block run
    spec = None
    for k, (stop_scale, stop_block) in enumerate(stops, 1):
        if k == 1:
            inputs = [keras.Input(shape=input_shape, name="image")]
            # The first layer (`RAFirstLayer`): finest resolution first.
            feats, x = [], inputs[0]
            reversed_scales = scales[::-1]
            reversed_growth = growth_factors[::-1]
            for i in range(num_scales):
                coarser = i and reversed_scales[i] != reversed_scales[i - 1]
                strides = 2 if coarser else 1
                x = build.conv_basic(
                    x, channels * reversed_growth[i], 3, strides,
                    f"first_s{num_scales - i}")
                feats.append(x)
            feats = feats[::-1]  # coarsest first
            x, futures, low = feats[0], feats[1:], []
        else:
            inputs = [keras.Input(shape=tuple(t.shape[1:]),
                                  name=f"state_{i}")
                      for i, t in enumerate(spec)]
            num_futures, sizes = layout
            x = inputs[0]
            futures = inputs[1:1 + num_futures]
            low, offset = [], 1 + num_futures
            for size in sizes:
                low.append(inputs[offset:offset + size])
                offset += size
        scale, index = position
        previous_low = None
        while (scale, index) != (stop_scale, stop_block):
            index += 1
            if index == len(plan[scale]):
                scale, index = scale + 1, 0
                x, futures = futures[0], futures[1:]
                previous_low, low = low, []
            block = plan[scale][index]
            growth = growth_rate * growth_factors[scale]
            name = f"s{scale + 1}_b{index + 1}"
            if block["kind"] == "norm":
                x, outs = build.norm_block(
                    x, block, growth, bottleneck_factors[scale], reduction,
                    name)
            else:
                x, outs = build.up_block(
                    x, previous_low[index], block, growth,
                    (bottleneck_factors[scale],
                     bottleneck_factors[scale - 1]),
                    compress_factor, reduction, name)
            low.append(outs)
        position = (scale, index)
        if scale == num_scales - 1:
            low = []  # no later sub-network fuses these features
        outputs = [x] + list(futures) + [t for outs in low for t in outs]
        layout = (len(futures), [len(outs) for outs in low])
        spec = outputs
        segments.append(keras.Model(
            inputs[0] if k == 1 else inputs,
            outputs if len(outputs) > 1 else x,
            name=f"stage_{k}"))
        heads += make_heads(MSDNetHead, num_classes, 1, start=k,
                            damping=damping, filters=head_filters,
                            bn_momentum=bn_momentum)
    return MultiExitModel(segments, heads, name="ranet_cifar")
