"""Mixed training: backbone with the final exit, then everything jointly."""

from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase


class Mixed(Regime):
    """Mixed regime of Kubaty et al. ("Joint or disjoint").

    Phase 1 trains the backbone with the final exit only (internal heads
    frozen); phase 2 trains every segment and head jointly.

    Args:
        backbone_epochs: epochs of phase 1.
        joint_epochs: epochs of phase 2.
        weights: per-exit weights of the joint phase.
        backbone_learning_rate: optional learning rate of phase 1.
        joint_learning_rate: optional learning rate of phase 2.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = Mixed(backbone_epochs=10, joint_epochs=10)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```
    """

    def __init__(self, backbone_epochs, joint_epochs, weights="uniform",
                 backbone_learning_rate=None, joint_learning_rate=None,
                 verbose=True):
        epochs_arg("backbone_epochs", backbone_epochs)
        epochs_arg("joint_epochs", joint_epochs)

        def phases(num_exits):
            return [
                backbone_phase(backbone_epochs, num_exits,
                               backbone_learning_rate),
                Phase("joint", joint_epochs, weights=weights,
                      learning_rate=joint_learning_rate),
            ]

        super().__init__(phases, verbose=verbose)
