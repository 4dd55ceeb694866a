"""The train and test steps of a `MultiExitModel` on the JAX backend.

Keras' JAX trainer is stateless: it calls `train_step(state, data)` with
the values of the model's trainable, non-trainable, optimizer and metric
variables, and gets new values back. Two things differ from Keras' own
JAX step, both needed by regimes:

* the optimizer updates only the variables that train now. A regime
  builds the optimizer over every variable any of its phases trains, then
  freezes some of them per phase; Keras' `optimizer.stateless_apply`
  insists on the full list. Here the update is `optimizer.apply` on the
  trainable subset inside a `keras.StatelessScope`, so a frozen variable
  keeps its value and its optimizer slots bit for bit, as on TensorFlow;
* labels are given to every exit (`input_checks.labels_per_exit`), as the
  TensorFlow step does.

When a regime changes trainable flags at an epoch's edge, Keras' callbacks
sync the state back to the variables first (`Callback.model` calls
`jax_state_sync`), and the next batch reads the new trainable list; JAX
traces the step again for the new structure.

The composable train step (`models/train_step.py`) runs on JAX too: a
`"step"` contributor gives its stateless step (`run_stateless`: a Fisher
pass, L2W, ZTW's ensemble phase), a `"loss"` contributor its objective
(`train_step` below), a `"gradients"` contributor wraps the stage calls
of the forward pass; a contributor that is TensorFlow code refuses the
JAX backend when it is installed.
"""

import weakref

import keras

from keras_eexit.compat import jax_update_metrics
from keras_eexit.models.train_step import HeadInputs


def train_step(model, state, data, extra_state=()):
    """One stateless update; `state` and the result as Keras' JAX step.

    Keras' own loss (`model.compute_loss_and_updates`) unless a `"loss"`
    contributor of the train step is active (L2W's sample weights): then
    the contributors' objective, as `TrainStep.update` on TensorFlow.

    Args:
        model: a compiled `MultiExitModel`.
        state: `(trainable, non_trainable, optimizer, metrics)` values.
        data: a batch `(x, y[, sample_weight])`, labels per exit.
        extra_state: `(variable, value)` pairs of variables outside the
            model that the loss contributors read (L2W's network), so that
            a traced step reads the given values, not constants.

    Returns:
        `(logs, new_state)`.
    """
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    losses = model.train_pipeline.active("loss")
    if losses or isinstance(x, HeadInputs):
        def loss_and_updates(*args, **kwargs):
            return _contributed_loss(model, losses, list(extra_state),
                                     *args, **kwargs)
    else:
        loss_and_updates = model.compute_loss_and_updates
    grad_fn = jax.value_and_grad(loss_and_updates, has_aux=True)
    (_, aux), grads = grad_fn(
        trainable, non_trainable, metrics_values, x, y, sample_weight,
        training=True, optimizer_variables=optimizer_values)
    loss, y_pred, non_trainable, metrics_values = aux
    trainable, optimizer_values = apply_to_trainable(
        model.optimizer, optimizer_values, grads,
        model.trainable_variables, trainable)
    logs, metrics_values = jax_update_metrics(
        model, metrics_values, loss, x, y, y_pred, sample_weight)
    return logs, (trainable, non_trainable, optimizer_values,
                  metrics_values)


def step_key(model):
    """What a compiled JAX step of `model` depends on besides its
    arguments: the trainable set, the objective, the optimizer and the
    train step's plan (`TrainStep.trace_key`)."""
    return (tuple(id(v) for v in model.trainable_variables),
            id(model.objective), id(model.optimizer),
            model.train_pipeline.trace_key())


_COMPILED = weakref.WeakKeyDictionary()


def compiled_train_step(model):
    """`train_step(model, state, data)` compiled with `jax.jit`, for a step
    that runs eagerly around it (a feature cache's): compiled again when
    `step_key(model)` changes.

    Args:
        model: a compiled `MultiExitModel`.

    Returns:
        A function `(state, data) -> (logs, new_state)`.
    """
    import jax

    key = step_key(model)
    cached = _COMPILED.get(model)
    if cached is None or cached[0] != key:
        owner = weakref.ref(model)  # the cache must not keep it alive
        cached = (key, jax.jit(lambda state, data: train_step(
            owner(), state, data)))
        _COMPILED[model] = cached
    return cached[1]


