"""`MSDNetHead`: the CIFAR classifier of MSDNet (and RANet)."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


@register
class MSDNetHead(ExitHead):
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

    RANet (Yang et al., 2020) reuses this classifier
    (`_build_classifier_cifar` of yangle15/RANet-pytorch, `models/RANet.py`),
    so `ranet_cifar` builds its exits with this layer too.

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
        - [Yang et al., 2020. Resolution Adaptive Networks for Efficient
            Inference](https://arxiv.org/abs/2003.07326) (CVPR 2020)
    """

    def __init__(self, num_classes, filters=128, bn_momentum=0.9, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.bn_momentum = check_number("bn_momentum", bn_momentum, 0.0, 1.0,
                                        high_open=True)
        policy = self.dtype_policy
        self.convs, self.norms = [], []
        for i in (1, 2):
            self.convs.append(keras.layers.Conv2D(
                self.filters, 3, strides=2, padding="valid", use_bias=False,
                kernel_initializer="he_normal", dtype=policy,
                name=f"conv_{i}"))
            self.norms.append(keras.layers.BatchNormalization(
                momentum=self.bn_momentum, epsilon=1e-5, dtype=policy,
                name=f"norm_{i}"))
        self.logits = self._make_logits_layer()

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[-1] is None:
            raise invalid_value(
                "input_shape",
                "a 4D shape (batch, height, width, channels) with known "
                "channels",
                shape,
            )
        for conv, norm in zip(self.convs, self.norms):
            padded = (shape[0],) + tuple(
                None if d is None else d + 2 for d in shape[1:3]
            ) + (shape[3],)
            conv.build(padded)
            shape = conv.compute_output_shape(padded)
            norm.build(shape)
        self.logits.build((shape[0], self.filters))

    def call(self, inputs, training=None):
        x = inputs
        for conv, norm in zip(self.convs, self.norms):
            x = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            x = ops.relu(norm(conv(x), training=training))
        return self.logits(ops.mean(x, axis=(1, 2)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": self.filters, "bn_momentum": self.bn_momentum}
        )
        return config
