"""Reusable checks for multi-exit models (see `model_contract`)."""

from keras_eexit.testing import model_contract

__all__ = [
    "model_contract",
]
