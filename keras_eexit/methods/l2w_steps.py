"""L2W's train step on JAX and PyTorch (TensorFlow's is `L2W.run`).

The procedure is the same on every backend (see `L2W`): the batch cut in
two halves that take turns, a bi-level step on the network before each
model update (every `meta_interval` steps), and the model update with
the network's weights. What differs is how a step runs:

* PyTorch runs it eagerly, as TensorFlow's traced step reads: the
  meta-gradient is `torch.autograd` through the look-ahead
  (`L2W.meta_gradients`), the network's Adam applies it under
  `torch.no_grad`, the model update is the train step's own
  (`torch_training.apply_gradients` with L2W's objective);
* JAX is stateless: the trainer hands the model's values in and takes
  new ones back. The step runs untraced (`eager_on_jax`: it writes the
  network, its optimizer and L2W's counters, which are outside the
  trainer's state) around two compiled functions, the bi-level step
  (`jax.value_and_grad` over the network's values, `jax.grad` inside for
  the look-ahead) and the model update (`jax_step.train_step` with the
  network's values as arguments). They are compiled once per trainable
  set, objective and train-step plan (`_compiled`).
"""

import weakref

import keras

from keras_eexit.models.train_step import Batch
from keras_eexit.utils.variables import to_numpy


def halves(batch):
    """The two halves of a batch `(x, y, sample_weight)`, as L2W cuts it.

    The first half holds `ceil(n / 2)` samples; a single-sample batch
    serves as both halves.

    Args:
        batch: `(x, y, sample_weight)`, `y` by exit name.

    Returns:
        `(part_a, part_b)`, each `(x, y, sample_weight)`.
    """
    x, y, sample_weight = batch
    size = int(keras.ops.shape(keras.tree.flatten(x)[0])[0])
    first = (size + 1) // 2
    second = first if size >= 2 else 0

    def part(start, stop):
        def cut(t):
            return None if t is None else t[start:stop]
        return (keras.tree.map_structure(cut, x),
                keras.tree.map_structure(cut, y), cut(sample_weight))

    return part(0, first), part(second, size)


def _meta_now(l2w):
    """Whether this step runs the bi-level step; counts the step."""
    due = int(to_numpy(l2w.steps)) % l2w.meta_interval == 0
    l2w.steps.assign(l2w.steps + 1)
    return due


def _with_meta_loss(l2w, logs):
    logs = dict(logs)
    logs["l2w_meta_loss"] = l2w.meta_loss_tracker.result()
    return logs


def _alternate(l2w, batch, meta, update):
    """The halves' turns: meta on A, update A, meta on B, update B (or,
    without `exchange`, one meta step and an update on the whole batch).
    Returns the last update's logs."""
    due = _meta_now(l2w)
    part_a, part_b = halves(batch)
    if due:
        meta(part_a, part_b[:2])
    if not l2w.exchange:
        return update(Batch(*batch))
    update(Batch(*part_a))
    if due:
        meta(part_b, part_a[:2])
    return update(Batch(*part_b))


def torch_run(l2w, model, batch, update):
    """L2W's step on PyTorch (eager).

    Args:
        l2w: the attached `L2W`.
        model: the `MultiExitModel`.
        batch: the step's `Batch`.
        update: one model update on a `Batch` (with L2W's weights).

    Returns:
        The last update's logs, with `l2w_meta_loss`.
    """
    import torch

    variables = l2w.network.trainable_variables

    def meta(train, held_out):
        grads, loss = l2w.meta_gradients(model, train, held_out)
        with torch.no_grad():
            l2w.optimizer.apply(grads, variables)
        l2w.meta_loss_tracker.update_state(loss)

    return _with_meta_loss(l2w, _alternate(l2w, tuple(batch), meta, update))


