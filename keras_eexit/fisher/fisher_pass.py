"""`FisherPass`: a train step that measures EWC's Fisher instead of training."""

from keras_eexit.fisher.empirical_fisher import fisher_variables
from keras_eexit.fisher.empirical_fisher import squared_gradients
from keras_eexit.models.train_step import StepContributor
from keras_eexit.utils.lazy_import import tf


class FisherPass(StepContributor):
    """Replaces the train step during a Fisher phase of a regime.

    Each step adds the batch's squared per-sample gradients of
    `log ŷ_ν(y | x)` (inference mode, exact, one backward pass per batch
    where possible) for the protected variables of segments `1..ν` to the
    sums of `store` (a `FisherStore`), until `num_samples` samples are
    seen. Nothing is trained. The regime then calls
    `store.finish_pass()`.

    A whole-step replacement of the model's train step (`TrainStep`): it
    sets aside every contributor that trains (a method's step and loss,
    gradient equilibrium) for its epoch, which resume afterwards, and
    refuses a `"batch"` contributor (the Fisher needs the real inputs).

    Args:
        model: the `MultiExitModel`.
        exit: the exit NUMBER ν (1..K) whose Fisher is measured.
        store: the `FisherStore` to fill.
        num_samples: cap on the samples used (`None`: the whole epoch).
    """

    roles = ("step",)
    replaces = ("step", "loss", "gradients")
    incompatible = ("batch",)

    def __init__(self, model, exit, store, num_samples=None):
        self.exit = exit
        self.store = store
        self.num_samples = num_samples
        self.slots = store.slots_of(fisher_variables(model, exit))

    def describe(self):
        return f"FisherPass(exit={self.exit})"

    def run(self, model, batch, update):
        """Accumulates squared gradients; returns `{"fisher_samples": n}`.

        `update` (a model update) is never called: nothing trains.
        """
        x, y, _ = batch
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
