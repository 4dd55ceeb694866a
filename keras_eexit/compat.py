"""Every private Keras / TensorFlow name keras-eexit relies on, in one place.

Keras 3 and TensorFlow have no public route for a few things this library
needs. Each is wrapped here, and `tests/test_compat.py` has a canary test
per wrapper that fails loudly, naming the private symbol, when an upgrade
renames or removes it (instead of a silent change of behaviour elsewhere:
a renamed trainer hook would silently break multi-worker `fit`, say).
Checked against Keras 3.15 and TensorFlow 2.21.

No module outside this one may use a name starting with `_` from Keras or
TensorFlow, nor import `keras.src`.
"""

import keras
from keras.src import ops as _keras_src_ops
from keras.src.losses import loss as _keras_loss_module


# ------------------------------------------------------------- layers
def flatten_layers(layer):
    """`layer` and every layer nested in it, recursively.

    Keras has no public recursive iterator (`Model.layers` is one level).

    Args:
        layer: a Keras layer or model.

    Returns:
        A list of layers, `layer` first.
    """
    return list(layer._flatten_layers(include_self=True, recursive=True))


def is_functional(model):
    """Whether `model` is a functional (graph) Keras model."""
    return hasattr(model, "_nodes_by_depth")


def nodes_by_depth(model):
    """The nodes of a functional model's graph, keyed by depth.

    Args:
        model: a functional `keras.Model` (or a built `Sequential`).

    Returns:
        A dict `depth -> list of keras.src Node`, depth 0 at the outputs.
    """
    return model._nodes_by_depth


def trainable_parameters(layer):
    """The variables `layer` trains when trainable, frozen or not.

    `layer.trainable_weights` is empty while a layer is frozen, and freezing
    sets `variable.trainable = False`; the list of variables a layer created
    as trainable (gamma but not BatchNorm's moving mean, say) is kept in a
    private attribute of every sub-layer.

    Args:
        layer: a Keras layer or model.

    Returns:
        A list of variables without duplicates, in creation order.
    """
    seen, result = set(), []
    for sub in flatten_layers(layer):
        for v in sub._trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                result.append(v)
    return result


# ------------------------------------------------------------- training
def model_strategy(model):
    """The `tf.distribute` strategy `model` was created under, or `None`
    (always `None` on a backend other than TensorFlow)."""
    return getattr(model, "_distribute_strategy", None)


def keras_ops_modules():
    """The modules whose op functions Keras layers call.

    Layers call `keras.src.ops.<op>`; user code calls `keras.ops.<op>`. The
    exact per-sample Fisher (`keras_eexit.fisher.per_sample`) patches both
    while it traces.

    Returns:
        A tuple of module objects.
    """
    return (_keras_src_ops, keras.ops)


def autocast_like(variable, value):
    """`value` cast as a layer reads `variable` now (mixed precision).

    Inside a layer's call under a mixed policy, Keras variables read as the
    compute dtype (`Variable._maybe_autocast`); outside, unchanged.

    Args:
        variable: a `keras.Variable`.
        value: a tensor standing in for the variable's value.

    Returns:
        The tensor the layer would see.
    """
    autocast = getattr(variable, "_maybe_autocast", None)
    return value if autocast is None else autocast(value)


def unscale_loss_for_distribution(loss):
    """Undoes Keras' division of a loss by the replica count (for logging)."""
    return _keras_loss_module.unscale_loss_for_distribution(loss)


def update_loss_tracker(model, loss, batch_size):
    """Adds a step's loss to the tracker behind Keras' logged `"loss"`.

    For train steps written by hand (the feature cache's): Keras' own
    `train_step` updates this tracker itself.

    Args:
        model: a compiled `keras.Model`.
        loss: the step's (replica-scaled) loss.
        batch_size: the number of samples of the step.
    """
    model._loss_tracker.update_state(
        unscale_loss_for_distribution(loss), sample_weight=batch_size)


def jax_update_metrics(model, metrics_values, loss, x, y, y_pred,
                       sample_weight):
    """Keras' JAX trainer's stateless metric update (loss tracker + compiled
    metrics) on `metrics_values`; returns `(logs, new_metrics_values)`.

    `JAXTrainer._update_metrics_variables` is the one route to the loss
    tracker of a stateless step.
    """
    return model._update_metrics_variables(
        metrics_values, loss, x, y, y_pred, sample_weight)


class _StateOwners:
    """The variables a JAX trainer state was read from, by part."""

    def __init__(self, parts):
        self.parts = parts


