"""Losses and objective terms for multi-exit training.

An `Objective` is a sum of `ObjectiveTerm`s; most terms are `ExitTerm`s
(a loss per sample and exit, weighted by `model.exit_weights` or a fixed
weight). Sample labels are read by `labels` (integer classes or one-hot
rows). The EWC term lives with the Fisher information in
`keras_eexit.fisher`.

The distillation term is `ExitDistillation` (named like `ExitCrossEntropy`;
`Distillation` is the regime, `keras_eexit.regimes.Distillation`, and stays
here as a deprecated alias for one release).
"""

from keras_eexit.losses.damping_functions import DAMPING_LAMBDAS
from keras_eexit.losses.damping_functions import damping_components
from keras_eexit.losses.damping_functions import dynamic_weights
from keras_eexit.losses.damping_loss import DampingLoss
from keras_eexit.losses.distillation import ExitDistillation
from keras_eexit.losses.distillation import distillation_kl
from keras_eexit.losses.exit_cross_entropy import CROSSENTROPY_NAMES
from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy
from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy
from keras_eexit.losses.exit_cross_entropy import resolve_loss
from keras_eexit.losses.exit_damping_loss import DAMPING_LOSSES
from keras_eexit.losses.exit_damping_loss import ExitDampingLoss
from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.losses.lwf_penalty import LwFPenalty
from keras_eexit.losses.objective import Objective
from keras_eexit.losses.objective_term import ObjectiveTerm
from keras_eexit.losses.power_sqrt_damping_loss import PowerSqrtDampingLoss
from keras_eexit.losses.selective_cross_entropy import SelectiveCrossEntropy
from keras_eexit.utils.deprecation import deprecated_aliases

__all__ = [
    "CROSSENTROPY_NAMES",
    "DAMPING_LAMBDAS",
    "DAMPING_LOSSES",
    "DampingLoss",
    "ExitCrossEntropy",
    "ExitDampingLoss",
    "ExitDistillation",
    "ExitTerm",
    "LwFPenalty",
    "Objective",
    "ObjectiveTerm",
    "PowerSqrtDampingLoss",
    "SelectiveCrossEntropy",
    "damping_components",
    "distillation_kl",
    "dynamic_weights",
    "exit_weights",
    "per_sample_crossentropy",
    "resolve_loss",
]

__getattr__ = deprecated_aliases(__name__,
                                 {"Distillation": "ExitDistillation"})
