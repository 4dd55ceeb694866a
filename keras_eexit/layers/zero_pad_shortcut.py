"""`ZeroPadShortcut`: the parameter-free shortcut of CIFAR ResNets."""

import keras
from keras import ops

from keras_eexit.api import register


@register
class ZeroPadShortcut(keras.layers.Layer):
    """Parameter-free shortcut of a downsampling residual block.

    The "option A" shortcut of He et al.'s CIFAR ResNets: the input is
    subsampled with the block's stride (every `strides`-th row and column)
    and its channels are zero-padded, evenly on both sides, up to
    `filters`.

    Args:
        filters: number of output channels (>= the input's).
        strides: spatial subsampling factor.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input shape:
        4D tensor `(batch, height, width, channels)`.

    Output shape:
        4D tensor `(batch, ceil(height / strides), ceil(width / strides),
        filters)`.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def _padding(self, channels):
        extra = self.filters - channels
        if extra < 0:
            raise ValueError(
                f"ZeroPadShortcut cannot reduce {channels} channels to "
                f"{self.filters}."
            )
        return extra // 2, extra - extra // 2

    def call(self, inputs):
        s = self.strides
        x = inputs[:, ::s, ::s, :]
        before, after = self._padding(inputs.shape[-1])
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, after]])

    def compute_output_shape(self, input_shape):
        self._padding(input_shape[-1])

        def sub(d):
            return None if d is None else -(-d // self.strides)

        return (
            input_shape[0],
            sub(input_shape[1]),
            sub(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        return config
