"""Sequential training: exits added shallow to deep on a shared prefix."""

from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import ones
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_choice


class Sequential(Regime):
    """Sequential training of the exits (Zniber et al.'s baselines).

    An optional warm-up (stage 0) trains the backbone with the final exit
    only. Then exits are added one at a time, shallow to deep: at stage μ
    the segments 1..μ are trainable (a shared, fully unfrozen prefix) and
    deeper segments are frozen.

    - `objective="cumulative"`: heads 1..μ train on the losses of exits
      1..μ — the "separate" baseline of the EWC/LwF paper.
    - `objective="current"`: head μ trains on exit μ's loss alone; the
      method of that paper adds a regulariser (next issue).

    With a warm-up, the stages cover the internal exits 1..K-1 (the final
    exit was trained in the warm-up and its head stays frozen); without it
    they cover 1..K.

    Args:
        epochs_per_exit: epochs of each stage.
        warmup_epochs: epochs of stage 0 (0 = no warm-up).
        objective: `"cumulative"` or `"current"`.
        learning_rate: optional learning rate of every stage.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = Sequential(epochs_per_exit=3, warmup_epochs=5)
    ```
    """

    def __init__(self, epochs_per_exit, warmup_epochs=0,
                 objective="cumulative", learning_rate=None, verbose=True):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        if isinstance(warmup_epochs, bool) or not isinstance(
            warmup_epochs, int
        ) or warmup_epochs < 0:
            from keras_eexit.utils.validation import invalid_value

            raise invalid_value("warmup_epochs", "an integer >= 0",
                                warmup_epochs)
        check_choice("objective", objective, ("cumulative", "current"))
        self.objective_kind = objective

        def phases(num_exits):
            result = []
            last = num_exits
            if warmup_epochs:
                result.append(backbone_phase(warmup_epochs, num_exits,
                                             learning_rate))
                last = num_exits - 1
            for mu in range(1, last + 1):
                prefix = list(range(1, mu + 1))
                if objective == "cumulative":
                    heads, weights = prefix, ones(prefix, num_exits)
                else:
                    heads, weights = [mu], one_hot(mu, num_exits)
                result.append(Phase(
                    f"stage_{mu}", epochs_per_exit, train_segments=prefix,
                    train_heads=heads, weights=weights,
                    learning_rate=learning_rate))
            return result

        super().__init__(phases, verbose=verbose)
