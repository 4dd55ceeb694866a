"""Branch-wise training (Algorithm 3 of "Strategies at a glance")."""

from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_bool


def branch_phases(epochs, exits, num_exits, learning_rate=None,
                  train_segment=True, patience=None, metric="loss",
                  reset_optimizer=False, cache_features=False,
                  name="branch"):
    """Phase n trains head n (and segment n) on exit n's loss.

    Segments before n are frozen (Algorithm 3 line 5), deeper ones are not
    part of the sub-model M_n. With `train_segment=False` only head n
    trains (the backbone is fixed: Algorithm 6 line 21, the
    pretrained-branch hybrid).
    """
    return [converging(Phase(
        f"{name}_{n}", epochs,
        train_segments=[n] if train_segment else "none", train_heads=[n],
        weights=one_hot(n, num_exits), learning_rate=learning_rate,
        reset_optimizer=reset_optimizer,
        cache_features=cache_features and not train_segment),
        [n], patience, metric) for n in exits]


class BranchWise(Regime):
    """Branch-wise training: exits trained one after another, shallow first.

    Algorithm 3 of "Strategies at a glance": for n = 1..K, the sub-model
    M_n = B_{1:L_n} ∪ E_n starts from M_{n-1}'s weights, the layers up to
    L_{n-1} are frozen (line 5), and segment n and head n train on exit
    n's cross-entropy (lines 7-13); the final exit is trained last. Every
    M_n is a new training run (`reset_optimizer=True`: a fresh optimizer
    state per phase).

    Set-up of the paper (sec. 5.3): SGD momentum 0.9 at 0.1 (ResNet) /
    0.01 (VGG) or Adam at 0.001 (MobileNet), batch 128, 200 (CIFAR-10) /
    300 (CIFAR-100) epochs, early-stopping patience 10 (`patience=10`; the
    paper tracks validation loss, sec. 5.5, hence `metric="loss"`).

    Args:
        epochs_per_exit: epochs of each phase (the maximum with
            `patience`).
        learning_rate: optional learning rate of every phase.
        patience: `None` (fixed epochs) or the early-stopping patience.
        metric: the validation metric of exit n early stopping watches.
        reset_optimizer: a fresh optimizer state at every phase.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = BranchWise(epochs_per_exit=5)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Rahmath P et al., Strategies at a glance (Algorithm 3).
    """

    def __init__(self, epochs_per_exit, learning_rate=None, patience=None,
                 metric="loss", reset_optimizer=True, verbose="auto"):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)
        super().__init__(
            lambda k: branch_phases(epochs_per_exit, range(1, k + 1), k,
                                    learning_rate, patience=patience,
                                    metric=metric,
                                    reset_optimizer=reset_optimizer),
            verbose=verbose,
        )
