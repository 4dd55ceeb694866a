"""Sums of squared per-sample gradients, in one backward pass where possible.

TensorFlow's vectoriser (`tf.vectorized_map`) has no batched rule for the
gradient of a convolution kernel and falls back to a loop over samples, and
on TF 2.21 (CPU, oneDNN) vectorising `keras.layers.MultiHeadAttention` with
an attention mask crashes the process. We therefore compute
`Σ_i (∂ℓ_i/∂v)²` for most variables in ONE backward pass over the batch:
while the Fisher function is traced, the Keras ops that layers call
(`keras.src.ops` and the public `keras.ops`) are wrapped for the protected
variables by ops whose "gradient" for the variable is the sum of the squared
per-sample gradients, built from each sample's layer input and output
gradient. The backward pass is exact per sample because, in inference mode,
samples do not interact. Intercepted uses:

* `conv` (1-D/2-D, channels last) and `matmul` kernels: `patches ⊗ δ`,
  `x ⊗ δ` per sample;
* two-operand `einsum` with one kernel operand and one batch operand
  (`EinsumDense`, e.g. `"abc,cde->abde"`): the forward equation is turned
  into a per-sample one that keeps the batch letter on the kernel gradient
  (`"abc,abde->acde"`), which is squared and summed over the batch;
* `add` of a bias whose shape (without leading 1s) equals the trailing axes
  of a batch tensor: 1-D biases, `(heads, head_dim)` biases of attention
  projections, `(1, tokens, dim)` position embeddings;
* `broadcast_to` of a parameter along a new or size-1 leading (batch) axis
  (keras-hub's `PositionEmbedding`, a ViT class token);
* `batch_normalization` and `layer_normalization` scales and offsets
  (normalised over the last axis);
* `take(table, ids, axis=0)` (`Embedding`): per-sample rows are summed over
  the unique (sample, token) pairs with segment sums, squared and
  scatter-added into the table, without a `(batch, vocab, dim)` tensor.

Casts, reshapes, slices, transposes and `convert_to_tensor` of a variable
are tracked as aliases of it (their gradients only move entries around, so
squaring commutes with them). An intercepted op reads a private,
separately watched copy of its variable; any use of the variable that is
not intercepted (Python `+` on a tensor, a strided slice, ...) therefore
shows up as a gradient on the variable itself, and such a variable - like
one used by two intercepted calls (a shared layer, which would need cross
terms) - goes through the per-sample path: `tf.vectorized_map` when the
model has no attention, else a `tf.while_loop` over samples for those
variables only.
"""

import contextlib

from keras_eexit.compat import autocast_like
from keras_eexit.compat import keras_ops_modules
from keras_eexit.utils.lazy_import import tf

# What Keras layers call (`keras.src.ops`) first, then the public
# `keras.ops` (`from keras import ops` in user code).
_NAMESPACES = keras_ops_modules()
_ALIAS_OPS = ("cast", "reshape", "convert_to_tensor", "expand_dims",
              "squeeze", "slice", "transpose")
_ANY_BATCH = object()


def _rank(value):
    shape = getattr(value, "shape", None)
    return None if shape is None else len(shape)


def _static(shape):
    return tuple(None if d is None else int(d) for d in shape)


def _trim_ones(shape):
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


