"""MobileNetV2 and ResNet-50 from `keras.applications`, with internal exits.

Both builders wrap `MultiExitModel.from_backbone`. The default exit
positions are stage ends at roughly 1/4, 1/2 and 3/4 of the depth; the
comparison of training strategies by Rahmath et al. ("Strategies at a
glance", Neural Networks 2025) uses MobileNet, ResNet and VGG backbones,
but its exit positions could not be checked when this was written, so the
defaults are documented choices, not a reproduction. Pass `taps=` to place
the exits elsewhere.
"""

import keras

from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import invalid_value

MOBILENET_V2_TAPS = ("block_5_add", "block_9_add", "block_12_add")
"""Default MobileNetV2 taps: ends of the 32-, 64- and 96-channel stages."""

RESNET50_TAPS = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out")
"""Default ResNet-50 taps: ends of stages conv2, conv3 and conv4."""


def _taps(taps, default):
    if taps is None:
        return list(default)
    if isinstance(taps, str):
        raise invalid_value("taps", "a list of layer names", taps)
    return list(taps)


def _application_exits(application, default_taps, num_classes, input_shape,
                       taps, head, damping, head_kwargs, **backbone_kwargs):
    """`from_backbone` on a `keras.applications` model without its top.

    Checks the arguments the builders share, builds
    `application(input_shape=..., include_top=False, **backbone_kwargs)`
    and puts exits after `taps` (default: `default_taps`) and at its end.
    """
    num_classes = check_num_classes(num_classes)
    input_shape = check_input_shape(input_shape, rank=3, min_size=32)
    backbone = application(input_shape=input_shape, include_top=False,
                           **backbone_kwargs)
    return MultiExitModel.from_backbone(
        backbone,
        _taps(taps, default_taps),
        head=head,
        num_classes=num_classes,
        damping=damping,
        **head_kwargs,
    )


def mobilenet_v2_exits(
    num_classes=10,
    input_shape=(32, 32, 3),
    taps=None,
    alpha=1.0,
    weights=None,
    head="linear",
    damping=False,
    **head_kwargs,
):
    """MobileNetV2 with exits at stage ends and at the end of the network.

    The backbone is `keras.applications.MobileNetV2(include_top=False)`:
    17 inverted-residual blocks (`expanded_conv`, `block_1` ...
    `block_16`) and a final 1x1 convolution to 1280 channels. The default
    internal exits read the ends of the 32-, 64- and 96-channel stages
    (`block_5_add`, `block_9_add`, `block_12_add`: blocks 6, 10 and 13 of
    17, about 1/3, 1/2 and 3/4 of the depth); the final exit reads the
    backbone's output (`out_relu`). 4 exits in all.

    Args:
        num_classes: number of classes (>= 2).
        input_shape: `(height, width, channels)`, sides >= 32. Defaults to
            `(32, 32, 3)` (CIFAR).
        taps: names of the layers after which internal exits go, in
            forward order. Defaults to `MOBILENET_V2_TAPS`.
        alpha: width multiplier, forwarded to `MobileNetV2`.
        weights: forwarded to `MobileNetV2`: `None` (random
            initialisation), `"imagenet"` (downloads) or a weights path.
        head: the exit head of every exit: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to every head.

    Returns:
        A `MultiExitModel` named `"mobilenet_v2_exits"`.

    Example:

    ```python
    model = mobilenet_v2_exits(num_classes=10)
    model.num_exits  # 4
    ```

    References:
        - [Sandler et al., 2018. MobileNetV2: Inverted Residuals and Linear
            Bottlenecks](https://arxiv.org/abs/1801.04381) (CVPR 2018)
    """
    return _application_exits(
        keras.applications.MobileNetV2, MOBILENET_V2_TAPS, num_classes,
        input_shape, taps, head, damping, head_kwargs, alpha=alpha,
        weights=weights, name="mobilenet_v2")


def resnet50_exits(
    num_classes=10,
    input_shape=(32, 32, 3),
    taps=None,
    weights=None,
    head="linear",
    damping=False,
    **head_kwargs,
):
    """ResNet-50 with exits at the end of every stage.

    The backbone is `keras.applications.ResNet50(include_top=False)`: a
    7x7 stem and max-pool, then 16 bottleneck blocks in four stages
    (3, 4, 6, 3 blocks). The default internal exits read the ends of
    stages conv2, conv3 and conv4 (after blocks 3, 7 and 13 of 16); the
    final exit reads the end of conv5. 4 exits in all.

    Args:
        num_classes: number of classes (>= 2).
        input_shape: `(height, width, channels)`, sides >= 32. Defaults to
            `(32, 32, 3)` (CIFAR; the last stage is then 1x1).
        taps: names of the layers after which internal exits go, in
            forward order. Defaults to `RESNET50_TAPS`.
        weights: forwarded to `ResNet50`: `None` (random initialisation),
            `"imagenet"` (downloads) or a weights path.
        head: the exit head of every exit: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to every head.

    Returns:
        A `MultiExitModel` named `"resnet50_exits"`.

    Example:

    ```python
    model = resnet50_exits(num_classes=100)
    model.exit_names  # ['exit_1', 'exit_2', 'exit_3', 'exit_4']
    ```

    References:
        - [He et al., 2016. Deep Residual Learning for Image Recognition](
            https://arxiv.org/abs/1512.03385) (CVPR 2016)
    """
    return _application_exits(
        keras.applications.ResNet50, RESNET50_TAPS, num_classes, input_shape,
        taps, head, damping, head_kwargs, weights=weights, name="resnet50")
