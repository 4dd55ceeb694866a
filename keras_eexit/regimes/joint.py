"""The joint regime: every exit trained together on a weighted loss sum."""

import numpy as np

from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_choice

SDN_FINAL_TARGET = 0.9


def sdn_schedule(num_exits):
    """The Shallow-Deep Networks loss-weight schedule (Kaya et al., 2019).

    Internal exit `k` (1..K-1) has a target `τ_k = 0.9·k/(K-1)`, which gives
    SDN's 0.15, 0.30, ..., 0.90 for its six internal classifiers. At epoch
    `e` of `E` its weight is `min(τ_k, 0.01 + e·τ_k/E)`; the final exit's
    weight is 1 throughout (as in the authors' `model_funcs.py`).

    Args:
        num_exits: K.

    Returns:
        A function `(epoch, epochs) -> list of K weights`.
    """
    targets = SDN_FINAL_TARGET * np.arange(1, num_exits) / max(
        1, num_exits - 1)

    def weights(epoch, epochs):
        internal = np.minimum(targets, 0.01 + epoch * targets / epochs)
        return list(internal) + [1.0]

    return weights


class Joint(Regime):
    """Joint training: all stages and heads on `Σ_k w_k · CE_k`.

    The regime of most early-exit papers (SDN, MSDNet, "Joint or disjoint",
    "Strategies at a glance"): one phase that lasts the whole `fit`.

    Args:
        weights: per-exit weights: `"uniform"`, `"linear"`, `"to_final"`,
            `"han"` or an explicit list (see
            `keras_eexit.regimes.weights.exit_weights`).
        schedule: `None` or `"sdn"` (weights of internal exits grow during
            training, see `sdn_schedule`; `weights` is then ignored).
        gradient_equilibrium: rescale the gradients each exit sends into the
            shared backbone (Li et al., ICCV 2019).
        learning_rate: optional learning rate set when training starts.
        verbose: print the phase as it starts.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[keras_eexit.regimes.Joint("han")])
    ```
    """

    def __init__(self, weights="uniform", schedule=None,
                 gradient_equilibrium=False, learning_rate=None,
                 verbose=True):
        if schedule is not None:
            check_choice("schedule", schedule, ("sdn",))
        self.weights = weights
        self.schedule = schedule
        super().__init__(
            [Phase("joint", None, weights=weights,
                   learning_rate=learning_rate,
                   gradient_equilibrium=gradient_equilibrium)],
            verbose=verbose,
        )

    def check_model(self, model):
        if self.schedule == "sdn":
            self.phases[0] = Phase(
                "joint", None, weights=sdn_schedule(model.num_exits),
                learning_rate=self.phases[0].learning_rate,
                gradient_equilibrium=self.phases[0].gradient_equilibrium,
            )
