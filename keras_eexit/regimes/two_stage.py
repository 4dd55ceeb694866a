"""Two-stage (disjoint) training: backbone first, then the internal heads."""

from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import ones
from keras_eexit.regimes._common import reduced
from keras_eexit.regimes._common import reduction_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice


def backbone_phase(epochs, num_exits, learning_rate=None, patience=None,
                   metric="accuracy"):
    """Backbone and final head trained on the final exit's loss only.

    Phase 1 of Kubaty et al. (eq. 1), stage 1 of Algorithms 4 and 5 of
    "Strategies at a glance", the warm-up of Zniber et al.
    """
    phase = Phase("backbone", epochs, train_segments="all",
                  train_heads=[num_exits], weights=one_hot(num_exits,
                                                           num_exits),
                  learning_rate=learning_rate)
    return converging(phase, [num_exits], patience, metric)


def heads_phases(epochs, num_exits, heads="together", learning_rate=None,
                 cache_features=True, reduction="mean", patience=None,
                 metric="accuracy", reset_optimizer=False):
    """Frozen backbone and final head; internal heads together or one by one.

    `"together"`: one phase on `Σ_{k<K} L_k` (`reduction="mean"`: divided
    by K, as Kubaty et al.'s code averages over every head, the frozen
    final one included). `"one_by_one"`: phase n trains head n on `L_n`
    alone (Algorithm 4, stage 2, line 15).
    """
    check_choice("heads", heads, ("together", "one_by_one"))
    internal = list(range(1, num_exits))
    if heads == "together":
        phase = Phase("heads", epochs, train_segments="none",
                      train_heads=internal,
                      weights=reduced(ones(internal, num_exits), num_exits,
                                      reduction),
                      learning_rate=learning_rate,
                      cache_features=cache_features,
                      reset_optimizer=reset_optimizer)
        return [converging(phase, internal, patience, metric)]
    return [converging(Phase(f"head_{k}", epochs, train_segments="none",
                             train_heads=[k], weights=one_hot(k, num_exits),
                             learning_rate=learning_rate,
                             cache_features=cache_features,
                             reset_optimizer=reset_optimizer),
                       [k], patience, metric)
            for k in internal]


class TwoStage(Regime):
    """Two-stage ("disjoint") training.

    Phase 1 trains the backbone (every segment) with the final exit only
    (Kubaty et al., eq. 1; Algorithm 4 lines 1-7). Phase 2 freezes the
    backbone and the final head and trains the internal heads:

    - `heads="together"`: Kubaty et al.'s phase 3 (eq. 3), all internal
      heads at once on the mean (`reduction="mean"`, their code) or sum of
      their losses;
    - `heads="one_by_one"`: Algorithm 4 of "Strategies at a glance"
      (stage 2, lines 9-18): head n alone on `L_n`, n = 1..K-1,
      `heads_epochs` each ("Update parameters of E_n only", line 15).

    Kubaty et al. run each phase to convergence (`patience`: early
    stopping when every trained head stops improving on validation data,
    best weights restored; the epoch arguments are then maxima) with a
    learning rate searched per phase (`backbone_learning_rate`,
    `heads_learning_rate`); their phase 1 is a run of its own and the
    early-exit phase builds a new optimizer (`reset_optimizer=True`: the
    optimizer's moments and step count start afresh at every phase after
    the first). Their set-up: AdamW without weight decay, batch 128,
    backbone learning rate 5e-4 (ViT), phase learning rates searched over
    {1e-3, 1e-4, 1e-5, 4e-3, 8e-3, 5e-4, 8e-4, 4e-5, 8e-5} (appendix D).
    "Strategies at a glance" (sec. 5.3): SGD momentum 0.9 at 0.1/0.01 or
    Adam 0.001, batch 128, 200/300 epochs, patience 10.

    With `cache_features=True` (default) the head phases compute the frozen
    backbone's features once and replay them (see
    `keras_eexit.regimes.FeatureCache`); this assumes the training data are
    the same every epoch (no random augmentation).

    Args:
        backbone_epochs: epochs of phase 1 (its maximum with `patience`).
        heads_epochs: epochs of phase 2 (of each head when one by one).
        heads: `"together"` or `"one_by_one"`.
        backbone_learning_rate: optional learning rate of phase 1.
        heads_learning_rate: optional learning rate of phase 2.
        cache_features: replay cached backbone features in phase 2.
        reduction: `"mean"` (Kubaty et al.'s code) or `"sum"` of the
            heads' losses when they train together.
        patience: `None` (fixed epochs) or the early-stopping patience of
            every phase.
        metric: the per-exit validation metric early stopping watches
            (`"accuracy"`, Kubaty et al.'s text; needs
            `compile(metrics=["accuracy"])`; or `"loss"`).
        reset_optimizer: start every phase after the first with a fresh
            optimizer state.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = TwoStage(backbone_epochs=20, heads_epochs=10)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Kubaty et al., Joint or Disjoint: Mixing Training Regimes for
            Early-Exit Models (eq. 1 and 3; kamadforge/early-exit-benchmark).
        - Rahmath P et al., Strategies at a glance (Algorithm 4).
    """

    min_exits = 2
    min_exits_reason = ("its second stage trains the internal exits on a "
                        "frozen backbone")

    def __init__(self, backbone_epochs, heads_epochs, heads="together",
                 backbone_learning_rate=None, heads_learning_rate=None,
                 cache_features=True, reduction="mean", patience=None,
                 metric="accuracy", reset_optimizer=True, verbose="auto"):
        epochs_arg("backbone_epochs", backbone_epochs)
        epochs_arg("heads_epochs", heads_epochs)
        check_choice("heads", heads, ("together", "one_by_one"))
        reduction_arg(reduction)
        patience, metric = convergence_args(patience, metric)
        check_bool("reset_optimizer", reset_optimizer)

        def phases(num_exits):
            return [backbone_phase(backbone_epochs, num_exits,
                                   backbone_learning_rate, patience,
                                   metric)] + heads_phases(
                heads_epochs, num_exits, heads, heads_learning_rate,
                cache_features, reduction, patience, metric,
                reset_optimizer)

        super().__init__(phases, verbose=verbose)


Disjoint = TwoStage
