"""Empirical Fisher information of an exit, from exact per-sample gradients."""

import weakref

import tensorflow as tf

from keras_eexit import chain

from keras_eexit.regularizers.per_sample import squared_gradient_sums
from keras_eexit.utils.validation import invalid_value


def exit_logits(model, x, exit_index, training=False):
    """Logits of one exit, running only the stages it needs.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        exit_index: 0-based exit.
        training: passed to the layers.

    Returns:
        The logits of exit `exit_index`.
    """
    return chain.run_to_exit(model, x, exit_index, training)


def fisher_variables(model, exit_index):
    """Variables EWC protects for exit `exit_index`: segments 1..k (Θ1..Θk)."""
    return chain.shared_variables(model, exit_index)


def squared_gradients(model, exit_index, variables, x, y, per_batch=False):
    """Sum over the batch of squared gradients of log p(y | x) at one exit.

    Args:
        model: a `MultiExitModel` (run in inference mode).
        exit_index: 0-based exit.
        variables: the variables to differentiate.
        x: a batch of inputs.
        y: integer labels `(batch,)` or one-hot labels.
        per_batch: if True, square the gradient of the batch's summed
            log-likelihood instead (a cheaper approximation: cross terms
            between samples are included), scaled by the batch size.

    Returns:
        A list of tensors shaped like `variables`.
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] != 1:
        y = tf.argmax(y, axis=-1)
    y = tf.cast(tf.reshape(y, (-1,)), tf.int32)

    def log_likelihood(logits, labels):
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        return tf.gather(log_p, labels[:, None], batch_dims=1)[:, 0]

    # Watched explicitly: during a Fisher pass the layers are frozen.
    targets = [getattr(v, "value", v) for v in variables]
    if per_batch:
        with tf.GradientTape() as tape:
            tape.watch(targets)
            total = tf.reduce_sum(log_likelihood(
                exit_logits(model, x, exit_index), y))
        batch = tf.cast(tf.shape(y)[0], tf.float32)
        return [tf.square(g) / batch
                for g in tape.gradient(total, targets)]

    return squared_gradient_sums(
        lambda inputs: exit_logits(model, inputs, exit_index), variables, x,
        y)


def empirical_fisher(model, data, exit_index, num_samples=None,
                     per_batch=False):
    """Diagonal empirical Fisher of one exit (Zniber et al., eq. 2-3).

    `F_k = mean_i (∂ log p_exit(y_i | x_i) / ∂θ_k)²` over the first
    `num_samples` samples of `data`, for every trainable variable of
    segments 1..k+1 (Θ1..Θk in the paper's 1-based notation), with the model
    in inference mode. Per-sample gradients are exact; for the parameters
    of convolutions, dense/einsum layers, biases, normalizations and
    embeddings they come from one batched backward pass, not a loop over
    samples (see `keras_eexit.regularizers.per_sample`).

    Args:
        model: a `MultiExitModel`.
        data: a `tf.data.Dataset` of `(x, y)` batches.
        exit_index: 0-based exit.
        num_samples: how many samples to use (default: all of `data`).
        per_batch: use squared batch gradients instead (an approximation).

    Returns:
        A dict mapping each variable's `.path` to a NumPy array.

    Example:

    ```python
    fisher = empirical_fisher(model, splits.train, exit_index=0,
                              num_samples=1000)
    ```
    """
    if isinstance(exit_index, bool) or not isinstance(exit_index, int) or (
        not 0 <= exit_index < model.num_exits
    ):
        raise invalid_value(
            "exit_index", f"an exit index in [0, {model.num_exits - 1}]",
            exit_index)
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, int)
        or num_samples < 1
    ):
        raise invalid_value("num_samples", "an integer >= 1 or None",
                            num_samples)
    variables = fisher_variables(model, exit_index)
    step = _compiled_step(model, exit_index, per_batch)
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
        seen += int(tf.shape(y)[0])
    if seen == 0:
        raise ValueError(
            "The empirical Fisher needs training samples, but the data set "
            "gave none."
        )
    return {v.path: (t.numpy().astype("float64") / seen).astype("float32")
            for v, t in zip(variables, totals)}


_STEPS = weakref.WeakKeyDictionary()


def _compiled_step(model, exit_index, per_batch):
    """One traced function per (model, exit, mode): tracing pfor is slow."""
    steps = _STEPS.setdefault(model, {})
    key = (exit_index, per_batch)
    if key not in steps:
        variables = fisher_variables(model, exit_index)
        steps[key] = tf.function(
            lambda x, y: squared_gradients(model, exit_index, variables, x,
                                           y, per_batch),
            reduce_retracing=True)
    return steps[key]
