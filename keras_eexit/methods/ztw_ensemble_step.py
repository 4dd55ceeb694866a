"""`ZTWEnsembleStep`: the train step of Zero Time Waste's ensemble phase."""

import contextlib

import keras

from keras_eexit.compat import model_strategy
from keras_eexit.compat import update_loss_tracker
from keras_eexit.models.train_step import StepContributor
from keras_eexit.utils.lazy_import import tf


class ZTWEnsembleStep(StepContributor):
    """Trains the geometric ensembles of a ZTW network, nothing else.

    ZTW learns its ensemble weights after its exits, with the backbone and
    the exits frozen (Wołczyk et al., 2021, sec. 3.2; Kubaty et al.'s
    benchmark runs it as its own training, `ZTWEnsembling`, in which the
    cascading model is frozen). This step runs the model in inference mode
    (BatchNorm statistics untouched), computes the phase's objective on
    the ensembled exits and updates only the ensemble parameters
    (`ZTWHead.ensemble_variables()`, non-trainable variables that no other
    phase touches) with its own Adam optimizer (the authors' rewrite,
    `ztw_cv/scripts/ztw_vit.py`: Adam, learning rate 1e-3, 2 epochs).
    When it is created it switches every ensemble on
    (`ensemble_ready = 1`), so the phase, and every prediction afterwards,
    uses the ensembles.

    A whole-step replacement of the model's train step (`TrainStep`),
    created by the phase (`Phase(train_step=ZTWEnsembleStep.factory(...))`,
    see `keras_eexit.methods.ztw_regime`): a method's step and loss
    contributors sit out the phase, and a `"batch"` contributor is
    refused. Its Adam state lives in this object:
    a run resumed inside the phase restarts the moments. Its optimizer is
    created in the model's distribution scope, but the phase has been
    tested on one device only. On PyTorch the gradient of the ensemble
    parameters is `torch_training.variable_gradients`'s. On JAX the step
    runs untraced around one compiled update (`run_stateless`): the
    ensemble parameters are part of the trainer's state (non-trainable
    model variables), the Adam state is written back to this object's
    optimizer after each step.

    Args:
        model: a `MultiExitModel` with `ZTWHead` ensembles.
        learning_rate: Adam's learning rate.

    Example:

    ```python
    Phase("ztw_ensemble", 2, train_segments="none", train_heads="none",
          train_step=ZTWEnsembleStep.factory(1e-2))
    ```
    """

    roles = ("step",)
    replaces = ("step", "loss", "gradients")
    incompatible = ("batch",)
    backends = ("tensorflow", "jax", "torch")
    eager_on_jax = True  # its optimizer is outside the trainer's state

    def __init__(self, model, learning_rate=1e-2):
        from keras_eexit.methods.ztw import ensemble_heads

        self.check_backend()
        heads = ensemble_heads(model)
        if not heads:
            raise ValueError(
                "ZTW's ensemble phase needs a model with ZTW ensembles: "
                "build it with keras_eexit.methods.ztw(model).")
        self.variables = [v for h in heads for v in h.ensemble_variables()]
        strategy = model_strategy(model)
        with (contextlib.nullcontext() if strategy is None
              else strategy.scope()):
            self.optimizer = keras.optimizers.Adam(learning_rate)
            self.optimizer.build(self.variables)
        for head in heads:
            head.ensemble_ready.assign(1.0)
        self._compiled = {}

    @classmethod
    def factory(cls, learning_rate=1e-2):
        """A `Phase(train_step=...)` factory with this learning rate."""

        def make(model, phase):
            return cls(model, learning_rate)

        return make

    def run(self, model, batch, update):
        """One update of the ensemble parameters (traced by Keras).

        Its own update: the model's (`update`) is never called.
        """
        x, y, sample_weight = batch
        if keras.backend.backend() == "torch":
            from keras_eexit import torch_training

            def forward():
                return model(x, training=False)

            def loss_of(y_pred):
                return model.compute_loss(x=x, y=y, y_pred=y_pred,
                                          sample_weight=sample_weight,
                                          training=True)

            loss, y_pred, gradients = torch_training.variable_gradients(
                forward, loss_of, self.variables)
            self.optimizer.apply(gradients, self.variables)
            update_loss_tracker(model, loss, torch_training.batch_size(x))
            return model.compute_metrics(x, y, y_pred, sample_weight)
        watched = [v.value for v in self.variables]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred,
                                      sample_weight=sample_weight,
                                      training=True)
        gradients = tape.gradient(loss, watched)
        self.optimizer.apply(gradients, self.variables)
        update_loss_tracker(model, loss,
                            tf.shape(tf.nest.flatten(x)[0])[0])
        return model.compute_metrics(x, y, y_pred, sample_weight)

    def run_stateless(self, model, state, batch):
        """One update of the ensemble parameters on JAX.

        Args:
            model: the `MultiExitModel`.
            state: the trainer's `(trainable, non_trainable, optimizer,
                metrics)` values.
            batch: the step's `Batch`.

        Returns:
            `(logs, new_state)`: the ensemble parameters' new values are
            in the state's non-trainable part.
        """
        step = self._compiled_step(model)
        slots = [v.value for v in self.optimizer.variables]
        logs, state, slots = step(tuple(state), slots, tuple(batch))
        for variable, value in zip(self.optimizer.variables, slots):
            variable.assign(value)
        return logs, state

    def _compiled_step(self, model):
        """The update as one `jax.jit` function of the trainer's state,
        this optimizer's values and the batch (compiled once per set of
        model variables)."""
        import jax

        from keras_eexit.compat import jax_update_metrics
        from keras_eexit.models.jax_step import apply_to_trainable

        key = tuple(id(v) for v in model.non_trainable_variables)
        if key in self._compiled:
            return self._compiled[key]
        positions = [next(i for i, w in enumerate(
            model.non_trainable_variables) if w is v)
            for v in self.variables]

        def step(state, slots, batch):
            trainable, non_trainable, optimizer_values, metrics = state
            x, y, sample_weight = batch

            def with_ensembles(values):
                merged = list(non_trainable)
                for i, value in zip(positions, values):
                    merged[i] = value
                return merged

            def loss_of(values):
                mapping = (
                    list(zip(model.trainable_variables, trainable))
                    + list(zip(model.non_trainable_variables,
                               with_ensembles(values)))
                    + list(zip(model.metrics_variables, metrics)))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    y_pred = model(x, training=False)
                    loss = model.compute_loss(
                        x=x, y=y, y_pred=y_pred,
                        sample_weight=sample_weight, training=True)
                new_metrics = [
                    value if scope.get_current_value(v) is None
                    else scope.get_current_value(v)
                    for v, value in zip(model.metrics_variables, metrics)]
                return loss, (y_pred, new_metrics)

            values = [non_trainable[i] for i in positions]
            (loss, (y_pred, metrics)), grads = jax.value_and_grad(
                loss_of, has_aux=True)(values)
            values, slots = apply_to_trainable(
                self.optimizer, slots, grads, self.variables, values)
            logs, metrics = jax_update_metrics(
                model, metrics, loss, x, y, y_pred, sample_weight)
            return logs, (trainable, with_ensembles(values),
                          optimizer_values, metrics), slots

        self._compiled = {key: jax.jit(step)}
        return self._compiled[key]
