"""Distillation-based training of the internal exits."""

from keras_eexit.losses.distillation import ExitDistillation as DistillationTerm
from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import reduced
from keras_eexit.regimes._common import reduction_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number


class Distillation(Regime):
    """Self-distillation from the final exit into the internal exits.

    - `mode="sequential"`: Algorithm 5 of "Strategies at a glance".
      Stage 1 (lines 1-7) trains the teacher: every parameter, on the final
      exit's cross-entropy. The trained model is then kept as a frozen
      teacher. Stage 2 (lines 8-21) distils each early exit in turn,
      n = 1..K-1, `distill_epochs` each, on
      `α·CE(ŷ_n, y) + (1 − α)·τ²·KL(softmax(t/τ) ‖ softmax(s_n/τ))`
      (lines 15-17, eq. 5). By default only head E_n trains
      (`train_backbone=False`): the teacher is "layers L_1–L_n and final
      exit, FE" (Fig. 7 caption) and "After training the full model, the
      final exit is frozen. Then, each early exit is trained ..."
      (appendix A, Fig. 25); the students are the exits ("lightweight
      early-exit students", sec. 4.5; "Each student exit is trained",
      sec. 5.4), and sub-model `M_n ← B_{1:L_n} ∪ E_n` (line 9) is the
      line Algorithm 4 (line 10) uses for an exit on the frozen backbone.
      The teacher path — backbone and final exit — therefore never moves:
      the final exit keeps the teacher's accuracy (Table 3 reports
      distillation with the highest final-exit accuracy), and exits
      distilled earlier keep theirs.

      `train_backbone=True` (what this regime did before) reads line 18
      ("Update parameters of M_n") on a shared backbone: segments 1..n
      train with head n. That moves the features the frozen final head
      and the exits distilled before n read: on `small_cnn`/digits the
      final exit falls from 0.99 to about 0.3
      (`tests/regimes/test_regime_learning.py`). A third reading, each
      M_n its own truncated copy of the teacher's backbone (as Algorithm
      2 line 2), keeps the teacher too but gives the exits no shared
      computation; it is not offered. We found no public training code of
      the paper (its first author's public repositories hold a survey and
      an edge-cloud demo).
    - `mode="joint"` (Phuong & Lampert, ICCV 2019): one joint phase; the
      teacher is the model's own final exit, whose output is a constant in
      the distillation term; internal exits on the loss above, the final
      exit on its cross-entropy, summed over exits (`reduction="sum"`).

    Set-up of "Strategies at a glance" (sec. 5.3-5.4): T = 3, α = 0.1 (the
    defaults), SGD momentum 0.9 at 0.1/0.01 or Adam 0.001, batch 128,
    200/300 epochs, patience 10. Each stage of Algorithm 5 trains a new
    sub-model (`reset_optimizer=True`: a fresh optimizer state per phase).

    Args:
        temperature: τ > 0.
        alpha: weight of the cross-entropy of internal exits, in [0, 1].
        mode: `"sequential"` or `"joint"`.
        backbone_epochs: epochs of stage 1 (sequential mode).
        distill_epochs: epochs of each distillation phase (sequential) or
            of the joint phase (`None`: until `fit` ends; joint mode).
        train_backbone: in sequential mode, `False` (the default): head n
            alone trains, the teacher path (backbone and final exit) is
            frozen (appendix A, Fig. 7); `True`: segments 1..n train with
            head n on the shared backbone (line 18 read literally; the
            final exit then forgets, see above).
        learning_rate: optional learning rate of every phase.
        backbone_learning_rate: optional learning rate of stage 1
            (default: `learning_rate`).
        reduction: joint mode: `"sum"` or `"mean"` over the exits.
        patience: `None` (fixed epochs) or the early-stopping patience
            (per phase, on the validation metric of the trained exits).
        metric: the validation metric early stopping watches.
        reset_optimizer: a fresh optimizer state at every phase after the
            first (sequential mode).
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = Distillation(temperature=3.0, alpha=0.1, backbone_epochs=10,
                          distill_epochs=10)
    ```

    References:
        - Rahmath P et al., Strategies at a glance (Algorithm 5, eq. 4-5,
            appendix A).
        - Phuong & Lampert, Distillation-based training for multi-exit
            architectures (ICCV 2019).
    """

    min_exits = 2
    min_exits_reason = "the final exit teaches the internal exits"

    def __init__(self, temperature=3.0, alpha=0.1, mode="sequential",
                 backbone_epochs=None, distill_epochs=None,
                 train_backbone=False, learning_rate=None,
                 backbone_learning_rate=None, reduction="sum",
                 patience=None, metric="loss", reset_optimizer=True,
                 verbose="auto"):
        temperature = check_number("temperature", temperature, 0.0,
                                   low_open=True)
        alpha = check_number("alpha", alpha, 0.0, 1.0)
        check_choice("mode", mode, ("sequential", "joint"))
        if mode == "sequential":
            epochs_arg("backbone_epochs", backbone_epochs)
            epochs_arg("distill_epochs", distill_epochs)
        elif distill_epochs is not None:
            epochs_arg("distill_epochs", distill_epochs)
        check_bool("train_backbone", train_backbone)
        reduction_arg(reduction)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)
        self.temperature, self.alpha, self.mode = temperature, alpha, mode

        def phases(num_exits):
            internal = list(range(1, num_exits))
            if mode == "joint":
                term = DistillationTerm(internal, temperature,
                                        weight=1.0 - alpha, teacher="final")
                weights = [alpha] * (num_exits - 1) + [1.0]
                if reduction == "mean":
                    term = DistillationTerm(
                        internal, temperature,
                        weight=(1.0 - alpha) / num_exits, teacher="final")
                phase = Phase("distill_joint", distill_epochs,
                              weights=reduced(weights, num_exits, reduction),
                              terms=(term,), learning_rate=learning_rate)
                return [converging(phase, range(1, num_exits + 1),
                                   patience, metric)]
            result = [backbone_phase(backbone_epochs, num_exits,
                                     backbone_learning_rate or learning_rate,
                                     patience, metric)]
            for n in internal:
                term = DistillationTerm([n], temperature, weight=1.0 - alpha,
                                        teacher="snapshot")
                result.append(converging(Phase(
                    f"distill_{n}", distill_epochs,
                    train_segments=list(range(1, n + 1)) if train_backbone
                    else "none",
                    train_heads=[n],
                    weights=[alpha * w for w in one_hot(n, num_exits)],
                    terms=(term,), learning_rate=learning_rate,
                    snapshot_teacher=(n == 1),
                    reset_optimizer=reset_optimizer), [n], patience,
                    metric))
            return result

        super().__init__(phases, verbose=verbose)
