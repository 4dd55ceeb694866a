"""`SDNPoolHead`: the internal classifier of Shallow-Deep Networks."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_feature_shape
from keras_eexit.utils.validation import check_positive_int

_MAX_POOLS = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D}
_AVG_POOLS = {
    1: keras.layers.AveragePooling1D,
    2: keras.layers.AveragePooling2D,
}


@register
class SDNPoolHead(ExitHead):
    """Internal classifier of Shallow-Deep Networks (mixed max/avg pooling).

    The head reduces a feature map with a max-pool and an average-pool of
    the same pool size, mixes them with a learned scalar `alpha`,

    `mixed = alpha * max_pool(x) + (1 - alpha) * avg_pool(x)`,

    then flattens the result and maps it to logits with one `Dense` layer.
    `alpha` is a trainable scalar initialised uniformly in [0, 1) and left
    unconstrained, as in the reference implementation.

    The pool size along each spatial axis of size `d` is
    `d // reduced_size` (pool strides equal the pool size, `"valid"`
    padding), the feature-reduction formula of the SDN reference code.
    When every spatial axis has `d < 2 * reduced_size` that pool size is 1,
    pooling would be the identity and the head skips it (and has no
    `alpha`); the flattened map then goes straight to the `Dense` layer.
    Rank-2 inputs are never pooled. Unlike the reference code, which
    assumes square maps, non-square maps get a pool size per axis.

    The spatial dimensions must be known when the head is built, because
    the `Dense` layer acts on the flattened map.

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        reduced_size: Integer >= 1, the target spatial size after the
            reduction. Defaults to `4`, the value of the SDN paper.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A channels-last feature tensor (see input shape).
        training: Python boolean; unused, accepted for uniformity.

    Input shape:
        2D tensor `(batch_size, features)`, 3D tensor
        `(batch_size, steps, channels)` or 4D tensor
        `(batch_size, height, width, channels)`, with known spatial
        dimensions.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    features = keras.random.normal((2, 16, 16, 32))
    head = SDNPoolHead(10, name="exit_1")  # pools 16x16 down to 4x4
    head(features).shape  # (2, 10)
    ```

    References:
        - [Kaya et al., 2019. Shallow-Deep Networks: Understanding and
            Mitigating Network Overthinking](
            https://arxiv.org/abs/1810.07052) (ICML 2019)
    """

    def __init__(self, num_classes, reduced_size=4, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.reduced_size = check_positive_int("reduced_size", reduced_size)
        self.max_pool = None
        self.avg_pool = None
        self.alpha = None
        self.flatten = keras.layers.Flatten(
            dtype=self.dtype_policy, name="flatten"
        )
        self.logits = self._make_logits_layer()

    def _pool_size(self, shape):
        spatial = shape[1:-1]
        pool_size = tuple(max(1, d // self.reduced_size) for d in spatial)
        if all(p == 1 for p in pool_size):
            return None
        return pool_size

    def build(self, input_shape):
        shape = check_feature_shape(input_shape, require_static_spatial=True)
        pool_size = self._pool_size(shape)
        if pool_size is not None:
            rank = len(pool_size)
            self.max_pool = _MAX_POOLS[rank](
                pool_size=pool_size,
                strides=pool_size,
                padding="valid",
                dtype=self.dtype_policy,
                name="max_pool",
            )
            self.avg_pool = _AVG_POOLS[rank](
                pool_size=pool_size,
                strides=pool_size,
                padding="valid",
                dtype=self.dtype_policy,
                name="avg_pool",
            )
            self.max_pool.build(shape)
            self.avg_pool.build(shape)
            self.alpha = self.add_weight(
                shape=(),
                initializer=keras.initializers.RandomUniform(0.0, 1.0),
                trainable=True,
                name="alpha",
            )
            shape = self.max_pool.compute_output_shape(shape)
        self.flatten.build(shape)
        self.logits.build(self.flatten.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = inputs
        if self.max_pool is not None:
            alpha = ops.cast(self.alpha, self.compute_dtype)
            x = alpha * self.max_pool(x) + (1.0 - alpha) * self.avg_pool(x)
        x = self.flatten(x)
        return self.logits(x)

    def get_config(self):
        config = super().get_config()
        config.update({"reduced_size": self.reduced_size})
        return config