class TrainerHooks:
    """Overrides of private `keras.Model` trainer hooks, for a subclass.

    Under a `tf.distribute` strategy Keras 3.15 builds the model, metrics
    and optimizer before training from one batch
    (`TensorFlowTrainer._maybe_symbolic_build`). A subclass that maps its
    labels before Keras sees them (as `MultiExitModel` gives every exit the
    same label) implements `symbolic_build_batch(batch)`, which this
    override applies to that batch. The override also takes the batch from
    the first local replica only, avoiding the collective Keras 3.15 runs
    on the whole batch under `MultiWorkerMirroredStrategy`, which fails
    with several workers (keras-team/keras#20585).

    Mix in before `keras.Model`:
    `class MultiExitModel(TrainerHooks, keras.Model)`.
    """

    def symbolic_build_batch(self, batch):
        """Maps the build batch (default: unchanged)."""
        return batch

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        import tensorflow as tf

        if model_strategy(self) is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        strategy = self.distribute_strategy
        if iterator is not None:
            # Only shapes and dtypes are read from this batch: this
            # worker's first replica stands for all, no collective is needed.
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    next(it),
                )
                break
        if data_batch is not None:
            data_batch = self.symbolic_build_batch(data_batch)
        return super()._maybe_symbolic_build(data_batch=data_batch)

    # JAX: the trainer reads the variables' values into a state
    # (`_get_jax_state`), runs steps on it and writes it back
    # (`jax_state_sync`) by position in `trainable_variables` etc. as they
    # are at write time. A regime changes trainable flags between the two,
    # and a step that fails leaves the read variables emptied. Here the
    # state is written back to the variables it was read from, and the
    # state just read is kept as the one to write back until a step
    # returns a new one.
    _JAX_STATE_PARTS = ("trainable_variables", "non_trainable_variables",
                        "optimizer_variables", "metrics_variables")

    def _get_jax_state(self, trainable_variables=False,
                       non_trainable_variables=False,
                       optimizer_variables=False, metrics_variables=False,
                       purge_model_variables=False):
        wanted = dict(zip(self._JAX_STATE_PARTS, (
            trainable_variables, non_trainable_variables,
            optimizer_variables, metrics_variables)))
        owners = {
            "trainable_variables": lambda: self.trainable_variables,
            "non_trainable_variables": lambda: self.non_trainable_variables,
            "optimizer_variables": lambda: self.optimizer.variables,
            "metrics_variables": lambda: self.metrics_variables,
        }
        read_from = {k: list(owners[k]()) for k, on in wanted.items() if on}
        state = super()._get_jax_state(
            purge_model_variables=purge_model_variables, **wanted)
        if purge_model_variables:
            # A plain object: Keras would track a dict of variables.
            self._eexit_state_owners = _StateOwners(read_from)
            self._jax_state = dict(zip(read_from, state))
            self._jax_state_synced = False
        return state

    def jax_state_sync(self):
        owners = getattr(self, "_eexit_state_owners", None)
        state = getattr(self, "_jax_state", None)
        if owners is None or not state or self._jax_state_synced:
            return super().jax_state_sync()
        for part, values in state.items():
            for variable, value in zip(owners.parts.get(part, ()),
                                       values or ()):
                variable.assign(value)
        self._jax_state_synced = True

    def _symbolic_build(self, iterator=None, data_batch=None):
        # The JAX trainer builds the model, metrics and optimizer from one
        # batch before every `fit`/`evaluate` (`Trainer._symbolic_build`);
        # TensorFlow reaches this only from `_maybe_symbolic_build` above,
        # with the batch already mapped.
        if keras.backend.backend() == "tensorflow":
            return super()._symbolic_build(iterator, data_batch)
        if data_batch is None and iterator is not None:
            for _, _, it in iterator:
                data_batch = (it[0] if isinstance(it, (list, tuple))
                              else next(it))
                break
        if data_batch is not None:
            data_batch = self.symbolic_build_batch(data_batch)
        return super()._symbolic_build(data_batch=data_batch)


# ----------------------------------------------------------- TF graphs
def in_multi_worker_mode(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` over workers."""
    import tensorflow as tf

    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def graph_function(graph, name):
    """The graph of the function `name` in `graph`'s library, or `None`.

    Looks in `graph`, then its outer graphs (a `tf.function`'s body calls
    functions defined in enclosing graphs).

    Args:
        graph: a `tf.Graph` / `FuncGraph`.
        name: a function name, as in a call op's `f` attribute.

    Returns:
        A `FuncGraph`, or `None`.
    """
    probe = graph
    while probe is not None:
        functions = getattr(probe, "_functions", {})
        if name in functions:
            return functions[name].graph
        probe = getattr(probe, "outer_graph", None)
    return None


def freeze_concrete_function(concrete):
    """A concrete function with its variables turned into constants.

    TensorFlow 2's only freezing entry point for a concrete function
    (`tf.compat.v1.graph_util`'s needs a v1 Session); used by the profiler
    cross-check of the FLOP counter.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete)


def silence_deprecation():
    """A context manager hiding TensorFlow's deprecation notices."""
    from tensorflow.python.util import deprecation

    return deprecation.silence()


# ---------------------------------------------------------- optimizers
def optimizer_slots(optimizer, variable):
    """The per-variable state of a built Keras SGD or Adam/AdamW optimizer.

    Keras keeps these in private lists indexed by a private variable index
    (`SGD.momentums` and `Adam._momentums` / `_velocities` /
    `_velocity_hats`, `BaseOptimizer._get_variable_index`).

    Args:
        optimizer: a built `keras.optimizers.SGD`, `Adam` or `AdamW`.
        variable: one of the variables the optimizer was built with.

    Returns:
        A dict: `{"momentum"}` for SGD with momentum (else empty);
        `{"momentum", "velocity"}` for Adam, plus `"velocity_hat"` with
        `amsgrad`.
    """
    index = optimizer._get_variable_index(variable)
    if isinstance(optimizer, keras.optimizers.Adam):
        slots = {"momentum": optimizer._momentums[index],
                 "velocity": optimizer._velocities[index]}
        if optimizer.amsgrad:
            slots["velocity_hat"] = optimizer._velocity_hats[index]
        return slots
    if optimizer.momentum:
        return {"momentum": optimizer.momentums[index]}
    return {}


def uses_weight_decay(optimizer, variable):
    """Whether `optimizer`'s decoupled weight decay applies to `variable`
    (`BaseOptimizer._use_weight_decay`: its exclusion list and pattern)."""
    return (optimizer.weight_decay is not None
            and bool(optimizer._use_weight_decay(variable)))
