"""Callbacks: sequential-training helpers and training safety nets."""

from keras_eexit.callbacks.accumulate_fisher import AccumulateFisher
from keras_eexit.callbacks.non_finite import NonFiniteLossError
from keras_eexit.callbacks.non_finite import StopOnNonFinite
from keras_eexit.callbacks.snapshot_teacher import SnapshotTeacher
from keras_eexit.callbacks.analysis import GradientDominance
from keras_eexit.callbacks.analysis import NumericalRank
from keras_eexit.callbacks.analysis import ResourceMonitor
from keras_eexit.callbacks.analysis import exit_gradient_cosines
from keras_eexit.callbacks.analysis import numerical_rank
