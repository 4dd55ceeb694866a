"""Shared machinery of the exit heads (private; not part of the public API)."""


import keras
from keras import ops

from keras_eexit.utils.validation import check_bool  # noqa: F401 (re-export)
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value

POOLING_CHOICES = ("avg", "max")



def check_dropout(argument, rate):
    """Returns `rate` as a float if it lies in [0, 1), else raises."""
    return check_number(argument, rate, 0.0, 1.0, high_open=True)


def check_pooling(pooling):
    """Returns `pooling` if it is `"avg"` or `"max"`, else raises."""
    return check_choice("pooling", pooling, POOLING_CHOICES)


def check_feature_shape(input_shape, require_static_spatial=False):
    """Checks a channels-last feature shape and returns it as a tuple.

    The shape must have rank 2 `(batch, features)`, 3 `(batch, steps,
    channels)` or 4 `(batch, height, width, channels)`, with a known last
    dimension. With `require_static_spatial=True` the spatial dimensions
    must be known too.
    """
    shape = tuple(input_shape)
    if len(shape) not in (2, 3, 4):
        raise invalid_value(
            "input_shape",
            "a shape of rank 2 (batch, features), 3 (batch, steps, channels) "
            "or 4 (batch, height, width, channels)",
            shape,
        )
    if shape[-1] is None:
        raise invalid_value(
            "input_shape", "a known last (channels) dimension", shape
        )
    if require_static_spatial and any(d is None for d in shape[1:-1]):
        raise invalid_value(
            "input_shape", "known (static) spatial dimensions", shape
        )
    return shape


def global_pool(x, pooling):
    """Pools a channels-last tensor over all its spatial axes.

    Rank-2 inputs are returned unchanged.
    """
    axes = tuple(range(1, len(x.shape) - 1))
    if not axes:
        return x
    if pooling == "max":
        return ops.max(x, axis=axes)
    return ops.mean(x, axis=axes)


def global_pool_shape(input_shape):
    """Output shape of `global_pool` for `input_shape`."""
    return (input_shape[0], input_shape[-1])


class ExitHead(keras.layers.Layer):
    """Base class of the exit heads: validation, logits layer, shapes.

    Subclasses map a channels-last feature tensor of rank 2, 3 or 4 to
    logits of shape `(batch, num_classes)`. They create their final
    `Dense` with `self._make_logits_layer()`; it computes in `float32`
    when the head's dtype policy is mixed (so the logits are `float32`,
    as Keras' mixed-precision guidance recommends for model outputs) and
    with the head's policy otherwise.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes)

    def _is_mixed(self):
        policy = self.dtype_policy
        return policy.compute_dtype != policy.variable_dtype

    def _logits_dtype(self):
        return "float32" if self._is_mixed() else self.dtype_policy

    def _make_logits_layer(self):
        return keras.layers.Dense(
            self.num_classes, dtype=self._logits_dtype(), name="logits"
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs, training=None):
        dtype = "float32" if self._is_mixed() else self.compute_dtype
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


def check_epsilon(value):
    """Returns `value` as a `float` if it is a number > 0, else raises."""
    return check_number("epsilon", value, 0.0, low_open=True)


def check_token_shape(input_shape, dim=None):
    """Checks a `(batch, tokens, dim)` shape (and its last axis if given)."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] is None:
        raise invalid_value(
            "input_shape",
            "a shape of rank 3 (batch, tokens, dim) with a known last axis",
            shape,
        )
    if dim is not None and shape[-1] != dim:
        raise invalid_value(
            "input_shape", f"a last (feature) axis of size dim={dim}", shape
        )
    return shape


def check_token_ids_shape(input_shape):
    """Checks a `(batch, sequence_length)` shape of token ids."""
    shape = tuple(input_shape)
    if len(shape) != 2:
        raise invalid_value(
            "input_shape",
            "a shape (batch_size, sequence_length) of token ids",
            shape,
        )
    return shape
