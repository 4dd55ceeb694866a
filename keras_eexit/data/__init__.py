"""Data sets for early-exit experiments: pipelines or arrays.

`load(name, ...)` returns a `Splits` of three batched pipelines plus a
`DatasetInfo` (`tf.data` on TensorFlow; on another Keras backend the
embedded sets come as `keras.utils.PyDataset`s of NumPy batches,
`data/array_batches.py`); `load_arrays(name, ...)` returns the same
splits as numpy arrays; `available()` lists the embedded sets that need
no download (`"digits"`, `"mnist1d"`). Any other name is read offline
from a prepared TensorFlow Datasets directory; CIFAR-10/100 also from the
official Python archive (`load_cifar` reads it as arrays).
"""

from keras_eexit.data.augment import AUGMENTATIONS
from keras_eexit.data.cache import cache_dir
from keras_eexit.data.cifar_archive import load_cifar
from keras_eexit.data.info import DatasetInfo
from keras_eexit.data.info import Splits
from keras_eexit.data.loaders import available
from keras_eexit.data.loaders import load
from keras_eexit.data.loaders import load_arrays
from keras_eexit.data.text_vocab import TextVocabulary
from keras_eexit.data.text_vocab import tokenize

__all__ = [
    "AUGMENTATIONS",
    "DatasetInfo",
    "Splits",
    "TextVocabulary",
    "available",
    "cache_dir",
    "load",
    "load_arrays",
    "load_cifar",
    "tokenize",
]