def jax_meta_gradients(l2w, model, train, meta, alpha=None, values=None,
                       optimizer_values=None):
    """`(∇φ meta loss, meta loss)` on JAX: `jax.value_and_grad` over the
    network's values.

    Args:
        l2w: the attached `L2W`.
        model: the `MultiExitModel`.
        train, meta, alpha: as `L2W.meta_loss`.
        values: `(trainable, non_trainable)` values of the model (default:
            the variables').
        optimizer_values: values of `model.optimizer.variables` (default:
            the variables').

    Returns:
        `(gradients, loss)`.
    """
    import jax

    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = l2w.network.trainable_variables
    optimizer = model.optimizer
    if optimizer_values is None:
        optimizer_values = [v.value for v in optimizer.variables]

    if values is None:
        values = ([v.value for v in model.trainable_variables],
                  [v.value for v in model.non_trainable_variables])
    # The objective reads model variables outside the forward pass (the
    # regime's exit weights): they read the given values too.
    model_mapping = (list(zip(model.trainable_variables, values[0]))
                     + list(zip(model.non_trainable_variables, values[1])))

    def loss_of(phi):
        mapping = (list(zip(variables, phi)) + model_mapping
                   + list(zip(optimizer.variables, optimizer_values)))
        with keras.StatelessScope(state_mapping=mapping):
            return l2w.meta_loss(model, train, meta, alpha, values)

    loss, grads = jax.value_and_grad(loss_of)([v.value for v in variables])
    return list(grads), loss


_COMPILED = weakref.WeakKeyDictionary()


def _compiled(l2w, model):
    """The compiled bi-level step and model update for the model's current
    trainable set, objective and train-step plan (`jax_step.step_key`)."""
    import jax

    from keras_eexit.models import jax_step
    from keras_eexit.models.jax_step import apply_to_trainable

    key = jax_step.step_key(model)
    cached = _COMPILED.get(l2w)
    if cached is not None and cached[0] == key:
        return cached[1]
    # Weak references: the cache must not keep the model or L2W alive.
    owner, method = weakref.ref(model), weakref.ref(l2w)

    def meta_step(phi, slots, state, train, held_out):
        l2w, model = method(), owner()
        network = l2w.network.trainable_variables
        trainable, non_trainable, optimizer_values, _ = state
        with keras.StatelessScope(state_mapping=list(zip(network, phi))):
            grads, loss = jax_meta_gradients(
                l2w, model, train, held_out,
                values=(trainable, non_trainable),
                optimizer_values=optimizer_values)
        phi, slots = apply_to_trainable(l2w.optimizer, slots, grads,
                                        network, phi)
        return phi, slots, loss

    def update(phi, state, batch):
        network = method().network.trainable_variables
        return jax_step.train_step(owner(), state, tuple(batch),
                                   extra_state=list(zip(network, phi)))

    _COMPILED[l2w] = (key, (jax.jit(meta_step), jax.jit(update)))
    return _COMPILED[l2w][1]


def jax_run(l2w, model, state, batch):
    """L2W's stateless step on JAX.

    Args:
        l2w: the attached `L2W`.
        model: the `MultiExitModel`.
        state: the trainer's `(trainable, non_trainable, optimizer,
            metrics)` values.
        batch: the step's `Batch`.

    Returns:
        `(logs, new_state)`: the last update's logs with
        `l2w_meta_loss`, and the state after the step's updates.
    """
    meta_step, update_step = _compiled(l2w, model)
    network = l2w.network.trainable_variables
    state = tuple(state)

    def meta(train, held_out):
        phi, slots, loss = meta_step(
            [v.value for v in network],
            [v.value for v in l2w.optimizer.variables], state, train,
            held_out)
        for variable, value in zip(network, phi):
            variable.assign(value)
        for variable, value in zip(l2w.optimizer.variables, slots):
            variable.assign(value)
        l2w.meta_loss_tracker.update_state(loss)

    def update(part):
        nonlocal state
        logs, state = update_step([v.value for v in network], state,
                                  tuple(part))
        return logs

    logs = _alternate(l2w, tuple(batch), meta, update)
    return _with_meta_loss(l2w, logs), state