class _Interceptor:
    """Wraps Keras ops for chosen variables (see the module docstring).

    Args:
        kernels: the variables to intercept.
        batch: static batch size of the forward's inputs (`None` if
            dynamic); by default any tensor's first axis counts as a batch.
        stand_ins: optional dict `id(variable) -> tensor`, the private
            copies intercepted ops read (default: the variable itself).
    """

    def __init__(self, kernels, batch=_ANY_BATCH, stand_ins=None):
        self.kernels = {id(v): v for v in kernels}
        self.batch = batch
        self.stand_ins = stand_ins or {}
        self.uses = {}
        self.aliases = {}  # id(tensor) -> (tensor, id(variable), replays)
        self.attention = False  # an einsum/attention without parameters

    def resolve(self, value):
        """`(id(variable), private tensor)` if `value` is one, else None."""
        if value is None:
            return None
        entry = self.aliases.get(id(value))
        if entry is not None and entry[0] is value:
            _, key, replays = entry
        elif id(value) in self.kernels and self.kernels[id(value)] is value:
            key, replays = id(value), ()
        else:
            return None
        private = self.read(key) if not replays else self.stand_in(key)
        for replay in replays:
            private = replay(private)
        return key, private

    def stand_in(self, key):
        private = self.stand_ins.get(key)
        if private is None:
            private = tf.convert_to_tensor(self.kernels[key])
        return private

    def read(self, key):
        """The private copy as a layer reads it now (mixed precision)."""
        private = self.stand_in(key)
        return autocast_like(self.kernels[key], private)

    def target(self, value):
        """The id of the variable `value` is (or aliases), else None."""
        found = self.resolve(value)
        return None if found is None else found[0]

    def use(self, key):
        self.uses[key] = self.uses.get(key, 0) + 1

    def batch_like(self, value):
        """Whether `value`'s first axis can be the batch of the forward."""
        rank = _rank(value)
        if not rank or self.resolve(value) is not None:
            return False
        if self.batch is _ANY_BATCH:
            return True
        first = value.shape[0]
        return first == self.batch if self.batch is not None else (
            first is None)

    @contextlib.contextmanager
    def active(self):
        names = _ALIAS_OPS + ("conv", "matmul", "add", "einsum",
                              "batch_normalization", "layer_normalization",
                              "take", "broadcast_to",
                              "dot_product_attention")
        saved = [(module, name, getattr(module, name))
                 for module in _NAMESPACES for name in names
                 if hasattr(module, name)]
        originals = {name: getattr(_NAMESPACES[0], name)
                     for name in names}
        replacements = {name: self._alias(originals[name])
                        for name in _ALIAS_OPS}
        for name in names[len(_ALIAS_OPS):]:
            replacements[name] = getattr(self, "_" + name)(originals[name])
        for module, name, _ in saved:
            setattr(module, name, replacements[name])
        try:
            yield self
        finally:
            for module, name, function in saved:
                setattr(module, name, function)

    # -- wrappers: each takes the original op, returns the replacement --

    def _alias(self, original):
        def wrapped(x, *args, **kwargs):
            result = original(x, *args, **kwargs)
            found = self.aliases.get(id(x))
            if found is not None and found[0] is x:
                key, replays = found[1], found[2]
            elif id(x) in self.kernels and self.kernels[id(x)] is x:
                key, replays = id(x), ()
                dtype = self.read(key).dtype
                if dtype != self.stand_in(key).dtype:  # autocast read
                    replays = (lambda t: tf.cast(t, dtype),)
            else:
                return result
            replay = (lambda t: original(t, *args, **kwargs),)
            self.aliases[id(result)] = (result, key, replays + replay)
            return result

        return wrapped

    def _add(self, original):
        def add(x1, x2):
            for x, b in ((x1, x2), (x2, x1)):
                found = self.resolve(b)
                if found is None or not self.batch_like(x):
                    continue
                bias = _trim_ones(_static(found[1].shape))
                rank = _rank(x)
                if len(found[1].shape) <= rank and len(bias) < rank and (
                    not bias or _static(x.shape[rank - len(bias):]) == bias
                ):
                    self.use(found[0])
                    return _add_bias_with_squared_grad(x, found[1], len(bias))
            return original(x1, x2)

        return add

    def _broadcast_to(self, original):
        def broadcast_to(x, shape):
            found = self.resolve(x)
            if found is not None:
                value = found[1]
                result = original(value, shape)
                rank, out = len(value.shape), _rank(result)
                first = result.shape[0]
                batch_ok = self.batch is _ANY_BATCH or (
                    first is None or first == self.batch)
                if out and batch_ok and (
                    out > rank or value.shape[0] == 1
                ):
                    self.use(found[0])
                    return _broadcast_with_squared_grad(
                        original, value, shape)
            return original(x, shape)

        return broadcast_to

    def _conv(self, original):
        def conv(inputs, kernel, strides=1, padding="valid",
                 data_format=None, dilation_rate=1):
            found = self.resolve(kernel)
            rank = len(inputs.shape)
            if found is not None and data_format in (
                None, "channels_last"
            ) and rank in (3, 4) and self.batch_like(inputs):
                self.use(found[0])
                return _conv_with_squared_grad(
                    original, inputs, found[1], strides, padding,
                    data_format, dilation_rate)
            return original(inputs, kernel, strides, padding,
                            data_format, dilation_rate)

        return conv

    def _matmul(self, original):
        def matmul(x1, x2):
            found = self.resolve(x2)
            if found is not None and len(found[1].shape) == 2 and (
                self.batch_like(x1)
            ):
                self.use(found[0])
                return _matmul_with_squared_grad(original, x1, found[1])
            if found is None and self.resolve(x1) is None:
                self.attention = True  # e.g. q·kᵀ written as a matmul
            return original(x1, x2)

        return matmul

    def _einsum(self, original):
        def einsum(subscripts, *operands, **kwargs):
            if len(operands) == 2 and not kwargs:
                found = [self.resolve(o) for o in operands]
                for k in (0, 1):
                    x = operands[1 - k]
                    if found[k] is None or found[1 - k] is not None or (
                        not self.batch_like(x)
                    ):
                        continue
                    equations = _einsum_equations(subscripts, k)
                    if equations is None:
                        continue
                    self.use(found[k][0])
                    return _einsum_with_squared_grad(
                        original, subscripts, x, found[k][1], k, equations)
                if found == [None, None]:
                    self.attention = True
            return original(subscripts, *operands, **kwargs)

        return einsum

    def _dot_product_attention(self, original):
        def dot_product_attention(*args, **kwargs):
            self.attention = True
            return original(*args, **kwargs)

        return dot_product_attention

    def _batch_normalization(self, original):
        def batch_normalization(x, mean, variance, axis, offset=None,
                                scale=None, epsilon=1e-3):
            last = axis in (-1, len(x.shape) - 1)
            beta, gamma = self.resolve(offset), self.resolve(scale)
            if last and beta is not None and gamma is not None and (
                self.batch_like(x)
            ):
                self.use(gamma[0])
                self.use(beta[0])
                return _batch_norm_with_squared_grad(
                    x, mean, variance, beta[1], gamma[1], epsilon)
            return original(x, mean, variance, axis, offset=offset,
                            scale=scale, epsilon=epsilon)

        return batch_normalization

    def _layer_normalization(self, original):
        def layer_normalization(x, gamma=None, beta=None, axis=-1,
                                epsilon=None, **kwargs):
            rank = _rank(x)
            axes = axis if isinstance(axis, (list, tuple)) else [axis]
            params = [self.resolve(gamma), self.resolve(beta)]
            last = rank and list(axes) in ([-1], [rank - 1])
            fits = all(
                p is None or len(p.shape) == 1 for p in (gamma, beta))
            if last and fits and any(params) and not kwargs.get(
                "rms_scaling", False
            ) and self.batch_like(x):
                for found in params:
                    if found is not None:
                        self.use(found[0])
                values = [p if f is None else f[1]
                          for p, f in zip((gamma, beta), params)]
                return _layer_norm_with_squared_grad(
                    original, x, values[0], values[1],
                    [f is not None for f in params], epsilon)
            return original(x, gamma, beta, axis, epsilon, **kwargs)

        return layer_normalization

    def _take(self, original):
        def take(x, indices, axis=None):
            found = self.resolve(x)
            if found is not None and axis == 0 and len(
                found[1].shape
            ) == 2 and self.batch_like(indices) and (
                tf.as_dtype(indices.dtype).is_integer
            ):
                self.use(found[0])
                return _take_with_squared_grad(original, found[1], indices)
            return original(x, indices, axis=axis)

        return take


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


