"""`PhaseCosineDecay`: every phase of a regime its own cosine decay.

Kubaty et al. search a learning rate for each phase (sec. 4,
`002_e4776b2edd439007.txt` L271) and train their EfficientNet and BERT
set-ups "with cosine scheduler" (appendix D.3, D.4, L818 and L822). In
the authors' code (kamadforge/early-exit-benchmark, `train.py`) every
phase is its own run with a fresh `CosineAnnealingLR` stepped after every
batch, `T_max` = epochs × batches − 1 and `eta_min` 0: the phase's own rate
decays along a cosine over the phase's own epochs. One `fit` with a single
Keras schedule cannot do that, so this callback sets the rate before
every batch.
"""

import math

import keras


class PhaseCosineDecay(keras.callbacks.Callback):
    """Sets the learning rate of each batch: the phase's cosine decay.

    At batch `b` of epoch `e`, in phase `p` that started at epoch `s_p`
    with rate `r_p` (the phase's `learning_rate`, else `base_rate`) and
    lasts at most `E_p` epochs of `N` batches:

        rate = r_p · (1 + cos(π · t / T)) / 2,
        t = min((e − s_p) · N + b, T),  T = max(E_p · N − 1, 1)

    (PyTorch's `CosineAnnealingLR` with `T_max = E_p · N − 1`). A phase
    ended early by its patience leaves its rate where it was; the next
    phase starts again at its own rate. The phase and its start are read
    from the model's regime state, so a run resumed by `BackupAndRestore`
    continues the same curve. Put it after the regime in the callbacks.

    Args:
        regime: the `Regime` that `fit` runs (its phases and state).
        base_rate: the rate of phases that set none.
        steps_per_epoch: the batches of one epoch (`N`).
        epochs: the epochs `fit` runs (the length of a last phase that
            has none of its own).

    Example:

    ```python
    regime = regimes.get_regime("mixed", backbone_epochs=5,
                                joint_epochs=5, backbone_learning_rate=0.1,
                                joint_learning_rate=0.01)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, y, epochs=10, callbacks=[
        regime, PhaseCosineDecay(regime, 0.1, steps_per_epoch, 10)])
    ```
    """

    def __init__(self, regime, base_rate, steps_per_epoch, epochs):
        super().__init__()
        self.regime = regime
        self.base_rate = float(base_rate)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.epochs = int(epochs)
        self._rate = self.base_rate
        self._offset = 0
        self._total = 1

    def rate_at(self, step):
        """The rate `step` batches into the current phase."""
        t = min(step, self._total)
        return self._rate * 0.5 * (1.0 + math.cos(math.pi * t / self._total))

    def on_epoch_begin(self, epoch, logs=None):
        state = self.model.regime_state
        index = int(keras.ops.convert_to_numpy(state.phase_index))
        start = int(keras.ops.convert_to_numpy(state.phase_start))
        phase = self.regime.phases_for(self.model.num_exits)[index]
        self._rate = (self.base_rate if phase.learning_rate is None
                      else float(phase.learning_rate))
        length = phase.epochs or max(self.epochs - start, 1)
        self._total = max(length * self.steps_per_epoch - 1, 1)
        self._offset = (epoch - start) * self.steps_per_epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(
            self.rate_at(self._offset + batch))
