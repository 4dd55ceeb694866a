"""`FisherPass`: a train step that measures EWC's Fisher instead of training."""

import tensorflow as tf

from keras_eexit.regularizers.fisher import squared_gradients


class FisherPass:
    """Replaces the train step during a Fisher phase of a regime.

    Each step adds the batch's squared per-sample gradients of
    `log p_exit(y | x)` (inference mode, exact, one backward pass per
    batch where possible) for the protected variables of segments
    `1..exit` to `model.regime_state.fisher_sum`, until `num_samples`
    samples are seen. Nothing is trained. The regime then calls
    `RegimeState.finish_fisher()`.

    Args:
        model: the `MultiExitModel`.
        exit_index: 0-based exit whose Fisher is measured.
        num_samples: cap on the samples used (`None`: the whole epoch).
    """

    def __init__(self, model, exit_index, num_samples=None):
        self.exit_index = exit_index
        self.num_samples = num_samples
        state = model.regime_state
        owned = {id(v) for segment in model.segments[: exit_index + 1]
                 for v in segment.weights}
        self.slots = [i for i, v in enumerate(state.protected)
                      if id(v) in owned]

    def next_epoch(self):
        """A Fisher pass lasts one epoch: the train step never changes."""
        return False

    def train_step(self, model, data):
        """Accumulates squared gradients; returns `{"fisher_samples": n}`."""
        import keras

        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = y[model.exit_names[0]]
        state = model.regime_state
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        take = batch
        if self.num_samples is not None:
            room = tf.cast(self.num_samples, tf.float32) - state.fisher_count
            take = tf.minimum(batch, tf.cast(tf.maximum(room, 0.0), tf.int32))
        variables = [state.protected[i] for i in self.slots]

        def accumulate():
            squares = squared_gradients(
                model, self.exit_index, variables,
                tf.nest.map_structure(lambda t: t[:take], x),
                labels[:take])
            for i, value in zip(self.slots, squares):
                state.fisher_sum[i].assign_add(value)
            state.fisher_count.assign_add(tf.cast(take, tf.float32))
            return tf.constant(0)

        tf.cond(take > 0, accumulate, lambda: tf.constant(0))
        return {"fisher_samples": state.fisher_count.value}
