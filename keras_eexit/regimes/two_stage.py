"""Two-stage (disjoint) training: backbone first, then the internal heads."""

from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import ones
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_choice


def backbone_phase(epochs, num_exits, learning_rate=None):
    """Backbone and final head trained on the final exit's loss only."""
    return Phase("backbone", epochs, train_segments="all",
                 train_heads=[num_exits], weights=one_hot(num_exits,
                                                          num_exits),
                 learning_rate=learning_rate)


def heads_phases(epochs, num_exits, heads="together", learning_rate=None,
                 cache_features=True):
    """Frozen backbone; internal heads trained together or one by one."""
    check_choice("heads", heads, ("together", "one_by_one"))
    internal = list(range(1, num_exits))
    if heads == "together":
        return [Phase("heads", epochs, train_segments="none",
                      train_heads=internal,
                      weights=ones(internal, num_exits),
                      learning_rate=learning_rate,
                      cache_features=cache_features)]
    return [Phase(f"head_{k}", epochs, train_segments="none",
                  train_heads=[k], weights=one_hot(k, num_exits),
                  learning_rate=learning_rate,
                  cache_features=cache_features)
            for k in internal]


class TwoStage(Regime):
    """Two-stage ("disjoint") training.

    Phase 1 trains the backbone (every segment) with the final exit only.
    Phase 2 freezes the backbone and the final head and trains the internal
    heads: all at once (`heads="together"`, phase 3 of Kubaty et al.'s
    "Joint or disjoint") or one at a time (`heads="one_by_one"`,
    Algorithm 4 of "Strategies at a glance"; `heads_epochs` each).

    With `cache_features=True` (default) the head phases compute the frozen
    backbone's features once and replay them (see
    `keras_eexit.regimes.FeatureCache`); this assumes the training data are
    the same every epoch (no random augmentation).

    Args:
        backbone_epochs: epochs of phase 1.
        heads_epochs: epochs of phase 2 (of each head when one by one).
        heads: `"together"` or `"one_by_one"`.
        backbone_learning_rate: optional learning rate of phase 1.
        heads_learning_rate: optional learning rate of phase 2.
        cache_features: replay cached backbone features in phase 2.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = TwoStage(backbone_epochs=20, heads_epochs=10)
    model.fit(x, y, epochs=regime.epochs_for(model), callbacks=[regime])
    ```
    """

    def __init__(self, backbone_epochs, heads_epochs, heads="together",
                 backbone_learning_rate=None, heads_learning_rate=None,
                 cache_features=True, verbose=True):
        epochs_arg("backbone_epochs", backbone_epochs)
        epochs_arg("heads_epochs", heads_epochs)
        check_choice("heads", heads, ("together", "one_by_one"))

        def phases(num_exits):
            return [backbone_phase(backbone_epochs, num_exits,
                                   backbone_learning_rate)] + heads_phases(
                heads_epochs, num_exits, heads, heads_learning_rate,
                cache_features)

        super().__init__(phases, verbose=verbose)


Disjoint = TwoStage