def _contributed_loss(model, contributors, extra_state, trainable,
                      non_trainable, metrics_values, x, y, sample_weight,
                      training=True, optimizer_variables=None):
    """`compute_loss_and_updates` with the loss contributors' objective.

    The forward pass, the objective and the trackers it updates run in one
    `keras.StatelessScope` over the model's, the metrics' and
    `extra_state`'s variables; the loss is scaled for mixed precision as
    Keras' own.
    """
    from keras_eexit.models.train_step import Batch
    from keras_eexit.models.train_step import forward

    mapping = (list(zip(model.trainable_variables, trainable))
               + list(zip(model.non_trainable_variables, non_trainable))
               + list(zip(model.metrics_variables, metrics_values))
               + extra_state)
    with keras.StatelessScope(state_mapping=mapping) as scope:
        y_pred = forward(model, x, training=training)
        batch = Batch(x, y, sample_weight)
        objective = model.objective
        for contributor in contributors:
            objective = contributor.objective(model, batch, y_pred,
                                              objective)
        loss = model.objective_loss(objective, x, y, y_pred, sample_weight)

    def current(variables, values):
        return [value if scope.get_current_value(v) is None
                else scope.get_current_value(v)
                for v, value in zip(variables, values)]

    non_trainable = current(model.non_trainable_variables, non_trainable)
    metrics_values = current(model.metrics_variables, metrics_values)
    scaled = loss
    if training and model.optimizer is not None:
        with keras.StatelessScope(state_mapping=list(zip(
                model.optimizer.variables, optimizer_variables))):
            scaled = model.optimizer.scale_loss(loss)
    return scaled, (loss, y_pred, non_trainable, metrics_values)


def apply_to_trainable(optimizer, optimizer_values, grads, variables,
                       values):
    """`optimizer.apply(grads, variables)` on values, statelessly.

    Unlike `optimizer.stateless_apply`, `variables` may be any subset of
    those the optimizer was built with: the others and their slots are
    not touched.

    Args:
        optimizer: a built `keras.optimizers.Optimizer`.
        optimizer_values: values of `optimizer.variables`, in order.
        grads: one gradient per variable of `variables`.
        variables: the model's trainable variables now.
        values: their current values, in order.

    Returns:
        `(new_values, new_optimizer_values)`.

    Example:

    ```python
    values, slots = apply_to_trainable(model.optimizer, slots, grads,
                                       model.trainable_variables, values)
    ```
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return _apply_loss_scaled(optimizer, optimizer_values, grads,
                                  variables, values)
    mapping = (list(zip(variables, values))
               + list(zip(optimizer.variables, optimizer_values)))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        optimizer.apply(grads, variables)

    def current(variable, value):
        new = scope.get_current_value(variable)
        return value if new is None else new

    return ([current(v, x) for v, x in zip(variables, values)],
            [current(v, x) for v, x in zip(optimizer.variables,
                                           optimizer_values)])


def _apply_loss_scaled(optimizer, optimizer_values, grads, variables,
                       values):
    """`apply_to_trainable` for a `LossScaleOptimizer` (mixed precision).

    Its own `apply` branches with `ops.cond` on whether the gradients are
    finite and assigns its scale inside the branches, which a traced JAX
    step cannot hold (the assigned values leak out of the branch). The same
    rule without branches: the inner optimizer's update of the unscaled
    gradients is computed and kept where every gradient is finite (the
    scale doubles after `dynamic_growth_steps` finite steps in a row),
    else the variables and the inner optimizer's state keep their values
    and the scale halves.
    """
    from keras import ops

    inner = optimizer.inner_optimizer
    current = {id(v): value for v, value in zip(optimizer.variables,
                                                optimizer_values)}
    scale = current[id(optimizer.dynamic_scale)]
    counter = current[id(optimizer.step_counter)]
    finite = optimizer.check_finite(grads)
    unscaled = [None if g is None else ops.divide(g, scale) for g in grads]
    inner_values = [current[id(v)] for v in inner.variables]
    stepped, inner_stepped = apply_to_trainable(inner, inner_values,
                                                unscaled, variables, values)
    new = {id(v): ops.where(finite, after, before) for v, before, after in
           zip(inner.variables, inner_values, inner_stepped)}
    grow = ops.equal(counter, optimizer.dynamic_growth_steps - 1)
    new[id(optimizer.step_counter)] = ops.where(
        finite, ops.where(grow, ops.zeros_like(counter), counter + 1),
        ops.zeros_like(counter))
    new[id(optimizer.dynamic_scale)] = ops.where(
        finite, ops.where(grow, scale * 2.0, scale), scale * 0.5)
    return ([ops.where(finite, after, before)
             for before, after in zip(values, stepped)],
            [new.get(id(v), value) for v, value in zip(optimizer.variables,
                                                       optimizer_values)])
