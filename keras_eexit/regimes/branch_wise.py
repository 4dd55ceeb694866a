"""Branch-wise training (Algorithm 3 of "Strategies at a glance")."""

from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime


def branch_phases(epochs, exits, num_exits, learning_rate=None):
    """Phase n trains segment n and head n on exit n's loss."""
    return [Phase(f"branch_{n}", epochs, train_segments=[n],
                  train_heads=[n], weights=one_hot(n, num_exits),
                  learning_rate=learning_rate)
            for n in exits]


class BranchWise(Regime):
    """Branch-wise training: exits trained one after another, shallow first.

    In phase `n` segment `n` and head `n` train on exit `n`'s loss; the
    segments before it (already trained) and everything after it are
    frozen.

    Args:
        epochs_per_exit: epochs of each phase.
        learning_rate: optional learning rate of every phase.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = BranchWise(epochs_per_exit=5)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```
    """

    def __init__(self, epochs_per_exit, learning_rate=None, verbose=True):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        super().__init__(
            lambda k: branch_phases(epochs_per_exit, range(1, k + 1), k,
                                    learning_rate),
            verbose=verbose,
        )
