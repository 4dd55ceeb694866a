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
| sequential + EWC / LwF, separate baseline (Zniber) | `Sequential`         |
| distillation-based (Alg. 5; Phuong & Lampert)      | `Distillation`       |
| hybrids (Alg. 6, sec. 5.4)                         | `JointBranch`, `JointTwoStage`, `PretrainedBranch` |
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
from keras_eexit.regimes.sequential import Sequential
from keras_eexit.regimes.two_stage import Disjoint
from keras_eexit.regimes.two_stage import TwoStage
from keras_eexit.losses.exit_weights import exit_weights

REGIMES = {
    "joint": Joint,
    "two_stage": TwoStage,
    "disjoint": TwoStage,
    "mixed": Mixed,
    "branch_wise": BranchWise,
    "separate": Separate,
    "sequential": Sequential,
    "distillation": Distillation,
    "joint_branch": JointBranch,
    "joint_two_stage": JointTwoStage,
    "pretrained_branch": PretrainedBranch,
}


def get_regime(name, **kwargs):
    """Builds a regime by name.

    Args:
        name: a key of `REGIMES` (`"joint"`, `"two_stage"`, ...).
        **kwargs: the regime's parameters.

    Returns:
        A new `Regime` instance.

    Example:

    >>> get_regime("mixed", backbone_epochs=2, joint_epochs=3).epochs_for(3)
    5
    """
    import inspect

    from keras_eexit.utils.validation import check_choice

    cls = REGIMES[check_choice("regime", name, REGIMES)]
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        valid = sorted(p for p in accepted if p != "self")
        raise ValueError(
            f"Regime {name!r} has no parameter(s) {unknown}. Valid "
            f"parameters: {valid}."
        )
    return cls(**kwargs)
