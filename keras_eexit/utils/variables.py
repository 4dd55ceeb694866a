"""Copying variable values, safe on every backend."""

from keras import ops


def assign_copies(targets, sources):
    """`target.assign(source)` for each pair, with a copy of the value.

    On JAX a variable's value is an immutable array, and `assign` of
    another variable makes both hold the same array; Keras' JAX trainer
    donates the model's arrays to each train step, after which the other
    variable would hold a deleted array. Snapshots (teacher, references,
    best weights, EWC anchors) copy instead.

    Args:
        targets: variables to write.
        sources: variables or tensors, one per target.

    Example:

    >>> import keras
    >>> a, b = keras.Variable([1.0]), keras.Variable([2.0])
    >>> assign_copies([a], [b])
    >>> float(a.numpy()[0])
    2.0
    """
    for target, source in zip(targets, sources):
        target.assign(ops.cast(ops.copy(source), target.dtype))
