"""Hybrid regimes of "Strategies at a glance", as compositions."""

from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import reduced
from keras_eexit.regimes._common import reduction_arg
from keras_eexit.regimes.branch_wise import branch_phases
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.regimes.two_stage import heads_phases
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_non_negative_int


def _joint_phase(epochs, weights, reduction, num_exits, learning_rate,
                 patience, metric):
    phase = Phase("joint", epochs,
                  weights=reduced(weights, num_exits, reduction),
                  learning_rate=learning_rate)
    return converging(phase, range(1, num_exits + 1), patience, metric)


class JointBranch(Regime):
    """Joint training, then branch-wise refinement (Algorithm 6).

    Phase 1 (lines 1-14) trains everything jointly on `Σ_n w_n L_n`; the
    weights of line 8 are printed `c^n / Σ_k k^n`, which we read as
    Algorithm 1's `c·n / Σ_k k` (`"linear"`, c = 1) — an OCR/typesetting
    ambiguity of the text, not a different scheme. Phase 2 (lines 15-24)
    refines the early exits n = 1..K-1 in turn: the backbone up to L_n is
    frozen (line 16) and "only the parameters of E_n" are updated (line
    21), `epochs_per_exit` each. `train_segment=True` (an extension: the
    Freeze-Out-like refinement) also trains segment n.

    With the backbone frozen, phase 2 can replay cached features
    (`cache_features`, see `TwoStage`). Each phase of the algorithm trains
    a new (sub-)model (`reset_optimizer=True`). Set-up: see `BranchWise`.

    Args:
        joint_epochs: epochs of the joint phase (maximum with `patience`).
        epochs_per_exit: epochs of each refinement phase.
        weights: per-exit weights of the joint phase.
        reduction: `"sum"` (Algorithm 6) or `"mean"` of the joint loss.
        train_segment: the extension above.
        learning_rate: optional learning rate of every phase.
        joint_learning_rate: optional learning rate of the joint phase
            (default: `learning_rate`).
        cache_features: replay cached backbone features in phase 2.
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every phase after the
            first.
        verbose: print each phase as it starts.

    References:
        - Rahmath P et al., Strategies at a glance (Algorithm 6).
    """

    def __init__(self, joint_epochs, epochs_per_exit, weights="linear",
                 reduction="sum", train_segment=False, learning_rate=None,
                 joint_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose=True):
        epochs_arg("joint_epochs", joint_epochs)
        epochs_arg("epochs_per_exit", epochs_per_exit)
        reduction_arg(reduction)
        check_bool("train_segment", train_segment)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)
        super().__init__(
            lambda k: [_joint_phase(joint_epochs, weights, reduction, k,
                                    joint_learning_rate or learning_rate,
                                    patience, metric)]
            + branch_phases(epochs_per_exit, range(1, k), k, learning_rate,
                            train_segment=train_segment, patience=patience,
                            metric=metric, reset_optimizer=reset_optimizer,
                            cache_features=cache_features, name="refine"),
            verbose=verbose,
        )


class JointTwoStage(Regime):
    """Joint training, then the early exits retrained on a frozen backbone.

    "Strategies at a glance", sec. 5.4 (2): "joint training followed by
    freezing the backbone and training exits independently": a joint
    phase, then (as stage 2 of Algorithm 4) head n alone on `L_n`,
    n = 1..K-1 (`heads="one_by_one"`, the default; `"together"` trains
    them at once).

    Args:
        joint_epochs: epochs of the joint phase.
        heads_epochs: epochs of the head phase (of each head one by one).
        heads: `"one_by_one"` or `"together"`.
        weights: per-exit weights of the joint phase.
        reduction: `"sum"` or `"mean"` of the joint loss (and of the heads'
            losses when they train together).
        learning_rate: optional learning rate of every phase.
        joint_learning_rate: optional learning rate of the joint phase
            (default: `learning_rate`).
        cache_features: replay cached backbone features in the head
            phases.
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every phase after the
            first.
        verbose: print each phase as it starts.

    References:
        - Rahmath P et al., Strategies at a glance (sec. 5.4, Algorithms 1
            and 4).
    """

    def __init__(self, joint_epochs, heads_epochs, heads="one_by_one",
                 weights="linear", reduction="sum", learning_rate=None,
                 joint_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose=True):
        epochs_arg("joint_epochs", joint_epochs)
        epochs_arg("heads_epochs", heads_epochs)
        check_choice("heads", heads, ("together", "one_by_one"))
        reduction_arg(reduction)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)
        super().__init__(
            lambda k: [_joint_phase(joint_epochs, weights, reduction, k,
                                    joint_learning_rate or learning_rate,
                                    patience, metric)]
            + heads_phases(heads_epochs, k, heads, learning_rate,
                           cache_features, reduction, patience, metric,
                           reset_optimizer),
            verbose=verbose,
        )


class PretrainedBranch(Regime):
    """A pretrained, fixed backbone; exits trained with the branch schedule.

    "Strategies at a glance", sec. 5.4 (3): "a pretrained backbone is
    reused and exit branches are optimized using the branch-wise schedule",
    for "deployment scenarios where backbone weights are fixed". Phase 1
    pre-trains the backbone with the final exit (skip it with
    `backbone_epochs=0` when the model's backbone is already pretrained);
    then exits n = 1..K-1 are trained one after another, shallow first, on
    `L_n`, with the backbone (and the final exit) fixed. Because the
    backbone does not move, the final exit keeps its accuracy.
    `train_segments=True` (an extension) also trains segment n in its
    phase, as `BranchWise` does; the final exit can then forget.

    Args:
        backbone_epochs: epochs of the pre-training phase (0: none).
        epochs_per_exit: epochs of each branch phase.
        train_segments: the extension above.
        learning_rate: optional learning rate of the branch phases.
        backbone_learning_rate: optional learning rate of phase 1.
        cache_features: replay cached backbone features in the branch
            phases (fixed backbone only).
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every branch phase.
        verbose: print each phase as it starts.

    References:
        - Rahmath P et al., Strategies at a glance (sec. 5.4, sec. 6.3).
    """

    def __init__(self, backbone_epochs, epochs_per_exit,
                 train_segments=False, learning_rate=None,
                 backbone_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose=True):
        check_non_negative_int("backbone_epochs", backbone_epochs)
        epochs_arg("epochs_per_exit", epochs_per_exit)
        check_bool("train_segments", train_segments)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)

        def phases(num_exits):
            first = []
            if backbone_epochs:
                first = [backbone_phase(backbone_epochs, num_exits,
                                        backbone_learning_rate, patience,
                                        metric)]
            return first + branch_phases(
                epochs_per_exit, range(1, num_exits), num_exits,
                learning_rate, train_segment=train_segments,
                patience=patience, metric=metric,
                reset_optimizer=reset_optimizer,
                cache_features=cache_features)

        super().__init__(phases, verbose=verbose)
