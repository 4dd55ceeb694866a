"""Eager checks of what `fit` / `evaluate` receive, with clear messages.

Keras would otherwise fail deep inside a traced step (or, for NaN inputs,
not at all: a NaN pixel can pass a ReLU unnoticed and poison the weights).
"""

import keras
import numpy as np

from keras_eexit.utils.lazy_import import is_tf_dataset


def check_data(x, y, num_classes, what="fit", sample_weight=None):
    """Checks inputs, labels and sample weights before `fit`/`evaluate`.

    Arrays are checked in full; of a `tf.data.Dataset` the first batch is
    checked (an empty data set is an error).

    Args:
        x: the inputs given to `fit`/`evaluate` (array or data set).
        y: the labels (or `None` when `x` is a data set of pairs).
        num_classes: the model's number of classes (`None`: unknown).
        what: `"fit"` or `"evaluate"`, for the messages.
        sample_weight: the `sample_weight` argument, if any.

    Raises:
        ValueError: empty data, non-finite inputs, malformed labels,
            non-finite or negative sample weights.
    """
    if is_tf_dataset(x):
        batches = list(x.take(1))
        if not batches:
            raise ValueError(
                f"{what} received an empty tf.data.Dataset: it yielded no "
                "batch. Check the pipeline (a `filter`, `take(0)` or an "
                "exhausted iterator)."
            )
        x, batch_y, batch_weight = keras.utils.unpack_x_y_sample_weight(
            batches[0])
        y = batch_y if y is None else y
        sample_weight = batch_weight if sample_weight is None else \
            sample_weight
    elif _num_samples(x) == 0:
        raise ValueError(
            f"{what} received 0 samples (inputs of shape "
            f"{np.shape(x)}): there is nothing to train or evaluate on."
        )
    check_finite_inputs(x)
    check_sample_weights(sample_weight, what)
    if y is None or num_classes is None:
        return
    labels = y.values() if isinstance(y, dict) else [y]
    for value in labels:
        if isinstance(value, (list, tuple)) and value and not all(
            isinstance(v, (int, float, np.number)) for v in value
        ):
            if any(isinstance(v, str) for v in value):
                raise _string_labels(value)
            return  # structure errors are raised by the train step
        check_label_values(np.asarray(value), num_classes)


def label_rank(x, y):
    """The rank of the labels `fit`/`evaluate` receive, or `None`.

    Integer labels have rank 1, one-hot rows rank 2. Read from the array
    `y`, or from the element spec of a `tf.data.Dataset` of pairs.

    Args:
        x: the inputs (an array or a data set).
        y: the labels, or `None` when `x` is a data set of pairs.

    Returns:
        An int, or `None` when it cannot be told without running the data.
    """
    if y is None:
        spec = getattr(x, "element_spec", None)
        if not isinstance(spec, tuple) or len(spec) < 2:
            return None
        y = spec[1]
    if isinstance(y, dict):
        y = next(iter(y.values()), None)
    shape = getattr(y, "shape", None)
    if shape is None:
        try:
            return np.ndim(y)
        except (TypeError, ValueError):
            return None
    if isinstance(shape, tuple):  # NumPy
        return len(shape)
    return getattr(shape, "rank", None)  # a TensorShape/TensorSpec's


def labels_as_array(y):
    """A plain list/tuple of class labels as a NumPy array, else `y`.

    Keras' data adapters refuse a Python list of labels next to array
    inputs (printing the whole array); one label per sample is what a
    multi-exit model takes, so such a list is converted.
    """
    if isinstance(y, (list, tuple)) and y and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        for v in y
    ):
        return np.asarray(y)
    return y


def _num_samples(x):
    if x is None or isinstance(x, dict):
        return None
    try:
        shape = np.shape(x)
    except (TypeError, ValueError):
        return None
    return shape[0] if shape else None


