"""Metrics of a multi-exit model's exits."""

from keras_eexit.metrics.exit_accuracy import ACCURACY_NAMES
from keras_eexit.metrics.exit_accuracy import ExitAccuracy
from keras_eexit.metrics.exit_accuracy import exit_accuracy

__all__ = ["ACCURACY_NAMES", "ExitAccuracy", "exit_accuracy"]
