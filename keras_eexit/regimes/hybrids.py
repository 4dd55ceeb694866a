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


def refined_exits(num_exits, train_segment):
    """The exits of the branch phases of a hybrid.

    Algorithm 3's schedule (`train_segment=True`) runs over every exit,
    the final one last; heads alone on a frozen backbone train the K-1
    internal exits (the final head is already trained with the backbone).
    """
    return range(1, num_exits + (1 if train_segment else 0))


def _joint_phase(epochs, weights, reduction, num_exits, learning_rate,
                 patience, metric):
    phase = Phase("joint", epochs,
                  weights=reduced(weights, num_exits, reduction),
                  learning_rate=learning_rate)
    return converging(phase, range(1, num_exits + 1), patience, metric)


class JointBranch(Regime):
    """Joint training, then branch-wise fine-tuning (sec. 5.4 (1), Alg. 6).

    Phase 1 (Algorithm 6 lines 1-14) trains everything jointly on
    `Σ_n w_n L_n`; the weights of line 8 are printed `c^n / Σ_k k^n`,
    which we read as Algorithm 1's `c·n / Σ_k k` (`"linear"`, c = 1) — an
    OCR/typesetting ambiguity of the text, not a different scheme. Phase 2
    is "branch-wise fine-tuning (Brock et al., 2017)" (sec. 5.4 (1); sec.
    4.6: Freeze-Out "augments joint training with a branch-wise refinement
    stage"; Algorithm 6's output: "exits refined branch-wise"): the
    schedule of Algorithm 3, n = 1..K, shallow first and the final exit
    last ("until the final exit is trained", sec. 4.3): segment n and head
    n train on `L_n` with the layers up to L_{n-1} frozen (Alg. 3 line 5),
    `epochs_per_exit` each, a fresh optimizer state each.

    Why not lines 15-24 as printed: they freeze "backbone layers up to
    L_n" (line 16) and update "only the parameters of E_n" (line 21) —
    exactly stage 2 of Algorithm 4 after a joint phase, i.e. the
    joint-two-stage hybrid of sec. 5.4 (2) ("joint training followed by
    freezing the backbone and training exits independently",
    `JointTwoStage`). The paper presents the two as different procedures
    (sec. 5.4 (1) vs (2), different sources) and Table 7 reports them
    with different results (ChestX-ray14 E1-E4 82.6/88.4/89.7/91.9 vs
    83.1/88.6/90.3/91.6, ImageNet-100 49.3/61.6/67.0/68.3 vs
    50.0/62.0/67.4/68.2, training 49.9 vs 50.7 min), where one procedure
    run with the same seeds and deterministic TensorFlow (sec. 5.3) would
    give one row. So the name follows the branch-wise fine-tuning the text
    describes; the printed lines (= `JointTwoStage` with
    `heads="one_by_one"`, bit-identical) stay available as
    `train_segment=False`.

    Each phase of the algorithm trains a new (sub-)model
    (`reset_optimizer=True`). Set-up: see `BranchWise`.

    Args:
        joint_epochs: epochs of the joint phase (maximum with `patience`).
        epochs_per_exit: epochs of each fine-tuning phase.
        weights: per-exit weights of the joint phase.
        reduction: `"sum"` (Algorithm 6) or `"mean"` of the joint loss.
        train_segment: `True` (the default): Algorithm 3's schedule over
            the K exits, segment n with head n; `False`: Algorithm 6 lines
            15-24 as printed, head n alone on the frozen backbone, n =
            1..K-1 (what `JointTwoStage` does).
        learning_rate: optional learning rate of every phase.
        joint_learning_rate: optional learning rate of the joint phase
            (default: `learning_rate`).
        cache_features: with `train_segment=False`, replay cached backbone
            features in phase 2 (see `TwoStage`).
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every phase after the
            first.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = JointBranch(joint_epochs=10, epochs_per_exit=3)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Rahmath P et al., Strategies at a glance (sec. 4.6, sec. 5.4,
            Algorithms 3 and 6, Table 7).
        - Brock et al., FreezeOut: Accelerate training by progressively
            freezing layers (2017).
    """

    def __init__(self, joint_epochs, epochs_per_exit, weights="linear",
                 reduction="sum", train_segment=True, learning_rate=None,
                 joint_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose="auto"):
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
            + branch_phases(epochs_per_exit, refined_exits(k, train_segment),
                            k, learning_rate, train_segment=train_segment,
                            patience=patience, metric=metric,
                            reset_optimizer=reset_optimizer,
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
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    References:
        - Rahmath P et al., Strategies at a glance (sec. 5.4, Algorithms 1
            and 4).
    """

    def __init__(self, joint_epochs, heads_epochs, heads="one_by_one",
                 weights="linear", reduction="sum", learning_rate=None,
                 joint_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose="auto"):
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
    """Backbone pretraining, then branch-wise fine-tuning (sec. 5.4 (3)).

    "Strategies at a glance", sec. 5.4 (3): "a pretrained backbone is
    reused and exit branches are optimized using the branch-wise
    schedule"; sec. 1 and the abstract: "backbone pretraining followed by
    branch-wise fine-tuning". Phase 1 pre-trains the backbone with the
    final exit on `L_K` (skip it with `backbone_epochs=0` when the
    model's backbone is already pretrained); then the schedule of
    Algorithm 3 runs over the K exits, shallow first and the final exit
    last: segment n and head n train on `L_n`, the layers up to L_{n-1}
    frozen (Alg. 3 line 5), `epochs_per_exit` each, a fresh optimizer
    state each. Fine-tuning segment n moves the features deeper exits
    read, and the final branch's own phase (n = K) re-fits the last
    segment and the final head to them, so the final exit keeps the
    pretrained accuracy.

    `train_segments=False` reads sec. 5.4's motivation ("deployment
    scenarios where backbone weights are fixed") literally: heads
    1..K-1 alone on the frozen pretrained backbone. That is two-stage
    training (`TwoStage(heads="one_by_one")`, bit-identical), which Table
    7 reports separately from pretrained-branch; it is what this regime
    did before.

    Args:
        backbone_epochs: epochs of the pre-training phase (0: none).
        epochs_per_exit: epochs of each branch phase.
        train_segments: `True` (the default): Algorithm 3's schedule over
            the K exits, segment n with head n; `False`: heads 1..K-1
            alone on the fixed backbone (see above).
        learning_rate: optional learning rate of the branch phases.
        backbone_learning_rate: optional learning rate of phase 1.
        cache_features: replay cached backbone features in the branch
            phases (`train_segments=False` only).
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every branch phase.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = PretrainedBranch(backbone_epochs=10, epochs_per_exit=3)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Rahmath P et al., Strategies at a glance (sec. 5.4, sec. 6.3,
            Algorithm 3, Table 7).
    """

    def __init__(self, backbone_epochs, epochs_per_exit,
                 train_segments=True, learning_rate=None,
                 backbone_learning_rate=None, cache_features=True,
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose="auto"):
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
                epochs_per_exit, refined_exits(num_exits, train_segments),
                num_exits,
                learning_rate, train_segment=train_segments,
                patience=patience, metric=metric,
                reset_optimizer=reset_optimizer,
                cache_features=cache_features)

        super().__init__(phases, verbose=verbose)