def _string_labels(values):
    sample = list(np.asarray(values).reshape(-1)[:3])
    return ValueError(
        f"Labels are strings (such as {sample}): the model needs integer "
        "class indices in [0, num_classes) or one-hot rows. Map them first, "
        "e.g. `classes, y = numpy.unique(labels, return_inverse=True)`."
    )


def check_sample_weights(sample_weight, what="fit"):
    """Raises if sample weights hold NaN, Inf or negative values.

    A NaN weight makes the weighted loss, and after one step every weight
    of the model, NaN; Keras would train on without a word.

    Args:
        sample_weight: an array of weights (or a dict of them), or `None`.
        what: the call, for the message.
    """
    if sample_weight is None:
        return
    values = sample_weight.values() if isinstance(sample_weight, dict) \
        else [sample_weight]
    for value in values:
        weights = np.asarray(value, dtype="float64")
        bad = np.argwhere(~np.isfinite(weights) | (weights < 0))
        if len(bad):
            first = tuple(int(i) for i in bad[0])
            raise ValueError(
                f"{what} received {len(bad)} invalid sample weights (NaN, "
                f"Inf or negative), the first at index {first[0]}: "
                f"{weights[first]}. Sample weights must be finite and "
                ">= 0 (0 drops a sample)."
            )


_NON_FINITE_CONSEQUENCE = {
    "training": "the model's outputs on them are NaN, and training on "
                "them makes the weights NaN",
    "inference": "the model's outputs on them are NaN, so its "
                 "predictions for them would be NaN",
}


def check_finite_inputs(x, first_sample=0, use="training"):
    """Raises if a floating-point input array holds NaN or Inf values.

    Args:
        x: the inputs (arrays are checked; other structures are skipped).
        first_sample: the index of `x`'s first row in the whole data, so
            that the message names the right sample of a batched data set.
        use: `"training"` (`fit`, `evaluate`) or `"inference"`
            (predictions), for what the message says NaN inputs cause.
    """
    if isinstance(x, (list, tuple, dict)) or x is None:
        return
    try:
        values = np.asarray(x)
    except (TypeError, ValueError):
        return
    if not np.issubdtype(values.dtype, np.floating):
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    raise ValueError(
        f"Inputs contain {len(bad)} non-finite values (NaN or Inf), the "
        f"first in sample {first_sample + int(bad[0][0])}: "
        f"{_NON_FINITE_CONSEQUENCE[use]}. Clean or impute the data first."
    )


def check_label_values(labels, num_classes):
    """Raises unless `labels` are class indices or one-hot rows.

    Args:
        labels: a NumPy array.
        num_classes: the model's number of classes.
    """
    if labels.dtype.kind in "USO":
        if labels.dtype.kind == "O" and all(
            isinstance(v, (int, float, np.number)) for v in labels.flat
        ):
            labels = labels.astype(np.float64)
        else:
            raise _string_labels(labels)
    if labels.dtype.kind == "b":
        raise ValueError(
            "Labels are booleans: pass integer class indices (0/1 for two "
            "classes) or one-hot rows."
        )
    if labels.ndim == 2 and labels.shape[-1] not in (1,):
        if labels.shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {labels.shape[-1]} columns but the "
                f"model has {num_classes} classes. Pass integer labels in "
                f"[0, {num_classes}) or one-hot labels with {num_classes} "
                "columns."
            )
        return
    if labels.ndim > 2:
        raise ValueError(
            f"Labels have shape {labels.shape}: expected integer classes of "
            "shape (batch,) or one-hot labels of shape (batch, num_classes)."
        )
    if labels.size == 0:
        return
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(
        labels == np.round(labels)
    ):
        raise ValueError(
            "Integer class labels expected; received non-integer values "
            f"such as {labels.reshape(-1)[:3].tolist()}."
        )
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Labels out of range: the model has {num_classes} classes, so "
            f"labels must be in [0, {num_classes - 1}]. Received labels "
            f"from {low} to {high}."
        )


