"""Exact per-sample squared gradients on the JAX backend (`jax.vmap`).

The TensorFlow route (`per_sample.py`) rewrites each layer's gradient to
get per-sample values from one backward pass. On JAX the same quantity is
`jax.vmap` of `jax.grad` over the samples of a batch: each sample's
gradient of `log softmax(f_ν(x_i))[y_i]`, squared and summed over the
batch, with the model in inference mode (Zniber et al., eq. 3).
"""

import weakref

import keras

from keras_eexit import chain

_FUNCTIONS = weakref.WeakKeyDictionary()


def squared_gradient_sums(model, exit, variables, x, y, values=None,
                          per_batch=False):
    """`Σ_i (∂ log ŷ_ν(y_i | x_i) / ∂θ)²` for each variable θ, on JAX.

    Args:
        model: a `MultiExitModel`.
        exit: the exit NUMBER ν (1..K).
        variables: the variables to differentiate (a list).
        x: a batch of inputs (arrays, or a structure of arrays).
        y: `(batch,)` integer class labels.
        values: `{id(variable): value}` for the model's variables (a
            stateless step's values); default: the variables' own.

    Returns:
        A list of arrays shaped like `variables`.

    Example:

    ```python
    sums = squared_gradient_sums(model, 1, fisher_variables(model, 1),
                                 x, y)
    ```
    """
    all_variables = list(model.trainable_variables) + list(
        model.non_trainable_variables)
    values = values or {}
    current = [values[id(v)] if id(v) in values else v.value
               for v in all_variables]
    where = {id(v): i for i, v in enumerate(all_variables)}
    positions = tuple(where[id(v)] for v in variables)
    function = _function(model, exit, positions, all_variables, per_batch)
    return function(current, x, y)


def _function(model, exit, positions, all_variables, per_batch):
    """One jitted function per (model, exit, variables, their order)."""
    import jax
    import jax.numpy as jnp

    functions = _FUNCTIONS.setdefault(model, {})
    key = (exit, positions, tuple(id(v) for v in all_variables), per_batch)
    if key in functions:
        return functions[key]

    def log_likelihood(targets, others, x_i, y_i):
        current = list(others)
        for position, value in zip(positions, targets):
            current[position] = value
        mapping = list(zip(all_variables, current))
        batch = keras.tree.map_structure(lambda t: t[None], x_i)
        with keras.StatelessScope(state_mapping=mapping):
            logits = chain.run_to_exit(model, batch, exit - 1, False)
        log_p = jax.nn.log_softmax(logits.astype("float32"), axis=-1)
        return log_p[0, y_i]

    gradient = jax.grad(log_likelihood)

    def batch_log_likelihood(targets, others, x, y):
        return jnp.sum(jax.vmap(log_likelihood, in_axes=(None, None, 0, 0))(
            targets, others, x, y))

    @jax.jit
    def sums(current, x, y):
        targets = [current[p] for p in positions]
        if per_batch:
            total = jax.grad(batch_log_likelihood)(targets, current, x, y)
            return [jnp.square(g) / y.shape[0] for g in total]
        per_sample = jax.vmap(gradient, in_axes=(None, None, 0, 0))(
            targets, current, x, y)
        return [jnp.sum(jnp.square(g), axis=0) for g in per_sample]

    functions[key] = sums
    return sums
