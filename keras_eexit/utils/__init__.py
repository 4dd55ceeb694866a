"""Small shared helpers: argument validation, atomic writes, distribution."""

from keras_eexit.utils import atomic
from keras_eexit.utils import deprecation
from keras_eexit.utils import distribution
from keras_eexit.utils import validation

__all__ = [
    "atomic",
    "deprecation",
    "distribution",
    "validation",
]
