"""Weighted cross-entropy over the exits of a multi-exit model."""

import keras
from keras import ops

from keras_eexit.utils.validation import invalid_value

_CROSSENTROPY_NAMES = (
    "crossentropy",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
)


def per_sample_crossentropy(labels, logits):
    """Cross-entropy of logits against sparse or one-hot labels, per sample.

    Args:
        labels: integer classes of shape `(batch,)` or `(batch, 1)`, or
            one-hot (possibly soft) labels of shape `(batch, num_classes)`.
        logits: float tensor of shape `(batch, num_classes)`.

    Returns:
        A float32 tensor of shape `(batch,)`.

    Example:

    >>> per_sample_crossentropy([0, 1], [[2.0, 0.0], [0.0, 2.0]]).shape
    TensorShape([2])
    """
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    shape = tuple(getattr(labels, "shape", ops.shape(labels)))
    if len(shape) == 2 and shape[-1] not in (1, None) and (
        shape[-1] == num_classes
    ):
        return keras.losses.categorical_crossentropy(
            ops.cast(labels, "float32"), logits, from_logits=True
        )
    if len(shape) == 2 and shape[-1] not in (1, None):
        raise ValueError(
            f"One-hot labels have {shape[-1]} columns but the exit has "
            f"{num_classes} classes. Pass integer labels of shape (batch,) "
            f"or one-hot labels of shape (batch, {num_classes})."
        )
    if len(shape) > 2:
        raise ValueError(
            f"Labels have shape {shape}: expected integer classes of shape "
            "(batch,) or one-hot labels of shape (batch, num_classes)."
        )
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    return keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    )


def resolve_loss(loss):
    """Turns a user's loss argument into a per-sample function on logits.

    Args:
        loss: `None` or a cross-entropy name (logits, label format chosen
            automatically), a `keras.losses.Loss` instance (its per-sample
            `call` is used), or a function `f(y_true, logits)` returning one
            value per sample.

    Returns:
        A function `(labels, logits) -> (batch,)` losses.
    """
    if loss is None or loss in _CROSSENTROPY_NAMES:
        return per_sample_crossentropy
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        return loss.call
    if callable(loss):
        return loss
    raise invalid_value(
        "loss", "None, a loss name, a keras.losses.Loss or a function", loss
    )


class ExitCrossEntropy:
    """Objective term: sum over exits of `w_k * mean_i loss(y_i, logits_ik)`.

    The weights `w_k` are read from `model.exit_weights`, a non-trainable
    variable that regimes assign, so changing them does not retrace the
    train step.

    Args:
        loss: see `resolve_loss`; defaults to cross-entropy on logits.

    Example:

    ```python
    term = ExitCrossEntropy()
    total, per_exit = term(model, x, labels_by_exit, logits_by_exit)
    ```
    """

    name = "crossentropy"

    def __init__(self, loss=None):
        self.loss = loss
        self._per_sample = resolve_loss(loss)

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(weighted total, {exit_name: mean loss})`."""
        per_exit = {}
        total = 0.0
        for k, name in enumerate(model.exit_names):
            values = ops.cast(self._per_sample(y[name], y_pred[name]),
                              "float32")
            if sample_weight is not None:
                weights = ops.reshape(ops.cast(sample_weight, "float32"),
                                      ops.shape(values))
                values = values * weights
            per_exit[name] = ops.mean(values)
            total = total + ops.cast(model.exit_weights[k], "float32") * (
                per_exit[name]
            )
        return total, per_exit
