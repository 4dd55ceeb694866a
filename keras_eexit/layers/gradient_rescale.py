"""Identity in the forward pass, scaled gradient in the backward pass."""

import keras

from keras_eexit.utils.lazy_import import tf


def rescale_gradient(x, scale):
    """Returns `x`; the gradient flowing back through it is scaled by `scale`.

    TensorFlow's `tf.custom_gradient`, JAX's `jax.custom_vjp`, or a
    `torch.autograd.Function` (`keras_eexit.torch_training`).
    Used by gradient equilibrium (Li et al., "Improved Techniques for
    Training Adaptive Deep Networks", ICCV 2019).

    Args:
        x: a tensor.
        scale: a Python float.

    Returns:
        A tensor equal to `x`.

    Example:

    >>> with tf.GradientTape() as tape:
    ...     v = tf.constant(2.0); tape.watch(v)
    ...     y = rescale_gradient(v, 0.5) * 3.0
    >>> float(tape.gradient(y, v))
    1.5
    """

    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_rescale(x, float(scale))
    if backend == "torch":
        from keras_eexit import torch_training

        return torch_training.rescale_gradient(x, scale)

    @tf.custom_gradient
    def _identity(t):
        def grad(upstream):
            return upstream * tf.cast(scale, upstream.dtype)

        return tf.identity(t), grad

    return _identity(x)


def _jax_rescale(x, scale):
    """`rescale_gradient` on JAX: a `jax.custom_vjp` identity."""
    import jax

    @jax.custom_vjp
    def identity(t):
        return t

    def forward(t):
        return t, None

    def backward(_, upstream):
        return (upstream * jax.numpy.asarray(scale, upstream.dtype),)

    identity.defvjp(forward, backward)
    return identity(x)
