"""Accuracy of an exit's logits, for integer or one-hot labels alike."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.losses.labels import sparse_labels

ACCURACY_NAMES = ("accuracy", "acc")
"""Metric names `MultiExitModel.compile` reads as `ExitAccuracy`."""


def exit_accuracy(y_true, y_pred):
    """1.0 where the arg-max of `y_pred` is the label's class, else 0.0.

    Args:
        y_true: integer classes `(batch,)`/`(batch, 1)` or one-hot rows
            `(batch, num_classes)` (a soft row counts as its arg-max).
        y_pred: logits or probabilities `(batch, num_classes)`.

    Returns:
        A float32 tensor of shape `(batch,)`.

    Example:

    >>> exit_accuracy([1, 0], [[0.1, 2.0], [0.3, 0.2]]).numpy().tolist()
    [1.0, 1.0]
    >>> one_hot = [[0, 1], [0, 1]]
    >>> exit_accuracy(one_hot, [[0.1, 2.0], [0.3, 0.2]]).numpy().tolist()
    [1.0, 0.0]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    labels = sparse_labels(y_true, y_pred.shape[-1], "the exit")
    predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    return ops.cast(ops.equal(labels, predicted), "float32")


@register
class ExitAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy of an exit that reads integer and one-hot labels alike.

    Keras' `"accuracy"` string becomes sparse or categorical accuracy from
    the labels of the first batch it sees, and keeps that choice: a model
    fitted on one-hot labels and then evaluated on integer labels would
    report a wrong accuracy without a word. `MultiExitModel.compile` puts
    this metric in place of `"accuracy"`/`"acc"`; it decides the label form
    at every batch from the label shape (`keras_eexit.losses.labels`).

    Args:
        name: the metric's name (logged as `exit_k_<name>`).
        dtype: the metric's dtype.

    Example:

    ```python
    model.compile(optimizer="adam", metrics=[ExitAccuracy()])
    ```
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=exit_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
