"""Callbacks: sequential-training helpers, training safety nets, analysis."""

from keras_eexit.fisher.accumulate_fisher import AccumulateFisher
from keras_eexit.callbacks.non_finite import NonFiniteLossError
from keras_eexit.callbacks.non_finite import StopOnNonFinite
from keras_eexit.callbacks.snapshot_teacher import SnapshotTeacher
from keras_eexit.callbacks.gradient_dominance import GradientDominance
from keras_eexit.callbacks.gradient_dominance import exit_gradient_cosines
from keras_eexit.callbacks.numerical_rank import NumericalRank
from keras_eexit.callbacks.numerical_rank import numerical_rank
from keras_eexit.callbacks.resource_monitor import ResourceMonitor

__all__ = [
    "AccumulateFisher",
    "GradientDominance",
    "NonFiniteLossError",
    "NumericalRank",
    "ResourceMonitor",
    "SnapshotTeacher",
    "StopOnNonFinite",
    "exit_gradient_cosines",
    "numerical_rank",
]
