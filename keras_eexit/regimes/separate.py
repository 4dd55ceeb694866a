"""Separate training (Algorithm 2 of "Strategies at a glance")."""

from keras_eexit.models.unshared import UnsharedStage
from keras_eexit.models.unshared import unshared_prefixes
from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_bool


class Separate(Regime):
    """Separate training: every exit is an independent sub-model.

    Algorithm 2 of "Strategies at a glance": sub-model M_n is the backbone
    truncated at exit n plus head E_n (line 2; the backbone is
    ImageNet-pretrained in the paper), and each is trained alone on its
    cross-entropy (lines 4-12), the final exit included (the paper's
    Fig. 4); the sub-models are then assembled (line 13). Exit `k` owns its
    own copy of the backbone prefix (nothing is shared), so the regime
    needs a model built by `Separate.prepare_model(model)`, which copies
    the weights `model` has into every truncated copy (`weights="fresh"`
    re-initialises them instead). Phase k trains sub-model k (its prefix
    and head); the assembled model's `flops_per_exit()` is the true cost
    of cascading through the unshared prefixes. Each sub-model has "its
    own optimizer and learning schedule" (sec. 5.4): `reset_optimizer=True`
    starts every phase with a fresh optimizer state.

    Starting from a random (untrained) model, the sub-models start from
    copies of the same random weights and train independently — separate
    training from scratch; pretrain or warm up the backbone first (e.g.
    with `TwoStage`'s first phase, or load pretrained weights) for the
    paper's set-up.

    Not to be confused with the "separate" baseline of Zniber et al., which
    trains a shared prefix sequentially: that is
    `SequentialRegime(objective="cumulative")`.

    Set-up of the paper (sec. 5.3): see `BranchWise`.

    Args:
        epochs_per_exit: epochs of each sub-model (maximum with
            `patience`).
        learning_rate: optional learning rate of every phase.
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric of exit n early stopping watches.
        reset_optimizer: a fresh optimizer state for every sub-model.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    model = Separate.prepare_model(pretrained_model)
    regime = Separate(epochs_per_exit=10)
    model.compile("adam")
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Rahmath P et al., Strategies at a glance (Algorithm 2).
    """

    def __init__(self, epochs_per_exit, learning_rate=None, patience=None,
                 metric="loss", reset_optimizer=True, verbose="auto"):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)
        super().__init__(
            lambda k: [converging(
                Phase(f"submodel_{n}", epochs_per_exit, train_segments=[n],
                      train_heads=[n], weights=one_hot(n, k),
                      learning_rate=learning_rate,
                      reset_optimizer=reset_optimizer),
                [n], patience, metric) for n in range(1, k + 1)],
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
