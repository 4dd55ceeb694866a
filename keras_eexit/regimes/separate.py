"""Separate training (Algorithm 2 of "Strategies at a glance")."""

from keras_eexit.models.unshared import UnsharedStage
from keras_eexit.models.unshared import unshared_prefixes
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime


class Separate(Regime):
    """Separate training: every exit is an independent sub-model.

    Exit `k` owns its own copy of the backbone prefix (nothing is shared), so
    the regime needs a model built by `Separate.prepare_model(model)` (or
    `keras_eexit.models.unshared_prefixes`). Sub-model `k` (its prefix and
    head) is then trained alone in phase `k`, as in Algorithm 2; the
    assembled model's `flops_per_exit()` is the true cost of cascading
    through the unshared prefixes.

    Not to be confused with the "separate" baseline of Zniber et al., which
    trains a shared prefix sequentially: that is
    `Sequential(objective="cumulative")`.

    Args:
        epochs_per_exit: epochs of each sub-model.
        learning_rate: optional learning rate of every phase.
        verbose: print each phase as it starts.

    Example:

    ```python
    model = Separate.prepare_model(keras_eexit.models.small_cnn())
    regime = Separate(epochs_per_exit=10)
    model.compile("adam")
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```
    """

    def __init__(self, epochs_per_exit, learning_rate=None, verbose=True):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        super().__init__(
            lambda k: [Phase(f"submodel_{n}", epochs_per_exit,
                             train_segments=[n], train_heads=[n],
                             weights=one_hot(n, k),
                             learning_rate=learning_rate)
                       for n in range(1, k + 1)],
            verbose=verbose,
        )

    prepare_model = staticmethod(unshared_prefixes)

    def check_model(self, model):
        if not all(isinstance(s, UnsharedStage) for s in model.segments):
            raise ValueError(
                "Separate training needs one independent backbone copy per "
                "exit: build the model with "
                "`Separate.prepare_model(model)` (see "
                "keras_eexit.models.unshared_prefixes)."
            )
