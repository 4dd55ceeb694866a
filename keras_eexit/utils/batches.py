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
