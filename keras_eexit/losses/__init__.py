"""Losses and objective terms for multi-exit training."""

from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy
from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy
from keras_eexit.losses.objective import Objective
