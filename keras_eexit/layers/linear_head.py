"""`LinearHead`: global pooling, optional dropout and one `Dense` layer."""

import keras

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_feature_shape
from keras_eexit.layers._base import check_pooling
from keras_eexit.layers._base import global_pool
from keras_eexit.layers._base import global_pool_shape


@register
class LinearHead(ExitHead):
    """Linear exit head: global pooling, dropout, then a `Dense` to logits.

    The smallest useful exit: a feature map is pooled over its spatial axes
    (all axes but the batch and the last, channels, axis), optionally
    passed through dropout, and mapped to one logit per class. The head
    returns logits (no softmax).

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        pooling: `"avg"` or `"max"`, the global pooling applied to rank-3
            and rank-4 inputs. Defaults to `"avg"`.
        dropout: Float in [0, 1), the dropout rate applied to the pooled
            features during training. Defaults to `0.0` (no dropout).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A channels-last feature tensor (see input shape).
        training: Python boolean, whether dropout is active.

    Input shape:
        2D tensor `(batch_size, features)` (used as is), 3D tensor
        `(batch_size, steps, channels)` or 4D tensor
        `(batch_size, height, width, channels)`.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    features = keras.random.normal((2, 8, 8, 16))
    head = LinearHead(10, pooling="avg", dropout=0.2, name="exit_1")
    head(features).shape  # (2, 10)
    ```

    References:
        - [Lin et al., 2014. Network In Network](
            https://arxiv.org/abs/1312.4400) (global average pooling)
    """

    def __init__(self, num_classes, pooling="avg", dropout=0.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.pooling = check_pooling(pooling)
        self.dropout = check_dropout("dropout", dropout)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.logits = self._make_logits_layer()

    def build(self, input_shape):
        shape = check_feature_shape(input_shape)
        pooled_shape = global_pool_shape(shape)
        self.dropout_layer.build(pooled_shape)
        self.logits.build(pooled_shape)

    def call(self, inputs, training=None):
        x = global_pool(inputs, self.pooling)
        x = self.dropout_layer(x, training=training)
        return self.logits(x)

    def get_config(self):
        config = super().get_config()
        config.update({"pooling": self.pooling, "dropout": self.dropout})
        return config