def labels_per_exit(data, exit_names):
    """Gives the single label of each sample to every exit.

    Args:
        data: a batch `(x, y)` or `(x, y, sample_weight)`; `y` may also be a
            dict keyed by exit name.
        exit_names: the model's exit names.

    Returns:
        The batch with `y` as `{exit_name: y}`.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError(
            "Training and evaluation need labels: pass `y` (one label "
            "per sample) or a data set of `(x, y)` pairs."
        )
    if isinstance(y, dict):
        if set(y) != set(exit_names):
            raise ValueError(
                "Label/exit structure mismatch: a dict of labels must "
                f"have one entry per exit {list(exit_names)}. Received "
                f"keys: {sorted(y)}."
            )
    elif isinstance(y, (list, tuple)):
        raise ValueError(
            "Label/exit structure mismatch: pass one label per sample "
            "(applied to every exit) or a dict keyed by exit name "
            f"{list(exit_names)}. Received a {type(y).__name__} of "
            f"{len(y)} label tensors."
        )
    else:
        y = {name: y for name in exit_names}
    return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def check_input_shape(received, expected, where=None):
    """Raises unless a batch of `received` shape fits the model's input.

    The one shape check of a multi-exit model's inputs: `MultiExitModel`'s
    call (so `fit`, `evaluate` and `predict`), `predict_early_exit` and
    `evaluation.collect` compare with the input shape the model declares
    (or was built with), never relying on a layer to fail: a network whose
    stages end in global pooling would compute numbers for any image size.

    Args:
        received: the batch's shape (batch axis first; `None` for unknown
            axes, which match anything).
        expected: the model's input shape without the batch axis (`None`
            axes accept any size), or `None` when unknown (no check).
        where: the call that received the batch, named in the message
            (`"predict_early_exit"`); `None` for the model's own calls.

    Raises:
        ValueError: for a different rank or a different known size.

    Example:

    >>> check_input_shape((4, 8, 8, 1), (8, 8, 1))
    >>> check_input_shape((4, 9, 9, 1), (8, 8, 1), "collect")
    Traceback (most recent call last):
    ...
    ValueError: Input shape mismatch in collect: the model expects inputs \
of shape (None, 8, 8, 1) (batch first). Received: inputs with shape \
(4, 9, 9, 1).
    """
    if expected is None or received is None or getattr(
            received, "rank", 0) is None:
        return
    received = tuple(None if d is None else int(d) for d in received)
    expected = tuple(expected)
    if len(received) != len(expected) + 1 or any(
        e is not None and r is not None and e != r
        for e, r in zip(expected, received[1:])
    ):
        raise ValueError(
            "Input shape mismatch"
            f"{'' if where is None else ' in ' + where}: the model expects "
            f"inputs of shape {(None,) + expected} (batch first). Received: "
            f"inputs with shape {received}."
        )


def inputs_shape(x):
    """The batch shape of the inputs `fit`/`evaluate`/`predict` receive.

    Args:
        x: an array or tensor, or a `tf.data.Dataset` of inputs or of
            `(x, y, ...)` tuples.

    Returns:
        A tuple (batch axis first): an array's shape; a data set's element
        spec, or its first batch's shape where the spec leaves axes
        unknown. `None` for other inputs (dicts, lists, generators,
        `keras.utils.PyDataset`) and for an empty data set.
    """
    if is_tf_dataset(x):
        spec, _, _ = keras.utils.unpack_x_y_sample_weight(x.element_spec)
        shape = getattr(spec, "shape", None)
        if shape is None or shape.rank is None:
            return None
        if None not in tuple(shape)[1:]:
            return tuple(shape)
        for batch in x.take(1):
            first, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
            return tuple(getattr(first, "shape", ()))
        return None
    if isinstance(x, np.ndarray) or keras.ops.is_tensor(x):
        return tuple(x.shape)
    return None
