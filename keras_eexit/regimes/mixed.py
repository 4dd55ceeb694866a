"""Mixed training: backbone with the final exit, then everything jointly."""

from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import reduced
from keras_eexit.regimes._common import reduction_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_bool


class Mixed(Regime):
    """Mixed regime of Kubaty et al. ("Joint or disjoint", phases 1+2).

    Phase 1 trains the backbone with the final exit only (eq. 1; internal
    heads frozen); phase 2 trains every segment and head jointly (eq. 2)
    on the mean of the heads' losses (`reduction="mean"`, the authors'
    code; `"sum"` for `Σ_k w_k L_k`).

    The paper runs each phase to convergence (`patience`: early stopping
    when every trained head stops improving on validation data, best
    weights restored; epoch arguments are then maxima) with a learning
    rate chosen per phase; an under-trained backbone reverses the
    mixed-vs-joint conclusion (its sec. 4.3, Fig. 13), so phase 1 should
    converge. Phase 2 starts with a new optimizer in the authors' code
    (`reset_optimizer=True`). Set-up: see `TwoStage`.

    Args:
        backbone_epochs: epochs of phase 1 (its maximum with `patience`).
        joint_epochs: epochs of phase 2 (its maximum with `patience`).
        weights: per-exit weights of the joint phase.
        backbone_learning_rate: optional learning rate of phase 1.
        joint_learning_rate: optional learning rate of phase 2.
        reduction: `"mean"` or `"sum"` over the exits in phase 2.
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the per-exit validation metric early stopping watches.
        reset_optimizer: start phase 2 with a fresh optimizer state.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = Mixed(backbone_epochs=10, joint_epochs=10)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Kubaty et al., Joint or Disjoint: Mixing Training Regimes for
            Early-Exit Models (sec. 2, eq. 1-2).
    """

    def __init__(self, backbone_epochs, joint_epochs, weights="uniform",
                 backbone_learning_rate=None, joint_learning_rate=None,
                 reduction="mean", patience=None, metric="accuracy",
                 reset_optimizer=True, verbose="auto"):
        epochs_arg("backbone_epochs", backbone_epochs)
        epochs_arg("joint_epochs", joint_epochs)
        reduction_arg(reduction)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)

        def phases(num_exits):
            joint = Phase("joint", joint_epochs,
                          weights=reduced(weights, num_exits, reduction),
                          learning_rate=joint_learning_rate,
                          reset_optimizer=reset_optimizer)
            return [
                backbone_phase(backbone_epochs, num_exits,
                               backbone_learning_rate, patience, metric),
                converging(joint, range(1, num_exits + 1), patience,
                           metric),
            ]

        super().__init__(phases, verbose=verbose)