def _einsum_equations(subscripts, kernel_position):
    """Per-sample kernel and input-gradient equations, or None.

    For `"abc,cde->abde"` with the kernel second: `("abc,abde->acde",
    "abde,cde->abc")` - the kernel gradient keeps the batch letter `a`
    (the first letter of the batch operand, also first in the output). The
    input-gradient equation is None when it cannot be an einsum (an input
    letter summed away); the caller then differentiates the forward.
    """
    if not isinstance(subscripts, str):
        return None
    equation = subscripts.replace(" ", "")
    if "->" not in equation or "." in equation:
        return None
    inputs, out = equation.split("->")
    operands = inputs.split(",")
    if len(operands) != 2:
        return None
    k_sub, x_sub = operands[kernel_position], operands[1 - kernel_position]
    if not x_sub or not out or x_sub[0] != out[0]:
        return None
    batch = x_sub[0]
    if batch in k_sub or any(len(set(s)) != len(s)
                             for s in (k_sub, x_sub, out)):
        return None
    if any(c not in x_sub and c not in out for c in k_sub):
        return None
    per_sample = f"{x_sub},{out}->{batch}{k_sub}"
    backward = None
    if all(c in out or c in k_sub for c in x_sub):
        backward = f"{out},{k_sub}->{x_sub}"
    return per_sample, backward


