"""`AccumulateFisher`: EWC's Fisher and anchors as a standalone callback."""

import keras
import numpy as np

from keras_eexit.regularizers.fisher import empirical_fisher
from keras_eexit.regularizers.fisher import fisher_variables


class _FisherStore(keras.layers.Layer):
    """Variables holding a Fisher diagonal and anchors (saved by checkpoints)."""

    def __init__(self, variables, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.paths = [v.path for v in variables]
        self.fisher = [self.add_weight(shape=v.shape, initializer="zeros",
                                       trainable=False, name=f"fisher_{i}")
                       for i, v in enumerate(variables)]
        self.anchors = [self.add_weight(shape=v.shape, initializer="zeros",
                                        trainable=False, name=f"anchor_{i}")
                        for i, v in enumerate(variables)]
        self.built = True


class AccumulateFisher(keras.callbacks.Callback):
    """Accumulates exit `exit_index`'s empirical Fisher at the end of `fit`.

    For custom training loops built from several `fit` calls (one per
    stage): after each `fit`, the Fisher of the exit over `data` (see
    `keras_eexit.regularizers.empirical_fisher`) is added to `.fisher`
    (online EWC) and `.anchors` are set to the current weights. The values
    live in variables attached to the model (not tracked as a sublayer, so
    not in saved `.keras` files), which `model.save_weights` — and therefore
    `keras.callbacks.BackupAndRestore` — saves and restores. The
    `Sequential(regularizer="ewc")` regime does the same inside one `fit`
    with Fisher passes over the training data.

    Args:
        data: a `tf.data.Dataset` of `(x, y)` batches.
        exit_index: 0-based exit.
        num_samples: samples per Fisher (default: all of `data`).
        per_batch: use the cheaper batch-gradient approximation.

    Example:

    ```python
    fisher = AccumulateFisher(splits.train, exit_index=0, num_samples=2000)
    model.fit(splits.train, epochs=5, callbacks=[fisher])
    fisher.fisher  # {variable path: Fisher diagonal}
    ```
    """

    ATTRIBUTE = "eexit_fisher_store"

    def __init__(self, data, exit_index, num_samples=None, per_batch=False):
        super().__init__()
        self.data = data
        self.exit_index = exit_index
        self.num_samples = num_samples
        self.per_batch = per_batch

    def _store(self):
        model = self.model
        store = getattr(model, self.ATTRIBUTE, None)
        if store is None:
            store = _FisherStore(fisher_variables(model, self.exit_index),
                                 name="fisher_store")
            object.__setattr__(model, self.ATTRIBUTE, store)
        return store

    def set_model(self, model):
        super().set_model(model)
        self._store()  # exists before BackupAndRestore restores weights

    def on_train_end(self, logs=None):
        store = self._store()
        fisher = empirical_fisher(self.model, self.data, self.exit_index,
                                  self.num_samples, self.per_batch)
        current = {v.path: v for v in
                   fisher_variables(self.model, self.exit_index)}
        for path, f, anchor in zip(store.paths, store.fisher, store.anchors):
            if path in fisher:
                f.assign(np.array(f) + fisher[path])
                anchor.assign(current[path])

    @property
    def fisher(self):
        """Accumulated Fisher diagonal: `{variable path: array}`."""
        store = self._store()
        return {p: np.array(f) for p, f in zip(store.paths, store.fisher)}

    @property
    def anchors(self):
        """Weights at the end of the last `fit`: `{variable path: array}`."""
        store = self._store()
        return {p: np.array(a) for p, a in zip(store.paths, store.anchors)}
