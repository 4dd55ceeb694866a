"""Gradients of a function of tensors, on the running Keras backend.

Keras 3 has no backend-independent gradient: each backend differentiates
its own way. The analyses that need a gradient outside `fit` (gradient
dominance) write the function once with `keras.ops` and
`Layer.stateless_call`, and this module differentiates it:

* TensorFlow: a persistent `tf.GradientTape` (one forward pass, one
  `tape.gradient` per loss, unconnected gradients as zeros);
* JAX: `jax.vjp` of the function on the values (one forward pass, one
  pullback per loss), compiled as one `jax.jit` call (what the function
  closes over is a constant of that program: one compilation per call);
* PyTorch: `torch.autograd.grad` on leaf copies of the values (one
  forward pass, the graph kept for every loss);
* any other backend is refused in one line.

`differentiable_gradient` is the other primitive: the gradient of one
scalar as a differentiable function of the values (L2W's look-ahead,
whose meta-gradient is second order).

This is the only place where the analyses and L2W name a backend's
autodiff.

Example:

>>> import keras
>>> losses, grads = value_and_grad(
...     lambda v: [keras.ops.sum(v[0] ** 2), keras.ops.sum(3.0 * v[0])],
...     [keras.ops.ones((2,))])
>>> [float(value) for value in losses]
[2.0, 6.0]
>>> [g.tolist() for g in grads[0] + grads[1]]
[[2.0, 2.0], [3.0, 3.0]]
"""

import keras
import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")
"""The backends `value_and_grad` differentiates on."""


def value_and_grad(function, values):
    """Several losses of `values` and the gradient of each.

    Args:
        function: a function of a list of tensors (`values`) returning a
            list of scalar tensors (the losses), written with `keras.ops`
            (and `Layer.stateless_call` for a model's forward pass).
        values: the tensors to differentiate with respect to (the
            backend's arrays, e.g. `[v.value for v in variables]`).

    Returns:
        `(losses, gradients)`: a NumPy array `(K,)` of the K losses and,
        per loss, a list of NumPy arrays, the gradient with respect to
        each of `values` (zeros where the loss does not depend on it).

    Raises:
        ValueError: on a backend other than `BACKENDS`.

    Example:

    ```python
    def losses(values):
        out, _ = model.stateless_call(values, non_trainable, x)
        return [keras.ops.mean(loss(y, out[name])) for name in names]

    per_loss, grads = value_and_grad(losses, [v.value for v in trainable])
    ```
    """
    backend = keras.backend.backend()
    values = list(values)
    if backend == "tensorflow":
        return _tensorflow(function, values)
    if backend == "jax":
        return _jax(function, values)
    if backend == "torch":
        return _torch(function, values)
    raise ValueError(
        f"Invalid Keras backend for gradients. Expected one of {BACKENDS}. "
        f"Received: backend={backend}")


def differentiable_gradient(function, values):
    """The gradient of a scalar function, itself differentiable.

    For a second-order gradient (L2W's meta-gradient differentiates
    through a look-ahead step that uses this gradient): the result keeps
    its dependence on `values` and on whatever `function` closes over.

    * TensorFlow: a `tf.GradientTape` (an enclosing tape records it);
    * JAX: `jax.grad` (inside an enclosing `jax.grad`/`jax.vjp`);
    * PyTorch: `torch.autograd.grad(..., create_graph=True)`; `values`
      must require a gradient (a trainable variable's value does).

    Args:
        function: a function of a list of tensors returning a scalar.
        values: the tensors to differentiate with respect to.

    Returns:
        A list parallel to `values`: each gradient, or `None` where the
        scalar does not depend on it (TensorFlow, PyTorch; JAX gives
        zeros, as its trainer's own gradients).

    Raises:
        ValueError: on a backend other than `BACKENDS`.

    Example:

    ```python
    grads = differentiable_gradient(
        lambda theta: keras.ops.sum(theta[0] ** 3), [x])  # 3 x²
    ```
    """
    backend = keras.backend.backend()
    values = list(values)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(values)
            value = function(values)
        return list(tape.gradient(value, values))
    if backend == "jax":
        import jax

        return list(jax.grad(function)(values))
    if backend == "torch":
        import torch

        return list(torch.autograd.grad(function(values), values,
                                        create_graph=True,
                                        allow_unused=True))
    raise ValueError(
        f"Invalid Keras backend for gradients. Expected one of {BACKENDS}. "
        f"Received: backend={backend}")


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def _tensorflow(function, values):
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(values)
        losses = list(function(values))
    grads = [[_numpy(g) for g in tape.gradient(
        loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)]
        for loss in losses]
    del tape
    return np.array([_numpy(loss) for loss in losses]), grads


def _jax(function, values):
    import jax
    import jax.numpy as jnp

    def stacked(values):
        return jnp.stack([jnp.asarray(loss) for loss in function(values)])

    @jax.jit
    def losses_and_grads(values):
        losses, pullback = jax.vjp(stacked, values)
        basis = jnp.eye(losses.shape[0], dtype=losses.dtype)
        return losses, [pullback(row)[0] for row in basis]

    losses, grads = losses_and_grads(values)
    return _numpy(losses), [[_numpy(g) for g in per_loss]
                            for per_loss in grads]


def _torch(function, values):
    import torch

    leaves = [v.detach().clone().requires_grad_(True) for v in values]
    losses = list(function(leaves))
    grads = []
    for loss in losses:
        pieces = torch.autograd.grad(loss, leaves, retain_graph=True,
                                     allow_unused=True)
        grads.append([_numpy(torch.zeros_like(leaf) if g is None else g)
                      for leaf, g in zip(leaves, pieces)])
    return np.array([_numpy(loss.detach()) for loss in losses]), grads