def _einsum_with_squared_grad(original, subscripts, x_value, kernel,
                              kernel_position, equations):
    per_sample_equation, backward = equations

    def forward(x, k):
        pair = (k, x) if kernel_position == 0 else (x, k)
        return original(subscripts, *pair)

    @tf.custom_gradient
    def op(x, k):
        z = forward(x, k)

        def grad(dz):
            if backward is not None:
                dx = tf.einsum(backward, dz, tf.cast(k, dz.dtype))
            else:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    again = forward(x, k)
                dx = tape.gradient(again, x, output_gradients=dz)
            per_sample = tf.einsum(per_sample_equation,
                                   tf.cast(x, dz.dtype), dz)
            squared = tf.reduce_sum(tf.square(per_sample), axis=0)
            return dx, tf.cast(squared, k.dtype)

        return z, grad

    return op(tf.convert_to_tensor(x_value), tf.convert_to_tensor(kernel))


def _channel_sums(delta):
    """Per-sample sums over every axis but the batch and the last."""
    if len(delta.shape) == 2:
        return delta
    return tf.reduce_sum(delta, axis=list(range(1, len(delta.shape) - 1)))


def _per_sample_sums(delta, trailing):
    """Sums over every axis but the batch and the last `trailing` ones."""
    axes = list(range(1, len(delta.shape) - trailing))
    return tf.reduce_sum(delta, axis=axes) if axes else delta


def _add_bias_with_squared_grad(x, bias, trailing):
    @tf.custom_gradient
    def op(t, v):
        def grad(dz):
            per_sample = _per_sample_sums(dz, trailing)
            squared = tf.reduce_sum(tf.square(per_sample), axis=0)
            return dz, tf.reshape(squared, tf.shape(v))

        return t + v, grad

    return op(tf.convert_to_tensor(x), tf.convert_to_tensor(bias))


def _broadcast_with_squared_grad(original, value, shape):
    rank = len(value.shape)

    @tf.custom_gradient
    def op(v):
        z = original(v, shape)
        out = len(z.shape)
        aligned = [1] * (out - rank) + list(v.shape)

        def grad(dz):
            axes = [i for i in range(1, out) if aligned[i] == 1]
            per_sample = tf.reduce_sum(dz, axis=axes, keepdims=True) if (
                axes) else dz
            squared = tf.reduce_sum(tf.square(per_sample), axis=0)
            return tf.reshape(squared, tf.shape(v))

        return z, grad

    return op(tf.convert_to_tensor(value))


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


def _layer_norm_with_squared_grad(original, x, gamma, beta, squared,
                                  epsilon):
    """Layer norm over the last axis; squared per-sample grads of γ, β.

    `squared[j]` says whether parameter j (γ, β) is protected; an
    unprotected one gets its ordinary gradient.
    """
    dim = x.shape[-1]
    ones = tf.ones((dim,), x.dtype)
    zeros = tf.zeros((dim,), x.dtype)
    g = ones if gamma is None else tf.convert_to_tensor(gamma)
    b = zeros if beta is None else tf.convert_to_tensor(beta)

    @tf.custom_gradient
    def op(t, g_value, b_value):
        normalised = original(t, None, None, -1, epsilon)
        z = original(t, g_value if gamma is not None else None,
                     b_value if beta is not None else None, -1, epsilon)

        def grad(dz):
            dz32 = tf.cast(dz, normalised.dtype)
            with tf.GradientTape() as tape:
                tape.watch(t)
                again = original(t, None, None, -1, epsilon)
            dx = tape.gradient(
                again, t,
                output_gradients=dz32 * tf.cast(g_value, dz32.dtype))
            grads = []
            for j, delta in enumerate((dz32 * normalised, dz32)):
                present = (gamma, beta)[j] is not None
                if not present:
                    grads.append(None)
                elif squared[j]:
                    grads.append(tf.reduce_sum(
                        tf.square(_channel_sums(delta)), axis=0))
                else:
                    grads.append(tf.reduce_sum(
                        tf.reshape(delta, (-1, dim)), axis=0))
            return (tf.cast(dx, t.dtype), *[
                None if v is None else tf.cast(v, (g_value, b_value)[j].dtype)
                for j, v in enumerate(grads)])

        return z, grad

    return op(tf.convert_to_tensor(x), g, b)


