"""`ConvPoolHead`: convolutional exit head with pooling and a hidden layer."""

import keras

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_feature_shape
from keras_eexit.layers._base import global_pool
from keras_eexit.layers._base import global_pool_shape
from keras_eexit.utils.validation import check_positive_int

_MAX_POOLS = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D}
_CONVS = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}


@register
class ConvPoolHead(ExitHead):
    """Convolutional exit head: pool, conv block, pool, hidden `Dense`.

    The layer sequence is

    `MaxPool -> Conv(filters, 3, "same") -> BatchNorm -> ReLU
    -> [MaxPool if second_pool] -> Flatten (if flatten) or global average
    pooling -> Dense(hidden_units) -> Dropout -> BatchNorm
    -> Dense(num_classes)`,

    the exit branch used in the comparison of early-exit training
    strategies of "Strategies at a glance". The second max-pool is meant
    for early exits, whose feature maps are larger. The hidden `Dense` has
    no activation, as in that sequence. The head returns logits.

    Pooling never shrinks a spatial axis below 1: each max-pool has pool
    size and strides 2 with `"same"` padding (an axis of size `d` becomes
    `ceil(d / 2)`; for even sizes this equals the usual `floor(d / 2)`),
    an axis already of size 1 is pooled with size 1 (left as is), and a
    max-pool whose every spatial axis is already 1 is skipped, so no layer
    is created for it. Rank-2 inputs `(batch, features)` skip the
    convolutional part and go straight to the hidden `Dense`.

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        filters: Integer >= 1, the number of convolution filters.
            Defaults to `128`.
        hidden_units: Integer >= 1, the width of the hidden `Dense`.
            Defaults to `128`.
        dropout: Float in [0, 1), the dropout rate after the hidden
            `Dense`. Defaults to `0.5`.
        second_pool: Boolean, whether to add the second max-pool after
            the convolution block. Defaults to `True`.
        flatten: Boolean. If `True` the pooled map is flattened (its
            spatial dimensions must then be known); if `False` it is
            globally average-pooled. Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A channels-last feature tensor (see input shape).
        training: Python boolean, whether dropout and batch normalization
            run in training mode.

    Input shape:
        2D tensor `(batch_size, features)`, 3D tensor
        `(batch_size, steps, channels)` or 4D tensor
        `(batch_size, height, width, channels)`.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    features = keras.random.normal((2, 16, 16, 32))
    head = ConvPoolHead(10, filters=64, hidden_units=64, name="exit_1")
    head(features).shape  # (2, 10)
    ```

    References:
        - [Strategies at a glance: A comparative analysis of training
            techniques for optimizing early-exit deep neural networks](
            https://openreview.net/forum?id=GTCMDQ4nhP)
    """

    def __init__(
        self,
        num_classes,
        filters=128,
        hidden_units=128,
        dropout=0.5,
        second_pool=True,
        flatten=False,
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.hidden_units = check_positive_int("hidden_units", hidden_units)
        self.dropout = check_dropout("dropout", dropout)
        self.second_pool = check_bool("second_pool", second_pool)
        self.flatten = check_bool("flatten", flatten)
        policy = self.dtype_policy
        # Rank-dependent sublayers are created in `build`.
        self.pool_1 = None
        self.conv = None
        self.conv_norm = None
        self.conv_activation = None
        self.pool_2 = None
        self.flatten_layer = None
        self.hidden = keras.layers.Dense(
            self.hidden_units, dtype=policy, name="hidden"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="dropout"
        )
        self.hidden_norm = keras.layers.BatchNormalization(
            dtype=policy, name="hidden_norm"
        )
        self.logits = self._make_logits_layer()

    def _make_pool(self, shape, name):
        spatial = shape[1:-1]
        if all(d == 1 for d in spatial):
            return None
        pool_size = tuple(1 if d == 1 else 2 for d in spatial)
        pool = _MAX_POOLS[len(spatial)](
            pool_size=pool_size,
            strides=pool_size,
            padding="same",
            dtype=self.dtype_policy,
            name=name,
        )
        pool.build(shape)
        return pool

    def build(self, input_shape):
        shape = check_feature_shape(
            input_shape, require_static_spatial=self.flatten
        )
        if len(shape) > 2:
            policy = self.dtype_policy
            self.pool_1 = self._make_pool(shape, "pool_1")
            if self.pool_1 is not None:
                shape = self.pool_1.compute_output_shape(shape)
            self.conv = _CONVS[len(shape) - 2](
                self.filters, 3, padding="same", dtype=policy, name="conv"
            )
            self.conv.build(shape)
            shape = self.conv.compute_output_shape(shape)
            self.conv_norm = keras.layers.BatchNormalization(
                dtype=policy, name="conv_norm"
            )
            self.conv_norm.build(shape)
            self.conv_activation = keras.layers.ReLU(
                dtype=policy, name="conv_activation"
            )
            self.conv_activation.build(shape)
            if self.second_pool:
                self.pool_2 = self._make_pool(shape, "pool_2")
                if self.pool_2 is not None:
                    shape = self.pool_2.compute_output_shape(shape)
            if self.flatten:
                self.flatten_layer = keras.layers.Flatten(
                    dtype=policy, name="flatten"
                )
                self.flatten_layer.build(shape)
                shape = self.flatten_layer.compute_output_shape(shape)
            else:
                shape = global_pool_shape(shape)
        self.hidden.build(shape)
        shape = self.hidden.compute_output_shape(shape)
        self.dropout_layer.build(shape)
        self.hidden_norm.build(shape)
        self.logits.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        if self.conv is not None:
            if self.pool_1 is not None:
                x = self.pool_1(x)
            x = self.conv(x)
            x = self.conv_norm(x, training=training)
            x = self.conv_activation(x)
            if self.pool_2 is not None:
                x = self.pool_2(x)
            if self.flatten_layer is not None:
                x = self.flatten_layer(x)
            else:
                x = global_pool(x, "avg")
        x = self.hidden(x)
        x = self.dropout_layer(x, training=training)
        x = self.hidden_norm(x, training=training)
        return self.logits(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "second_pool": self.second_pool,
                "flatten": self.flatten,
            }
        )
        return config
