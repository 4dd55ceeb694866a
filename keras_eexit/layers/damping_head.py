"""`DampingHead`: any exit head plus one output unit standing for no class."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.chain import has_damping_unit
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import invalid_value

PROBABILITY_MODES = ("renormalized", "n_plus_1")
"""How class probabilities are read from N + 1 logits (see
`class_probabilities`)."""


def class_probabilities(logits, mode="renormalized"):
    """Class probabilities over the N classes from a damping head's logits.

    The damping unit stands for no class, so it is never a prediction. The
    N class probabilities can be read two ways:

    - `"renormalized"` (default): the softmax of the N class logits, i.e. the
      N + 1 softmax renormalised over the classes. Rows sum to 1, so
      max-softmax and entropy exit criteria behave as with a plain head.
    - `"n_plus_1"`: the first N entries of the softmax over all N + 1
      logits. Rows sum to `1 - F[N+1]`: mass the head gives the damping unit
      lowers every class confidence, so such samples are less likely to
      leave at that exit.

    Both give the same arg-max.

    Args:
        logits: float tensor `(batch, N + 1)`, the damping unit last.
        mode: `"renormalized"` or `"n_plus_1"`.

    Returns:
        A float32 tensor `(batch, N)`.

    Example:

    >>> class_probabilities([[0.0, 0.0, 0.0]], "n_plus_1").numpy().round(3)
    array([[0.333, 0.333]], dtype=float32)
    """
    check_choice("mode", mode, PROBABILITY_MODES)
    logits = ops.cast(logits, "float32")
    if mode == "renormalized":
        return ops.softmax(logits[..., :-1], axis=-1)
    return ops.softmax(logits, axis=-1)[..., :-1]


@register
class DampingHead(keras.layers.Layer):
    """An exit head with one extra output unit that stands for no class.

    The "damping neuron" of adaptive damping training: the head's final
    `Dense` has `num_classes + 1` units and the softmax runs over all of
    them. A damping loss (`keras_eexit.losses.DampingLoss`,
    `keras_eexit.losses.PowerSqrtDampingLoss`) lets the extra unit absorb
    probability mass, which shrinks the gradients of samples a classifier
    gains little from.

    Any head works: the wrapped head is created for `num_classes + 1`
    outputs (a name from `keras_eexit.layers.HEADS`, a head class or a
    factory, exactly as `get_head` takes them), so the damping unit is one
    more neuron of the head's last fully connected layer.

    The layer exposes `damping = True` and `num_classes` (N, the classes
    without the damping unit), so that `MultiExitModel.num_classes` is N,
    labels are checked against N classes, compiled metrics see the N class
    logits, `keras_eexit.evaluation.collect` and export drop the unit from
    probabilities (see `class_probabilities`). Calling the head returns all
    N + 1 logits.

    Args:
        num_classes: Integer >= 2, the number of classes N (without the
            damping unit).
        head: the head to extend: a name from `keras_eexit.layers.HEADS`
            (`"linear"`, `"sdn_pool"`, `"conv_pool"`, `"mlp"`), a head
            class, a factory `f(num_classes, name=...)`, or a layer instance
            that outputs `num_classes + 1` logits (as when deserialised).
            Defaults to `"linear"`.
        head_kwargs: optional dict of arguments of the wrapped head (e.g.
            `{"dropout": 0.2}`); not allowed with a layer instance.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: the feature tensor the wrapped head reads.
        training: Python boolean, forwarded to the wrapped head.

    Input shape:
        That of the wrapped head (for the built-in heads: rank 2, 3 or 4,
        channels last).

    Output shape:
        2D tensor `(batch_size, num_classes + 1)` of logits, the damping unit
        last.

    Example:

    ```python
    features = keras.random.normal((2, 8, 8, 16))
    head = DampingHead(10, head="mlp", head_kwargs={"hidden_units": 32},
                       name="exit_1")
    head(features).shape  # (2, 11)
    head.num_classes  # 10
    ```

    References:
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks (ICLR 2026 submission,
            https://openreview.net/forum?id=0L54sroHRw)
    """

    damping = True

    def __init__(self, num_classes, head="linear", head_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes)
        self.head_kwargs = dict(head_kwargs or {})
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if isinstance(head, keras.layers.Layer):
            if self.head_kwargs:
                raise invalid_value(
                    "head_kwargs",
                    "no arguments when `head` is a layer instance",
                    self.head_kwargs,
                )
            layer = head
        else:
            from keras_eexit.layers import get_head

            if isinstance(head, str) or (
                isinstance(head, type) and issubclass(head, keras.layers.Layer)
            ):
                self.head_kwargs.setdefault("dtype", self.dtype_policy)
            layer = get_head(head, self.num_classes + 1, name="head",
                             **self.head_kwargs)
            self.head_kwargs.pop("dtype", None)
        if has_damping_unit(layer):
            raise invalid_value(
                "head", "a head without a damping unit (heads do not nest)",
                layer,
            )
        self.head = layer

    def build(self, input_shape):
        if not self.head.built:
            self.head.build(input_shape)
        units = self.head.compute_output_shape(input_shape)[-1]
        if units is not None and units != self.num_classes + 1:
            raise ValueError(
                f"DampingHead {self.name!r} wraps a head with {units} "
                f"outputs, but needs num_classes + 1 = {self.num_classes + 1}"
                f" ({self.num_classes} classes and the damping unit)."
            )

    def call(self, inputs, training=None):
        return self.head(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes + 1)

    def compute_output_spec(self, inputs, training=None):
        return self.head.compute_output_spec(inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "head": keras.saving.serialize_keras_object(self.head),
            }
        )
        return config