def _take_with_squared_grad(original, table, indices):
    """`take(table, ids, axis=0)`; Σ_i (per-sample row gradients)²."""
    ids = tf.convert_to_tensor(indices)

    @tf.custom_gradient
    def op(v):
        z = original(v, ids, axis=0)

        def grad(dz):
            vocab = tf.cast(tf.shape(v)[0], tf.int64)
            batch = tf.shape(ids)[0]
            flat = tf.reshape(tf.cast(ids, tf.int64), (batch, -1))
            flat = tf.where(flat < 0, flat + vocab, flat)
            sample = tf.range(tf.cast(batch, tf.int64), dtype=tf.int64)
            keys = tf.reshape(sample[:, None] * vocab + flat, (-1,))
            unique, slot = tf.unique(keys)
            rows = tf.reshape(dz, (-1, v.shape[-1]))
            sums = tf.math.unsorted_segment_sum(rows, slot,
                                                tf.size(unique))
            return tf.math.unsorted_segment_sum(
                tf.square(sums), unique % vocab, vocab)

        return z, grad

    return op(tf.convert_to_tensor(table))


def _log_likelihood(logits, labels):
    log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    return tf.gather(log_p, labels[:, None], batch_dims=1)[:, 0]


def _dense(gradient, variable):
    if gradient is None:
        return tf.zeros(variable.shape, variable.dtype)
    return tf.convert_to_tensor(gradient)


def _per_sample_squares(forward, variables, x, y, vectorize):
    """Σ_i g_i² for `variables` from one gradient per sample."""
    watched = [getattr(v, "value", v) for v in variables]

    def gradients(xi, yi):
        with tf.GradientTape() as inner:
            inner.watch(watched)
            value = _log_likelihood(forward(xi), yi)[0]
        return [_dense(g, v)
                for g, v in zip(inner.gradient(value, watched), variables)]

    if vectorize:
        def one(sample):
            xi, yi = sample
            return gradients(tf.nest.map_structure(
                lambda t: tf.expand_dims(t, 0), xi), tf.expand_dims(yi, 0))

        grads = tf.vectorized_map(one, (x, y))
        return [tf.reduce_sum(tf.square(g), axis=0) for g in grads]

    # A loop, not pfor: vectorising attention crashes oneDNN on TF 2.21.
    def body(i, totals):
        xi = tf.nest.map_structure(lambda t: t[i:i + 1], x)
        grads = gradients(xi, y[i:i + 1])
        return i + 1, [t + tf.square(g) for t, g in zip(totals, grads)]

    zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
    _, totals = tf.while_loop(lambda i, _: i < tf.shape(y)[0], body,
                              (tf.constant(0), zeros))
    return totals


def squared_gradient_sums(forward, variables, x, y):
    """`Σ_i (∂ log p(y_i|x_i) / ∂v)²` for each variable, per batch.

    Args:
        forward: `forward(x) -> logits`, in inference mode.
        variables: Keras variables to differentiate.
        x: a batch of inputs (a tensor or a nest of tensors, batch first).
        y: int32 labels `(batch,)`.

    Returns:
        A list of tensors shaped like `variables`.
    """
    targets = [getattr(v, "value", v) for v in variables]
    batch = tf.nest.flatten(x)[0].shape[0]
    with tf.GradientTape() as tape:
        tape.watch(targets)
        # Private copies for the intercepted ops: a gradient that reaches a
        # variable itself comes from a use that was not intercepted.
        stand_ins = [tf.stop_gradient(tf.convert_to_tensor(t))
                     for t in targets]
        tape.watch(stand_ins)
        interceptor = _Interceptor(
            variables, batch, {id(v): s for v, s in zip(variables,
                                                        stand_ins)})
        with interceptor.active():
            total = tf.reduce_sum(_log_likelihood(forward(x), y))
    uses = [interceptor.uses.get(id(v), 0) for v in variables]
    grads = tape.gradient(total, stand_ins + targets)
    squares, leaks = grads[: len(variables)], grads[len(variables):]
    results = [None] * len(variables)
    rest = []
    for i, (count, square, leak) in enumerate(zip(uses, squares, leaks)):
        if leak is None and count == 1:
            results[i] = _dense(square, variables[i])
        elif leak is None and count == 0:
            results[i] = tf.zeros(variables[i].shape, variables[i].dtype)
        else:
            rest.append(i)
    if rest:
        values = _per_sample_squares(
            forward, [variables[i] for i in rest], x, y,
            vectorize=not interceptor.attention)
        for i, value in zip(rest, values):
            results[i] = value
    return results
