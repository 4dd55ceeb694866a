"""`msdnet_imagenet`: the 5-exit ImageNet MSDNet (step 4)."""

from keras_eexit.models.msdnet import build_msdnet
from keras_eexit.models.zoo_common import BN_MOMENTUM


def msdnet_imagenet(
    num_classes=1000,
    exits=5,
    input_shape=(224, 224, 3),
    channels=32,
    growth_rate=16,
    growth_factors=(1, 2, 4, 4),
    bottleneck_factors=(1, 2, 4, 4),
    bottleneck=True,
    base=4,
    step=4,
    step_mode="even",
    reduction=0.5,
    head_filters=None,
    bn_momentum=BN_MOMENTUM,
    damping=False,
):
    """The Multi-Scale Dense Network (MSDNet) for ImageNet, with 5 exits.

    The network of the damping paper's ImageNet table (paper 004, sec. 4,
    lines 424-435: "We use MSDNet with five exits", Table 2: 4.24M to
    23.96M parameters and 0.34 to 1.36 GFLOPs per exit), which it takes
    from Han et al. (2022): their code (LeapLabTHU/L2W-DEN, README, "Train
    a MSDNet (5 exits, step=4) on ImageNet") and the MSDNet authors'
    PyTorch README (kalviny/MSDNet-PyTorch, "Train an MSDNet (block=5,
    step=4) on ImageNet") both build it with `--nBlocks 5 --stepmode even
    --step 4 --base 4 --nChannels 32 --growthRate 16 --grFactor 1-2-4-4
    --bnFactor 1-2-4-4`, and the defaults `--bottleneck True --prune max
    --reduction 0.5` (`args.py`). Han et al.'s README lists that network's
    accuracies (59.54 ... 73.93), the WPN row of the damping paper's
    Table 2.

    The layers are `msdnet_cifar`'s (dense layers at every scale, pruning
    of the finest scales, transition layers; see its docstring) with four
    scales (56x56, 28x28, 14x14 and 7x7 for a 224x224 image) and the two
    ImageNet parts of the reference (`models/msdnet.py`, the `ImageNet`
    branches of `MSDNFirstLayer` and `_build_classifier_imagenet`; the Lua
    original gaohuang/MSDNet, `models/MSDNet_Layer.lua` and
    `models/JointTrainContainer.lua`, builds the same):

    * the finest scale comes from a 7x7 stride-2 convolution (with a bias,
      as PyTorch's `nn.Conv2d` default), batch normalization, ReLU and 3x3
      stride-2 max pooling, padded 3 and 1 pixels on every side;
    * each exit's classifier has as many channels as the coarsest scale it
      reads (`MSDNetHead(filters=channels)`: two 3x3 stride-2 conv blocks
      without bias, pooling, linear).

    Its 5 blocks have 4 dense layers each; layers 6, 11 and 16 drop the
    finest remaining scale and a transition halves the channels after each.
    Built for 1000 classes it has, per exit (cumulative, earlier exits'
    classifiers included), 4.24M, 8.77M, 13.07M, 16.75M and 23.96M
    trainable parameters, the published figures to their last digit
    (`params_per_exit` also counts the batch normalizations' moving
    statistics, 0.1% more), and 0.337, 0.682, 1.004, 1.250 and 1.356 G
    convolution and linear multiply-adds (`macs_per_exit`); with the ReLUs,
    pooling windows and linear biases that the authors' `op_counter.py`
    also counts, 0.340, 0.685, 1.008, 1.254 and 1.361 G: the published
    0.34, 0.69, 1.01, 1.25 and 1.36 GFLOPs.

    Differences from the reference, none of which changes the counts: global
    average pooling in the heads (the reference's `AvgPool2d(2)` equals it
    on the 2x2 maps of a 224x224 image), zero padding before the max
    pooling (equal to PyTorch's negative-infinity padding after a ReLU),
    Keras' default initialization of the biases and heads, and the
    batch normalization momentum (`msdnet_cifar` explains the default).

    Args:
        num_classes: number of classes (>= 2). Defaults to 1000.
        exits: number of exits, one after each block (`--nBlocks`), >= 1.
            Defaults to 5.
        input_shape: `(height, width, channels)`; each spatial side must be
            at least `4 * 2 ** (len(growth_factors) - 1)` (32 for the
            default). Defaults to `(224, 224, 3)`.
        channels: base width (`--nChannels`). Defaults to 32.
        growth_rate: `--growthRate`. Defaults to 16.
        growth_factors: one integer per scale, finest first (`--grFactor`).
            Defaults to `(1, 2, 4, 4)`.
        bottleneck_factors: one integer per scale (`--bnFactor`). Defaults
            to `(1, 2, 4, 4)`.
        bottleneck: `--bottleneck`. Defaults to `True`.
        base: dense layers of the first block (`--base`). Defaults to 4.
        step: dense layers of the later blocks (`--step`). Defaults to 4.
        step_mode: `"even"` or `"lin_grow"` (`--stepmode`). Defaults to
            `"even"`.
        reduction: channel ratio of the transition layers, in [0, 1]
            (`--reduction`). Defaults to 0.5.
        head_filters: channels of the heads' convolutions; `None` (the
            reference) gives each head the channels of the scale it reads.
            Defaults to `None`.
        bn_momentum: momentum of every batch normalization, a float in
            [0, 1). Defaults to `BN_MOMENTUM` (0.9).
        damping: if `True`, every exit head (final included) is a
            `keras_eexit.layers.DampingHead` around the `MSDNetHead`, with
            one extra output unit standing for no class (the damping
            paper's damping neuron, L11), for `Joint(loss="damping" |
            "power_sqrt")`. Defaults to `False`.

    Returns:
        A `MultiExitModel` named `"msdnet_imagenet"` with `exits` exits
        `"exit_1"`, ..., `"exit_{exits}"`.

    Example:

    ```python
    model = msdnet_imagenet()
    [round(m / 1e9, 3) for m in model.macs_per_exit()]
    # [0.337, 0.682, 1.004, 1.25, 1.356]
    small = msdnet_imagenet(num_classes=10, exits=2, input_shape=(32, 32, 3),
                            channels=4, growth_rate=4, base=1, step=1)
    small(np.zeros((2, 32, 32, 3)))["exit_2"].shape  # (2, 10)
    ```

    References:
        - [Huang et al., 2018. Multi-Scale Dense Networks for Resource
            Efficient Image Classification](
            https://arxiv.org/abs/1703.09844) (ICLR 2018); code:
            https://github.com/kalviny/MSDNet-PyTorch (`models/msdnet.py`,
            `op_counter.py`, `args.py`, README) and
            https://github.com/gaohuang/MSDNet
        - [Han et al., 2022. Learning to Weight Samples for Dynamic
            Early-exiting Networks](https://arxiv.org/abs/2209.08310)
            (ECCV 2022); code: https://github.com/LeapLabTHU/L2W-DEN
        - Paper 004 (the damping paper), sec. 4 and Table 2.
    """
    return build_msdnet(
        "msdnet_imagenet", num_classes=num_classes, exits=exits,
        input_shape=input_shape, channels=channels, growth_rate=growth_rate,
        growth_factors=growth_factors,
        bottleneck_factors=bottleneck_factors, bottleneck=bottleneck,
        base=base, step=step, step_mode=step_mode, reduction=reduction,
        head_filters=head_filters, bn_momentum=bn_momentum, stem="imagenet",
        damping=damping)
