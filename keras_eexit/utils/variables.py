"""Copying variable values, safe on every backend."""

import numpy as np
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


def to_numpy(variable):
    """A copy of a Keras variable's value as a NumPy array.

    `variable.numpy()` warns on JAX (Keras' `__array__` lacks NumPy 2's
    `copy` argument), `np.asarray(variable.value)` warns on TensorFlow,
    whose value is a `tf.Variable`, and PyTorch refuses `.numpy()` of a
    tensor that requires a gradient: this reads each backend's value its
    own way.

    Args:
        variable: a `keras.Variable`.

    Returns:
        A NumPy array.

    Example:

    >>> import keras
    >>> to_numpy(keras.Variable([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    value = variable.value
    if hasattr(value, "detach"):  # PyTorch (a parameter, maybe on a GPU)
        return np.array(value.detach().cpu().numpy())
    if hasattr(value, "numpy"):  # TensorFlow
        return np.array(value.numpy())
    return np.array(value)
