"""Sums of squared per-sample gradients, in one backward pass where possible.

TensorFlow's vectoriser (`tf.vectorized_map`) has no batched rule for the
gradient of a convolution kernel and falls back to a loop over samples. For
the kernels of convolutions and dense layers we therefore compute
`Σ_i (∂ℓ_i/∂W)²` in ONE backward pass over the batch: while the Fisher
function is traced, `keras.ops.conv` and `keras.ops.matmul` are wrapped for
those kernels by an op whose "gradient" for the kernel is the sum of the
squared per-sample gradients, built from each sample's layer input and
output gradient (`patches ⊗ δ` for convolutions, `x ⊗ δ` for dense layers).
The backward pass is exact per sample because, in inference mode, samples
do not interact. Every other variable (biases, BatchNorm scales, depthwise
kernels, ...) goes through `tf.vectorized_map`, which vectorises them fully.

A kernel used by two layer calls (a shared layer) would need cross terms
between its uses; such a variable falls back to the vectorised path.
"""

import contextlib

import tensorflow as tf
from keras.src import ops as keras_ops  # what Keras layers call


class _Interceptor:
    """Wraps `keras.ops.conv` / `keras.ops.matmul` for chosen kernels."""

    def __init__(self, kernels):
        self.kernels = {id(v): v for v in kernels}
        self.uses = {}
        self.aliases = {}  # id(cast/reshaped tensor) -> id(variable)

    def target(self, value):
        """The id of the variable `value` is (or aliases), else None."""
        key = self.aliases.get(id(value), id(value))
        return key if key in self.kernels else None

    def squared(self, value):
        """Records a use of `value`'s variable; returns whether to intercept."""
        key = self.target(value)
        if key is None:
            return False
        self.uses[key] = self.uses.get(key, 0) + 1
        return True

    @contextlib.contextmanager
    def active(self):
        names = ("conv", "matmul", "add", "batch_normalization", "cast",
                 "reshape")
        originals = {name: getattr(keras_ops, name) for name in names}
        original_conv = originals["conv"]
        original_matmul = originals["matmul"]
        interceptor = self

        def alias(name):
            def wrapped(x, *args, **kwargs):
                result = originals[name](x, *args, **kwargs)
                key = interceptor.target(x)
                if key is not None:
                    interceptor.aliases[id(result)] = key
                return result

            return wrapped

        def add(x1, x2):
            for x, b in ((x1, x2), (x2, x1)):
                if interceptor.target(b) is not None and len(
                    getattr(x, "shape", ())
                ) >= 2 and interceptor.squared(b):
                    return _add_bias_with_squared_grad(x, b)
            return originals["add"](x1, x2)

        def batch_normalization(x, mean, variance, axis, offset=None,
                                scale=None, epsilon=1e-3):
            last = axis in (-1, len(x.shape) - 1)
            if last and offset is not None and scale is not None and (
                interceptor.target(scale) is not None
                and interceptor.target(offset) is not None
            ):
                interceptor.squared(scale)
                interceptor.squared(offset)
                return _batch_norm_with_squared_grad(
                    x, mean, variance, offset, scale, epsilon)
            return originals["batch_normalization"](
                x, mean, variance, axis, offset=offset, scale=scale,
                epsilon=epsilon)

        def conv(inputs, kernel, strides=1, padding="valid",
                 data_format=None, dilation_rate=1):
            rank = len(inputs.shape)
            if data_format in (None, "channels_last") and rank in (3, 4) and (
                interceptor.squared(kernel)
            ):
                return _conv_with_squared_grad(
                    original_conv, inputs, kernel, strides, padding,
                    data_format, dilation_rate)
            return original_conv(inputs, kernel, strides, padding,
                                 data_format, dilation_rate)

        def matmul(x1, x2):
            if len(getattr(x2, "shape", ())) == 2 and interceptor.squared(x2):
                return _matmul_with_squared_grad(original_matmul, x1, x2)
            return original_matmul(x1, x2)

        replacements = {"conv": conv, "matmul": matmul, "add": add,
                        "batch_normalization": batch_normalization,
                        "cast": alias("cast"), "reshape": alias("reshape")}
        for name, function in replacements.items():
            setattr(keras_ops, name, function)
        try:
            yield self
        finally:
            for name, function in originals.items():
                setattr(keras_ops, name, function)


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _conv_with_squared_grad(original, inputs, kernel, strides, padding,
                            data_format, dilation_rate):
    spatial = len(inputs.shape) - 2
    strides = _tuple(strides, spatial)
    dilation = _tuple(dilation_rate, spatial)

    @tf.custom_gradient
    def op(x, k):
        z = original(x, k, strides, padding, data_format, dilation_rate)

        def grad(dz):
            with tf.GradientTape() as tape:
                tape.watch(x)
                again = original(x, k, strides, padding, data_format,
                                 dilation_rate)
            dx = tape.gradient(again, x, output_gradients=dz)
            x2d, dz2d = x, dz
            size, step, rate = list(k.shape[:spatial]), strides, dilation
            if spatial == 1:
                x2d, dz2d = x[:, None], dz[:, None]
                size, step, rate = [1] + size, (1,) + step, (1,) + rate
            patches = tf.image.extract_patches(
                x2d, sizes=[1, *size, 1], strides=[1, *step, 1],
                rates=[1, *rate, 1], padding=padding.upper())
            per_sample = tf.einsum("bhwk,bhwo->bko", patches, dz2d)
            squared = tf.reduce_sum(tf.square(per_sample), axis=0)
            return dx, tf.reshape(squared, tf.shape(k))

        return z, grad

    return op(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))


