"""Losses and objective terms for multi-exit training."""

from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy
from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy
from keras_eexit.losses.objective import Objective
from keras_eexit.losses.continual import EWCPenalty
from keras_eexit.losses.continual import LwFPenalty
from keras_eexit.losses.distillation import Distillation
from keras_eexit.losses.distillation import distillation_kl
from keras_eexit.losses.damping import DampingLoss
from keras_eexit.losses.damping import ExitDampingLoss
from keras_eexit.losses.damping import PowerSqrtDampingLoss
from keras_eexit.losses.damping import SelectiveCrossEntropy
from keras_eexit.losses.damping import damping_components
from keras_eexit.losses.damping import dynamic_weights
