"""Hybrid regimes of "Strategies at a glance", as compositions."""

from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes.branch_wise import branch_phases
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.regimes.two_stage import heads_phases


class JointBranch(Regime):
    """Joint training, then branch-wise fine-tuning (Algorithm 6).

    Phase 1 trains everything jointly; then, exit by exit, segment `n` and
    head `n` are fine-tuned on exit `n`'s loss with earlier segments frozen.

    Args:
        joint_epochs: epochs of the joint phase.
        epochs_per_exit: epochs of each branch phase.
        weights: per-exit weights of the joint phase.
        verbose: print each phase as it starts.
    """

    def __init__(self, joint_epochs, epochs_per_exit, weights="uniform",
                 verbose=True):
        epochs_arg("joint_epochs", joint_epochs)
        epochs_arg("epochs_per_exit", epochs_per_exit)
        super().__init__(
            lambda k: [Phase("joint", joint_epochs, weights=weights)]
            + branch_phases(epochs_per_exit, range(1, k + 1), k),
            verbose=verbose,
        )


class JointTwoStage(Regime):
    """Joint training, then the internal heads retrained on a frozen backbone.

    Args:
        joint_epochs: epochs of the joint phase.
        heads_epochs: epochs of the head phase.
        heads: `"together"` or `"one_by_one"`.
        weights: per-exit weights of the joint phase.
        verbose: print each phase as it starts.
    """

    def __init__(self, joint_epochs, heads_epochs, heads="together",
                 weights="uniform", verbose=True):
        epochs_arg("joint_epochs", joint_epochs)
        epochs_arg("heads_epochs", heads_epochs)
        super().__init__(
            lambda k: [Phase("joint", joint_epochs, weights=weights)]
            + heads_phases(heads_epochs, k, heads),
            verbose=verbose,
        )


class PretrainedBranch(Regime):
    """Backbone pre-trained with the final exit, then branch-wise training.

    Phase 1 trains every segment with the final exit only; then exits
    1..K-1 are trained branch-wise (segment `n` and head `n` on exit `n`'s
    loss, earlier segments frozen), starting from the pre-trained segments.

    Args:
        backbone_epochs: epochs of the pre-training phase.
        epochs_per_exit: epochs of each branch phase.
        verbose: print each phase as it starts.
    """

    def __init__(self, backbone_epochs, epochs_per_exit, verbose=True):
        epochs_arg("backbone_epochs", backbone_epochs)
        epochs_arg("epochs_per_exit", epochs_per_exit)
        super().__init__(
            lambda k: [backbone_phase(backbone_epochs, k)]
            + branch_phases(epochs_per_exit, range(1, k), k),
            verbose=verbose,
        )
