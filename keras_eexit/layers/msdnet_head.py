"""`MSDNetHead`: the CIFAR classifier of MSDNet."""

from keras_eexit.api import register
from keras_eexit.layers.ranet_head import RANetHead


@register
class MSDNetHead(RANetHead):
    """MSDNet's CIFAR exit classifier: two strided conv blocks, pool, linear.

    The layer sequence is

    `[Conv(filters, 3, strides=2, padding 1) -> BatchNorm -> ReLU] x 2
    -> global average pooling -> Dense(num_classes)`,

    the classifier `_build_classifier_cifar` of the MSDNet code
    (kalviny/MSDNet-PyTorch, `models/msdnet.py`; the Lua original
    gaohuang/MSDNet builds the same one). It reads the coarsest scale of the
    network. The convolutions have no bias and pad one pixel on every side,
    as PyTorch's `padding=1` does. The reference pools with `AvgPool2d(2)`
    and feeds 128 features to the linear layer, which only works for a 2x2
    map (an 8x8 head input, the CIFAR case); global average pooling is the
    same there and also accepts other sizes. The head returns logits.

    RANet (Yang et al., 2020) reuses this classifier, so the layer computes
    exactly what `keras_eexit.layers.RANetHead` computes; it is a separate
    class so that saved MSDNets name the classifier of their paper.

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        filters: Integer >= 1, the channels of both convolutions. Defaults
            to `128` (the reference's `interChannels1, interChannels2`).
        bn_momentum: Float in [0, 1), the momentum of the batch
            normalizations (Keras convention: weight of the old moving
            statistics). Defaults to `0.9`, which equals PyTorch's default
            `momentum=0.1` of the reference.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 4D channels-last feature tensor.
        training: Python boolean, whether batch normalization runs in
            training mode.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    features = keras.random.normal((2, 8, 8, 384))
    head = MSDNetHead(100, name="exit_1")
    head(features).shape  # (2, 100)
    ```

    References:
        - [Huang et al., 2018. Multi-Scale Dense Networks for Resource
            Efficient Image Classification](
            https://arxiv.org/abs/1703.09844) (ICLR 2018); code:
            https://github.com/gaohuang/MSDNet,
            https://github.com/kalviny/MSDNet-PyTorch
    """
