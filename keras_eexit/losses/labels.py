"""Labels of a classification exit: integer classes or one-hot rows.

The one place that decides how a label tensor is read. Labels are integer
classes of shape `(batch,)` or `(batch, 1)`, or one-hot (possibly soft)
rows of shape `(batch, num_classes)`. `label_format` only looks at the
shape, so it serves NumPy arrays (evaluation, input checks) as well as
tensors traced inside a train step.
"""

from keras import ops


def label_shape(labels):
    """The static shape of `labels` as a tuple (`None` for unknown axes)."""
    shape = getattr(labels, "shape", None)
    if shape is None:
        shape = ops.shape(labels)
    return tuple(None if d is None else int(d) for d in shape)


def label_format(shape, num_classes, what="the exit"):
    """Whether labels of `shape` are class indices or one-hot rows.

    Args:
        shape: the labels' shape (a tuple; unknown axes `None`).
        num_classes: N, the classes of the exit (without a damping unit).
        what: what has the N classes, for the message (`"the model"`).

    Returns:
        `"sparse"` for `(batch,)`/`(batch, 1)` class indices (and rank-2
        labels of unknown width), `"dense"` for `(batch, N)` rows.

    Raises:
        ValueError: for rank > 2 or a width other than 1 and N.

    Example:

    >>> label_format((32, 10), 10)
    'dense'
    >>> label_format((32,), 10)
    'sparse'
    """
    shape = tuple(shape)
    if len(shape) > 2:
        raise ValueError(
            f"Labels have shape {shape}: expected integer classes of shape "
            "(batch,) or one-hot labels of shape (batch, num_classes)."
        )
    if len(shape) == 2 and shape[-1] not in (1, None):
        if shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {shape[-1]} columns but {what} has "
                f"{num_classes} classes. Pass integer labels in [0, "
                f"{num_classes}) of shape (batch,) or one-hot labels of "
                f"shape (batch, {num_classes})."
            )
        return "dense"
    return "sparse"


def sparse_labels(labels, num_classes, what="the exit"):
    """Class indices of `labels`, a `(batch,)` int32 tensor.

    One-hot rows give their arg-max (the largest entry of a soft row).

    Args:
        labels: class indices or one-hot rows.
        num_classes: N.
        what: for the message, see `label_format`.

    Returns:
        An int32 tensor of shape `(batch,)`.
    """
    if label_format(label_shape(labels), num_classes, what) == "dense":
        return ops.cast(ops.argmax(labels, axis=-1), "int32")
    return ops.reshape(ops.cast(labels, "int32"), (-1,))


def dense_labels(labels, num_classes, what="the exit"):
    """`labels` as float32 rows of shape `(batch, num_classes)`.

    Args:
        labels: class indices or one-hot (possibly soft) rows.
        num_classes: N.
        what: for the message, see `label_format`.

    Returns:
        A float32 tensor of shape `(batch, num_classes)`.
    """
    if label_format(label_shape(labels), num_classes, what) == "dense":
        return ops.cast(labels, "float32")
    return ops.one_hot(sparse_labels(labels, num_classes, what), num_classes)
