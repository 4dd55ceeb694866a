"""Identity in the forward pass, scaled gradient in the backward pass."""

from keras_eexit.utils.lazy_import import tf


def rescale_gradient(x, scale):
    """Returns `x`; the gradient flowing back through it is scaled by `scale`.

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

    @tf.custom_gradient
    def _identity(t):
        def grad(upstream):
            return upstream * tf.cast(scale, upstream.dtype)

        return tf.identity(t), grad

    return _identity(x)
