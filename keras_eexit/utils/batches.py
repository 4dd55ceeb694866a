"""Batches of a data stream, whatever its kind, without importing TF.

Inference and evaluation read data sets of three kinds: a
`tf.data.Dataset` (the TensorFlow backend's pipelines), a
`keras.utils.PyDataset` (what `keras_eexit.data` yields on other
backends) and arrays, which callers slice themselves.

Example:

>>> import numpy as np
>>> is_batch_stream(np.zeros(3))
False
"""

import keras
import numpy as np

from keras_eexit.utils.lazy_import import is_tf_dataset


def is_batch_stream(value):
    """Whether `value` is a `tf.data.Dataset` or a `keras.utils.PyDataset`.

    Args:
        value: any object.

    Returns:
        A bool (`False` for arrays and tuples of arrays).
    """
    return isinstance(value, keras.utils.PyDataset) or is_tf_dataset(value)


def iterate_batches(stream):
    """The batches of a `tf.data.Dataset` or `keras.utils.PyDataset`.

    Args:
        stream: a data set (see `is_batch_stream`).

    Returns:
        An iterator over its batches, in order.
    """
    if isinstance(stream, keras.utils.PyDataset):
        return (stream[i] for i in range(len(stream)))
    return iter(stream)


def array_batches(arrays, batch_size):
    """Batches of at most `batch_size` rows of a tuple of arrays.

    Args:
        arrays: a tuple `(x, y)` (or longer) of arrays with the same
            number of rows; an element may be a dict or tuple of arrays.
        batch_size: rows per batch.

    Returns:
        An iterator over tuples of NumPy arrays, in order.

    Example:

    >>> [len(x) for x, y in array_batches((np.zeros(5), np.ones(5)), 2)]
    [2, 2, 1]
    """
    arrays = keras.tree.map_structure(np.asarray, tuple(arrays))
    size = len(keras.tree.flatten(arrays)[0])
    for start in range(0, size, batch_size):
        yield keras.tree.map_structure(
            lambda a, start=start: a[start:start + batch_size], arrays)


def count_batches(stream):
    """The number of batches of a `tf.data.Dataset` or `PyDataset`.

    Args:
        stream: a data set (see `is_batch_stream`).

    Returns:
        An int (a `tf.data` set's cardinality: negative when unknown or
        infinite).

    Example:

    >>> class Three(keras.utils.PyDataset):
    ...     def __len__(self):
    ...         return 3
    >>> count_batches(Three())
    3
    """
    if isinstance(stream, keras.utils.PyDataset):
        return len(stream)
    return int(stream.cardinality())
