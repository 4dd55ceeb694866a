"""`utils.lazy_import`: TensorFlow on first use, a clear error without it."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.utils import lazy_import
from keras_eexit.utils.lazy_import import LazyModule


def test_lazy_module_is_the_module_once_read():
    assert lazy_import.tf.data.Dataset is tf.data.Dataset
    assert "imported" in repr(lazy_import.tf)


def test_missing_module_error_names_the_feature_and_the_module():
    missing = LazyModule("keras_eexit_no_such_module", "Feature X")
    assert "not imported" in repr(missing)
    with pytest.raises(ImportError, match=(
            r"Feature X needs `keras_eexit_no_such_module`, which cannot be "
            r"imported .*pip install keras_eexit_no_such_module")):
        missing.anything


def test_dunder_probes_do_not_import():
    missing = LazyModule("keras_eexit_no_such_module", "Feature X")
    assert not hasattr(missing, "__wrapped__")
    assert lazy_import.tf.__version__ == tf.__version__


def test_is_tf_dataset():
    assert lazy_import.is_tf_dataset(tf.data.Dataset.range(2))
    assert not lazy_import.is_tf_dataset(np.zeros(2))


def test_unimportable_tensorflow_is_not_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    assert not lazy_import.tensorflow_imported()
    assert not lazy_import.is_tf_dataset([1, 2])
