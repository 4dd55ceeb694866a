"""The joint regime: every exit trained together on a weighted loss sum."""

from keras_eexit.regimes.regime import Phase
from keras_eexit.regimes.regime import Regime


class Joint(Regime):
    """Joint training: all stages and heads, loss `sum_k w_k * CE_k`.

    The regime of most early-exit papers (SDN, MSDNet, "Joint or disjoint",
    "Strategies at a glance"): one phase that lasts the whole `fit`.

    Args:
        weights: per-exit weights: `"uniform"`, `"linear"`, `"to_final"`,
            `"han"` or an explicit list (see
            `keras_eexit.regimes.weights.exit_weights`).
        learning_rate: optional learning rate set when training starts.
        verbose: print the phase as it starts.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[keras_eexit.regimes.Joint("han")])
    ```
    """

    def __init__(self, weights="uniform", learning_rate=None, verbose=True):
        super().__init__(
            [Phase("joint", None, weights, learning_rate)], verbose=verbose
        )
        self.weights = weights
