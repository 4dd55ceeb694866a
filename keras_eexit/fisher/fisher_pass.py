"""`FisherPass`: a train step that measures EWC's Fisher instead of training."""

import keras

from keras_eexit.fisher.empirical_fisher import fisher_variables
from keras_eexit.fisher.empirical_fisher import squared_gradients
from keras_eexit.losses.labels import sparse_labels
from keras_eexit.models.train_step import StepContributor
from keras_eexit.utils.lazy_import import tf
from keras_eexit.utils.variables import to_numpy


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
    backends = ("tensorflow", "jax", "torch")
    eager_on_jax = True

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
        if keras.backend.backend() == "torch":
            return self._run_eagerly(model, batch)
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

    def run_stateless(self, model, state, batch):
        """The JAX step (untraced: it adds to the store's variables): the
        same sums from `jax.vmap` of the per-sample gradient
        (`per_sample_jax`), at the weights of the trainer's `state`."""
        from keras_eexit.fisher import per_sample_jax

        trainable, non_trainable = state[0], state[1]
        values = {id(v): value for v, value in zip(
            model.trainable_variables + model.non_trainable_variables,
            list(trainable) + list(non_trainable))}

        def squares(variables, x, labels):
            return per_sample_jax.squared_gradient_sums(
                model, self.exit, variables, x, labels, values=values)

        return self._accumulate(model, batch, squares), state

    def _run_eagerly(self, model, batch):
        """The PyTorch step: the same sums, one backward pass per sample
        (`torch_training.squared_gradient_sums`)."""
        from keras_eexit import torch_training

        def squares(variables, x, labels):
            return torch_training.squared_gradient_sums(
                model, self.exit, variables, x, labels)

        return self._accumulate(model, batch, squares)

    def _accumulate(self, model, batch, squares):
        """Adds `squares(variables, x, labels)` of the batch's first
        samples (up to `num_samples` in all) to the store, eagerly."""
        x, y, _ = batch
        store = self.store
        take = int(keras.ops.shape(keras.tree.flatten(x)[0])[0])
        if self.num_samples is not None:
            room = self.num_samples - float(to_numpy(store.count))
            take = max(0, min(take, int(room)))
        if take > 0:
            labels = sparse_labels(y[model.exit_names[0]][:take],
                                   model.num_classes, "the model")
            values = squares(
                [store.protected[i] for i in self.slots],
                keras.tree.map_structure(lambda t: t[:take], x), labels)
            for i, value in zip(self.slots, values):
                store.sums[i].assign_add(value)
            store.count.assign_add(float(take))
        return {"fisher_samples": store.count.value}
