"""`AccumulateFisher`: EWC's Fisher and anchors as a standalone callback."""

import keras
import numpy as np

from keras_eexit.fisher.empirical_fisher import empirical_fisher
from keras_eexit.fisher.empirical_fisher import fisher_variables
from keras_eexit.fisher.fisher_store import FisherStore
from keras_eexit.utils.validation import check_exit_number


class AccumulateFisher(keras.callbacks.Callback):
    """Accumulates exit ν's empirical Fisher at the end of `fit`.

    For custom training loops built from several `fit` calls (one per
    stage): after each `fit`, the Fisher of exit ν over `data` (see
    `keras_eexit.fisher.empirical_fisher`) is added to `.fisher` (online
    EWC) and `.anchors` are set to the current weights. The values live in
    a `FisherStore` attached to the model (not tracked as a sublayer, so
    not in saved `.keras` files), which `model.save_weights` - and
    therefore `keras.callbacks.BackupAndRestore` - saves and restores;
    `EWCPenalty(lam, store=callback.store)` reads it. The
    `SequentialRegime(regularizer="ewc")` regime does the same inside one `fit`
    with Fisher passes over the training data.

    Args:
        data: a `tf.data.Dataset` of `(x, y)` batches.
        exit: the exit NUMBER ν (1..K).
        num_samples: samples per Fisher (default: all of `data`).
        per_batch: use the cheaper batch-gradient approximation.

    Example:

    ```python
    fisher = AccumulateFisher(splits.train, exit=1, num_samples=2000)
    model.fit(splits.train, epochs=5, callbacks=[fisher])
    fisher.fisher  # {variable path: Fisher diagonal}
    ```
    """

    ATTRIBUTE = "eexit_fisher_store"

    def __init__(self, data, exit, num_samples=None, per_batch=False):
        super().__init__()
        self.data = data
        self.exit = check_exit_number("exit", exit)
        self.num_samples = num_samples
        self.per_batch = per_batch

    @property
    def store(self):
        """The `FisherStore` (created for the exit's variables)."""
        model = self.model
        store = getattr(model, self.ATTRIBUTE, None)
        if store is None:
            store = FisherStore(model, fisher_variables(model, self.exit))
            model.attach_state(self.ATTRIBUTE, store)
        return store

    def set_model(self, model):
        super().set_model(model)
        self.store  # exists before BackupAndRestore restores weights

    def on_train_end(self, logs=None):
        store = self.store
        store.add(empirical_fisher(self.model, self.data, self.exit,
                                   self.num_samples, self.per_batch))
        store.anchor()

    @property
    def fisher(self):
        """Accumulated Fisher diagonal: `{variable path: array}`."""
        store = self.store
        return {p: np.array(f) for p, f in zip(store.paths, store.fisher)}

    @property
    def anchors(self):
        """Weights at the end of the last `fit`: `{variable path: array}`."""
        store = self.store
        return {p: np.array(a) for p, a in zip(store.paths, store.anchors)}
