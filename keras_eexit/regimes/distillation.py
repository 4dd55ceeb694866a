"""Distillation-based training of the internal exits."""

from keras_eexit.losses.distillation import Distillation as DistillationTerm
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number


class Distillation(Regime):
    """Self-distillation from the final exit into the internal exits.

    Every internal exit minimises `α·CE + (1 − α)·τ²·KL(teacher_τ ‖
    student_τ)`; the final exit keeps its plain cross-entropy.

    - `mode="sequential"` (Algorithm 5 of "Strategies at a glance"): phase 1
      trains the backbone with the final exit; its weights are then kept as
      a frozen teacher snapshot and phase 2 trains the internal exits (and,
      with `train_backbone=True`, the backbone and final head too) against
      the snapshot's final exit.
    - `mode="joint"` (Phuong & Lampert, ICCV 2019): one joint phase; the
      teacher is the model's own final exit, whose output is a constant in
      the distillation term.

    Args:
        temperature: τ > 0.
        alpha: weight of the cross-entropy of internal exits, in [0, 1].
        mode: `"sequential"` or `"joint"`.
        backbone_epochs: epochs of phase 1 (sequential mode).
        distill_epochs: epochs of the distillation phase (`None`: until fit
            ends).
        train_backbone: in sequential mode, whether phase 2 also trains the
            segments and the final head (default), or only internal heads.
        learning_rate: optional learning rate of every phase.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = Distillation(temperature=3.0, alpha=0.1, backbone_epochs=10,
                          distill_epochs=10)
    ```
    """

    def __init__(self, temperature=3.0, alpha=0.1, mode="sequential",
                 backbone_epochs=None, distill_epochs=None,
                 train_backbone=True, learning_rate=None, verbose=True):
        temperature = check_number("temperature", temperature, 0.0,
                                   low_open=True)
        alpha = check_number("alpha", alpha, 0.0, 1.0)
        check_choice("mode", mode, ("sequential", "joint"))
        if mode == "sequential":
            epochs_arg("backbone_epochs", backbone_epochs)
        if distill_epochs is not None:
            epochs_arg("distill_epochs", distill_epochs)
        self.temperature, self.alpha, self.mode = temperature, alpha, mode

        def phases(num_exits):
            internal = list(range(1, num_exits))
            weights = [alpha] * (num_exits - 1) + [1.0]
            term = DistillationTerm(
                internal, temperature, weight=1.0 - alpha,
                teacher="snapshot" if mode == "sequential" else "final")
            if mode == "joint":
                return [Phase("distill_joint", distill_epochs,
                              weights=weights, terms=(term,),
                              learning_rate=learning_rate)]
            if train_backbone:
                segments, heads = "all", "all"
            else:
                segments = "none"
                heads = internal
                weights = [alpha] * (num_exits - 1) + [0.0]
            return [
                backbone_phase(backbone_epochs, num_exits, learning_rate),
                Phase("distill", distill_epochs, train_segments=segments,
                      train_heads=heads, weights=weights, terms=(term,),
                      learning_rate=learning_rate, snapshot_teacher=True),
            ]

        super().__init__(phases, verbose=verbose)