def _matmul_with_squared_grad(original, x1, x2):
    @tf.custom_gradient
    def op(x, w):
        z = original(x, w)

        def grad(dz):
            dx = tf.matmul(dz, w, transpose_b=True)
            if len(x.shape) == 2:
                squared = tf.matmul(tf.square(x), tf.square(dz),
                                    transpose_a=True)
            else:
                batch = tf.shape(x)[0]
                xs = tf.reshape(x, (batch, -1, x.shape[-1]))
                ds = tf.reshape(dz, (batch, -1, dz.shape[-1]))
                per_sample = tf.einsum("bti,bto->bio", xs, ds)
                squared = tf.reduce_sum(tf.square(per_sample), axis=0)
            return dx, squared

        return z, grad

    return op(tf.convert_to_tensor(x1), tf.convert_to_tensor(x2))


def _channel_sums(delta):
    """Per-sample sums over every axis but the batch and the last."""
    if len(delta.shape) == 2:
        return delta
    return tf.reduce_sum(delta, axis=list(range(1, len(delta.shape) - 1)))


def _add_bias_with_squared_grad(x, bias):
    b = tf.convert_to_tensor(bias)

    @tf.custom_gradient
    def op(t, v):
        def grad(dz):
            squared = tf.reduce_sum(tf.square(_channel_sums(dz)), axis=0)
            return dz, tf.reshape(squared, tf.shape(v))

        return t + v, grad

    return op(tf.convert_to_tensor(x), b)


def _batch_norm_with_squared_grad(x, mean, variance, offset, scale,
                                  epsilon):
    @tf.custom_gradient
    def op(t, beta, gamma):
        inv = tf.math.rsqrt(variance + epsilon)
        normalised = (t - mean) * inv

        def grad(dz):
            d_gamma = tf.reduce_sum(
                tf.square(_channel_sums(dz * normalised)), axis=0)
            d_beta = tf.reduce_sum(tf.square(_channel_sums(dz)), axis=0)
            return dz * gamma * inv, d_beta, d_gamma

        return normalised * gamma + beta, grad

    return op(tf.convert_to_tensor(x), tf.convert_to_tensor(offset),
              tf.convert_to_tensor(scale))


def squared_gradient_sums(forward, variables, x, y):
    """`Σ_i (∂ log p(y_i|x_i) / ∂v)²` for each variable, per batch.

    Args:
        forward: `forward(x) -> logits`, in inference mode.
        variables: Keras variables to differentiate.
        x: a batch of inputs.
        y: int32 labels `(batch,)`.

    Returns:
        A list of tensors shaped like `variables`.
    """
    targets = [getattr(v, "value", v) for v in variables]

    def log_likelihood(logits, labels):
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        return tf.gather(log_p, labels[:, None], batch_dims=1)[:, 0]

    interceptor = _Interceptor(variables)
    with interceptor.active():
        with tf.GradientTape() as tape:
            tape.watch(targets)
            total = tf.reduce_sum(log_likelihood(forward(x), y))
    fast = {key for key, count in interceptor.uses.items() if count == 1}
    results = [None] * len(variables)
    kernel_slots = [i for i, v in enumerate(variables) if id(v) in fast]
    if kernel_slots:
        grads = tape.gradient(total, [targets[i] for i in kernel_slots])
        for i, g in zip(kernel_slots, grads):
            results[i] = g
    rest = [i for i, v in enumerate(variables) if id(v) not in fast]
    if rest:
        watched = [targets[i] for i in rest]

        def one(sample):
            xi, yi = sample
            with tf.GradientTape() as inner:
                inner.watch(watched)
                value = log_likelihood(forward(tf.expand_dims(xi, 0)),
                                       tf.expand_dims(yi, 0))[0]
            return inner.gradient(value, watched)

        grads = tf.vectorized_map(one, (x, y))
        for i, g in zip(rest, grads):
            results[i] = tf.reduce_sum(tf.square(g), axis=0)
    return [tf.zeros(v.shape) if r is None else r
            for v, r in zip(variables, results)]
