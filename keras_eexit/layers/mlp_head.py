"""`MLPHead`: global pooling followed by a configurable stack of `Dense`."""

import numbers

import keras

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_feature_shape
from keras_eexit.layers._base import check_pooling
from keras_eexit.layers._base import global_pool
from keras_eexit.layers._base import global_pool_shape
from keras_eexit.utils.validation import invalid_value


@register
class MLPHead(ExitHead):
    """Multi-layer perceptron exit head, for head-size studies.

    A feature map is pooled over its spatial axes, then passed through one
    hidden `Dense` layer per entry of `hidden_units` (each followed by
    `activation` and, when `dropout > 0`, dropout), and mapped to logits by
    a final `Dense`. (A head without hidden layers is `LinearHead`.)

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        hidden_units: Integer >= 1 or non-empty sequence of integers >= 1,
            the widths of the hidden layers. Defaults to `(256,)`.
        activation: Activation of the hidden layers, a name or a callable
            accepted by `keras.activations.get`. Defaults to `"relu"`.
        dropout: Float in [0, 1), the dropout rate after each hidden
            layer. Defaults to `0.0` (no dropout).
        pooling: `"avg"` or `"max"`, the global pooling applied to rank-3
            and rank-4 inputs. Defaults to `"avg"`.
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
    head = MLPHead(10, hidden_units=(128, 64), dropout=0.1, name="exit_1")
    head(features).shape  # (2, 10)
    ```

    References:
        - [Teerapittayanon et al., 2016. BranchyNet: Fast Inference via
            Early Exiting from Deep Neural Networks](
            https://arxiv.org/abs/1709.01686) (exit branches of varying
            size)
    """

    def __init__(
        self,
        num_classes,
        hidden_units=(256,),
        activation="relu",
        dropout=0.0,
        pooling="avg",
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        self.hidden_units = _check_hidden_units(hidden_units)
        self.activation = keras.activations.get(activation)
        self.dropout = check_dropout("dropout", dropout)
        self.pooling = check_pooling(pooling)
        policy = self.dtype_policy
        self.hidden_layers = [
            keras.layers.Dense(
                units,
                activation=self.activation,
                dtype=policy,
                name=f"hidden_{index}",
            )
            for index, units in enumerate(self.hidden_units)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(
                self.dropout, dtype=policy, name=f"dropout_{index}"
            )
            for index in range(len(self.hidden_units))
        ]
        self.logits = self._make_logits_layer()

    def build(self, input_shape):
        shape = global_pool_shape(check_feature_shape(input_shape))
        for dense, dropout in zip(self.hidden_layers, self.dropout_layers):
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
            dropout.build(shape)
        self.logits.build(shape)

    def call(self, inputs, training=None):
        x = global_pool(inputs, self.pooling)
        for dense, dropout in zip(self.hidden_layers, self.dropout_layers):
            x = dropout(dense(x), training=training)
        return self.logits(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config


def _check_hidden_units(hidden_units):
    expected = ("an integer >= 1 or a non-empty sequence of integers >= 1 "
                "(for no hidden layer use LinearHead)")
    if isinstance(hidden_units, numbers.Integral) and not isinstance(
        hidden_units, bool
    ):
        hidden_units = (hidden_units,)
    if isinstance(hidden_units, (str, bytes)):
        raise invalid_value("hidden_units", expected, hidden_units)
    try:
        units = tuple(hidden_units)
    except TypeError:
        raise invalid_value("hidden_units", expected, hidden_units) from None
    if not units:
        raise invalid_value("hidden_units", expected, hidden_units)
    for value in units:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or value < 1
        ):
            raise invalid_value("hidden_units", expected, hidden_units)
    return tuple(int(value) for value in units)
