"""Training regimes, run as callbacks inside one `model.fit`.

Every name runs its paper's procedure (see docs/regimes.md for the table
with algorithm lines, phases, losses and defaults):

| paper name                                         | toolkit              |
|----------------------------------------------------|----------------------|
| joint (Kubaty et al.; Alg. 1 with "linear", "sum") | `Joint`              |
| disjoint (Kubaty et al.) / two-stage (Alg. 4)      | `TwoStage` (`Disjoint`) |
| mixed (Kubaty et al.)                              | `Mixed`              |
| branch-wise (Alg. 3)                               | `BranchWise`         |
| separate (Alg. 2)                                  | `Separate`           |
| sequential + EWC / LwF, separate baseline (Zniber) | `SequentialRegime`   |
| distillation-based (Alg. 5; Phuong & Lampert)      | `Distillation`       |
| hybrids (Alg. 6, sec. 5.4)                         | `JointBranch`, `JointTwoStage`, `PretrainedBranch` |

A class is named after its paper's procedure, except where that name is
Keras' own: the sequential regime is `SequentialRegime` (`keras.Sequential`
is a model). `Sequential` remains a deprecated alias for one release.
"""

from keras_eexit.regimes.branch_wise import BranchWise
from keras_eexit.regimes.distillation import Distillation
from keras_eexit.regimes.feature_cache import FeatureCache
from keras_eexit.regimes.hybrids import JointBranch
from keras_eexit.regimes.hybrids import JointTwoStage
from keras_eexit.regimes.hybrids import PretrainedBranch
from keras_eexit.regimes.joint import Joint
from keras_eexit.regimes.joint import sdn_schedule
from keras_eexit.regimes.mixed import Mixed
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.separate import Separate
from keras_eexit.regimes.sequential import SequentialRegime
from keras_eexit.regimes.two_stage import Disjoint
from keras_eexit.regimes.two_stage import TwoStage
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.regimes.registry import REGIMES
from keras_eexit.regimes.registry import get_regime
from keras_eexit.regimes.registry import plan_text
from keras_eexit.regimes.registry import regime_for_budget
from keras_eexit.regimes.registry import register
from keras_eexit.regimes.registry import split_budget
from keras_eexit.utils.deprecation import deprecated_aliases

__all__ = [
    "BranchWise",
    "Disjoint",
    "Distillation",
    "FeatureCache",
    "Joint",
    "JointBranch",
    "JointTwoStage",
    "Mixed",
    "Phase",
    "PretrainedBranch",
    "REGIMES",
    "Regime",
    "Separate",
    "SequentialRegime",
    "TwoStage",
    "exit_weights",
    "get_regime",
    "plan_text",
    "regime_for_budget",
    "register",
    "sdn_schedule",
    "split_budget",
]

__getattr__ = deprecated_aliases(__name__, {"Sequential": "SequentialRegime"})
