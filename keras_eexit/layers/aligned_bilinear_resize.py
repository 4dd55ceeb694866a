"""`AlignedBilinearResize`: PyTorch's `align_corners=True` bilinear resize."""

import keras
import numpy as np
from keras import ops

from keras_eexit.api import register
from keras_eexit.utils.validation import check_positive_int


@register
class AlignedBilinearResize(keras.layers.Layer):
    """Bilinear resize to a fixed size with aligned corners.

    PyTorch's `F.interpolate(x, size, mode="bilinear", align_corners=True)`,
    which RANet uses to bring features of one sub-network to the resolution
    of another: output pixel `i` of an axis of size `out` samples the input
    at `i * (in - 1) / (out - 1)` (the corner pixels of input and output
    coincide). Implemented with gathers and element-wise weights, so it has
    no multiply-adds of a convolution or matrix product (and none in the
    FLOP count), and it exports to LiteRT with built-in ops.

    Args:
        height: Integer >= 1, the output height.
        width: Integer >= 1, the output width.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch, in_height, in_width, channels)` with known
        spatial sizes.

    Output shape:
        4D tensor `(batch, height, width, channels)`.
    """

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = check_positive_int("height", height)
        self.width = check_positive_int("width", width)

    @staticmethod
    def _taps(size_in, size_out):
        if size_out == 1 or size_in == 1:
            pos = np.zeros(size_out)
        else:
            pos = np.arange(size_out) * (size_in - 1) / (size_out - 1)
        low = np.clip(np.floor(pos).astype("int32"), 0, size_in - 1)
        high = np.minimum(low + 1, size_in - 1)
        return low, high, (pos - low).astype("float32")

    def _resize_axis(self, x, axis, size_out):
        size_in = x.shape[axis]
        if size_in is None:
            raise ValueError(
                f"AlignedBilinearResize {self.name!r} needs static spatial "
                f"sizes; received a tensor of shape {x.shape}."
            )
        if size_in == size_out:
            return x
        low, high, frac = self._taps(size_in, size_out)
        shape = [1, 1, 1, 1]
        shape[axis] = size_out
        frac = ops.cast(ops.reshape(frac, shape), x.dtype)
        a = ops.take(x, low, axis=axis)
        b = ops.take(x, high, axis=axis)
        return a + (b - a) * frac

    def call(self, inputs):
        x = self._resize_axis(inputs, 1, self.height)
        return self._resize_axis(x, 2, self.width)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width})
        return config
