"""Empirical Fisher information of an exit, from exact per-sample gradients."""

import weakref

import keras
import numpy as np

from keras_eexit import chain
from keras_eexit.fisher.per_sample import squared_gradient_sums
from keras_eexit.losses.labels import sparse_labels
from keras_eexit.utils.lazy_import import tf
from keras_eexit.utils.validation import check_exit_number
from keras_eexit.utils.validation import check_positive_int


def fisher_variables(model, exit):
    """Variables EWC protects for exit number `exit`: segments 1..exit.

    These are Θ_1..Θ_ν of Zniber et al. for ν = `exit`: the trainable
    parameters of the backbone segments exit ν depends on (its head is not
    protected).

    Args:
        model: a `MultiExitModel`.
        exit: the exit NUMBER (1..K).

    Returns:
        A list of variables.
    """
    exit = check_exit_number("exit", exit, model.num_exits)
    return chain.shared_variables(model, exit - 1)


def squared_gradients(model, exit, variables, x, y, per_batch=False):
    """Sum over the batch of squared gradients of log p(y | x) at one exit.

    Args:
        model: a `MultiExitModel` (run in inference mode).
        exit: the exit NUMBER (1..K).
        variables: the variables to differentiate.
        x: a batch of inputs.
        y: integer labels `(batch,)` or one-hot labels.
        per_batch: if True, square the gradient of the batch's summed
            log-likelihood instead (a cheaper approximation: cross terms
            between samples are included), scaled by the batch size.

    Returns:
        A list of tensors shaped like `variables`.
    """
    position = exit - 1
    y = sparse_labels(tf.convert_to_tensor(y), model.num_classes,
                      "the model")

    def logits_of(inputs):
        return chain.run_to_exit(model, inputs, position, False)

    # Watched explicitly: during a Fisher pass the layers are frozen.
    targets = [getattr(v, "value", v) for v in variables]
    if per_batch:
        with tf.GradientTape() as tape:
            tape.watch(targets)
            log_p = tf.nn.log_softmax(tf.cast(logits_of(x), tf.float32))
            total = tf.reduce_sum(
                tf.gather(log_p, y[:, None], batch_dims=1))
        batch = tf.cast(tf.shape(y)[0], tf.float32)
        return [tf.square(g) / batch
                for g in tape.gradient(total, targets)]
    return squared_gradient_sums(logits_of, variables, x, y)


def empirical_fisher(model, data, exit, num_samples=None, per_batch=False):
    """Diagonal empirical Fisher of one exit (Zniber et al., eq. 3).

    `F^(ν)_k = 1/N Σ_x (∂ log ŷ_ν(C(x)) / ∂θ_k)²` over the first
    `num_samples` samples of `data`, for every trainable variable of
    segments 1..ν (Θ_1..Θ_ν), with the model in inference mode and `ŷ_ν`
    the softmax of exit ν at its true class. Per-sample gradients are
    exact; for the parameters of convolutions, dense/einsum layers, biases,
    normalizations and embeddings they come from one batched backward pass,
    not a loop over samples (see `keras_eexit.fisher.per_sample`).

    Args:
        model: a `MultiExitModel`.
        data: `(x, y)` batches: a `tf.data.Dataset`, or any iterable of
            NumPy batches.
        exit: the exit NUMBER ν (1..K).
        num_samples: how many samples to use (default: all of `data`).
        per_batch: use squared batch gradients instead (an approximation).

    Returns:
        A dict mapping each variable's `.path` to a NumPy array.

    Example:

    ```python
    fisher = empirical_fisher(model, splits.train, exit=1,
                              num_samples=1000)
    ```

    References:
        - Zniber, Karrakchou, Ghogho: Balancing Stability and Plasticity
            in Sequentially Trained Early-Exiting Neural Networks
            (arXiv 2605.05358), eq. 3.
    """
    exit = check_exit_number("exit", exit, model.num_exits)
    if num_samples is not None:
        num_samples = check_positive_int("num_samples", num_samples)
    variables = fisher_variables(model, exit)
    step = _step(model, exit, per_batch)
    totals = None
    seen = 0
    for batch in data:
        x, y = batch[0], batch[1]
        if num_samples is not None:
            take = num_samples - seen
            if take <= 0:
                break
            x, y = x[:take], y[:take]
        values = step(x, y)
        totals = values if totals is None else [
            t + v for t, v in zip(totals, values)]
        seen += int(keras.ops.shape(y)[0])
    if seen == 0:
        raise ValueError(
            "The empirical Fisher needs training samples, but the data set "
            "gave none."
        )
    return {v.path: (keras.ops.convert_to_numpy(t).astype("float64")
                     / seen).astype("float32")
            for v, t in zip(variables, totals)}


_STEPS = weakref.WeakKeyDictionary()


def _step(model, exit, per_batch):
    """`(x, y) -> squared gradient sums`: TensorFlow's traced function, the
    JAX one (`per_sample_jax`, `jax.vmap` of the gradient) or PyTorch's
    (`torch_training`, a backward pass per sample)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _compiled_step(model, exit, per_batch)
    if backend == "jax":
        from keras_eexit.fisher.per_sample_jax import squared_gradient_sums
    else:
        from keras_eexit.torch_training import squared_gradient_sums
    variables = fisher_variables(model, exit)

    def step(x, y):
        x = keras.tree.map_structure(np.asarray, x)
        y = keras.ops.convert_to_numpy(sparse_labels(
            np.asarray(y), model.num_classes, "the model"))
        return squared_gradient_sums(model, exit, variables, x, y,
                                     per_batch=per_batch)

    return step


def _compiled_step(model, exit, per_batch):
    """One traced function per (model, exit, mode): tracing pfor is slow."""
    steps = _STEPS.setdefault(model, {})
    key = (exit, per_batch)
    if key not in steps:
        variables = fisher_variables(model, exit)
        steps[key] = tf.function(
            lambda x, y: squared_gradients(model, exit, variables, x, y,
                                           per_batch),
            reduce_retracing=True)
    return steps[key]
