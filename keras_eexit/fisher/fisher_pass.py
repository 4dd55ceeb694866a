"""`FisherPass`: a train step that measures EWC's Fisher instead of training."""

import keras
import tensorflow as tf

from keras_eexit.fisher.empirical_fisher import fisher_variables
from keras_eexit.fisher.empirical_fisher import squared_gradients


class FisherPass:
    """Replaces the train step during a Fisher phase of a regime.

    Each step adds the batch's squared per-sample gradients of
    `log ŷ_ν(y | x)` (inference mode, exact, one backward pass per batch
    where possible) for the protected variables of segments `1..ν` to the
    sums of `store` (a `FisherStore`), until `num_samples` samples are
    seen. Nothing is trained. The regime then calls
    `store.finish_pass()`.

    Args:
        model: the `MultiExitModel`.
        exit: the exit NUMBER ν (1..K) whose Fisher is measured.
        store: the `FisherStore` to fill.
        num_samples: cap on the samples used (`None`: the whole epoch).
    """

    def __init__(self, model, exit, store, num_samples=None):
        self.exit = exit
        self.store = store
        self.num_samples = num_samples
        self.slots = store.slots_of(fisher_variables(model, exit))

    def next_epoch(self):
        """A Fisher pass lasts one epoch: the train step never changes."""
        return False

    def train_step(self, model, data):
        """Accumulates squared gradients; returns `{"fisher_samples": n}`."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = y[model.exit_names[0]]
        store = self.store
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        take = batch
        if self.num_samples is not None:
            room = tf.cast(self.num_samples, tf.float32) - store.count
            take = tf.minimum(batch, tf.cast(tf.maximum(room, 0.0), tf.int32))
        variables = [store.protected[i] for i in self.slots]

        def accumulate():
            squares = squared_gradients(
                model, self.exit, variables,
                tf.nest.map_structure(lambda t: t[:take], x),
                labels[:take])
            for i, value in zip(self.slots, squares):
                store.sums[i].assign_add(value)
            store.count.assign_add(tf.cast(take, tf.float32))
            return tf.constant(0)

        tf.cond(take > 0, accumulate, lambda: tf.constant(0))
        return {"fisher_samples": store.count.value}
