"""L2W's look-ahead: the model optimizer's next update, differentiable."""

import keras
from keras import ops

from keras_eexit.compat import optimizer_slots
from keras_eexit.compat import uses_weight_decay
from keras_eexit.utils.validation import check_choice

LOOKAHEADS = ("optimizer", "sgd")
"""How L2W's look-ahead moves the parameters: `"optimizer"`, the model
optimizer's own next update (the authors' `MetaSGD.meta_step`, which
replays their SGD with its momentum buffer and weight decay; Kubaty et
al.'s `MetaAdamW` does the same for AdamW), or `"sgd"`, a plain gradient
step `θ − α·g` at the optimizer's learning rate."""


def lookahead_step(optimizer, variables, values, grads, learning_rate=None,
                   mode="optimizer"):
    """The parameters after one update, as a differentiable function of
    the gradients.

    `mode="optimizer"` computes what `optimizer.apply_gradients` would do
    with `grads`, from its current state (step count, momentum, moments),
    without changing that state: Keras' SGD (momentum, Nesterov), Adam
    (with `amsgrad`) and AdamW, each with Keras' decoupled weight decay
    (`θ ← θ − lr·wd·θ` first). A variable without gradient stays as it is,
    as Keras leaves it. `mode="sgd"`: `θ − lr·g`.

    Args:
        optimizer: the model's optimizer (a `LossScaleOptimizer` is read
            through its inner optimizer); built over `variables` for
            `"optimizer"` unless it is SGD without momentum.
        variables: the `keras.Variable`s being updated (for the optimizer's
            per-variable state).
        values: their current values `θ` as tensors (differentiable).
        grads: their gradients (tensors or `None`), differentiable.
        learning_rate: `None` for the optimizer's current learning rate, or
            a number to use instead.
        mode: one of `LOOKAHEADS`.

    Returns:
        A list of tensors `θ'`, parallel to `values`.

    Example:

    ```python
    ahead = lookahead_step(model.optimizer, model.trainable_variables,
                           values, grads)
    ```
    """
    check_choice("lookahead", mode, LOOKAHEADS)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    lr = ops.cast(optimizer.learning_rate if learning_rate is None
                  else learning_rate, "float32")
    if mode == "sgd":
        return [t if g is None else t - ops.cast(lr, t.dtype) * g
                for t, g in zip(values, grads)]
    _check_supported(optimizer)
    step = _adam_step if isinstance(optimizer, keras.optimizers.Adam) else (
        _sgd_step)
    ahead = []
    for variable, value, grad in zip(variables, values, grads):
        if grad is None:
            ahead.append(value)
            continue
        rate = ops.cast(lr, value.dtype)
        grad = ops.cast(grad, value.dtype)
        if uses_weight_decay(optimizer, variable):
            value = value - value * ops.cast(optimizer.weight_decay,
                                             value.dtype) * rate
        ahead.append(step(optimizer, variable, value, grad, rate))
    return ahead


def _sgd_step(optimizer, variable, value, grad, lr):
    """Keras SGD: `v ← μv − lr·g; θ ← θ + v` (Nesterov: `θ + μv − lr·g`)."""
    if not optimizer.momentum:
        return value - lr * grad
    momentum = ops.cast(optimizer.momentum, value.dtype)
    buffer = ops.convert_to_tensor(
        optimizer_slots(optimizer, variable)["momentum"])
    velocity = buffer * momentum - lr * grad
    if optimizer.nesterov:
        return value + velocity * momentum - lr * grad
    return value + velocity


def _adam_step(optimizer, variable, value, grad, lr):
    """Keras Adam: moments updated with `g`, bias-corrected step size."""
    slots = optimizer_slots(optimizer, variable)
    dtype = value.dtype
    t = ops.cast(optimizer.iterations + 1, dtype)
    beta_1 = ops.cast(optimizer.beta_1, dtype)
    beta_2 = ops.cast(optimizer.beta_2, dtype)
    alpha = lr * ops.sqrt(1 - ops.power(beta_2, t)) / (
        1 - ops.power(beta_1, t))
    m = ops.convert_to_tensor(slots["momentum"])
    v = ops.convert_to_tensor(slots["velocity"])
    m = m + (grad - m) * (1 - beta_1)
    v = v + (ops.square(grad) - v) * (1 - beta_2)
    if "velocity_hat" in slots:
        v = ops.maximum(ops.convert_to_tensor(slots["velocity_hat"]), v)
    return value - m * alpha / (_safe_sqrt(v) + optimizer.epsilon)


def _safe_sqrt(x):
    """`sqrt(x)` with a zero (not NaN) gradient where `x == 0`."""
    positive = x > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), 0.0)


def _check_supported(optimizer):
    name = type(optimizer).__name__
    if not isinstance(optimizer, (keras.optimizers.SGD,
                                  keras.optimizers.Adam)):
        raise ValueError(
            "L2W's look-ahead follows the model optimizer's update, "
            "written for SGD, Adam and AdamW; the model's optimizer is "
            f"{name}: use one of those, or L2W(lookahead='sgd') for a "
            "plain gradient step.")
    clipping = {k: getattr(optimizer, k, None) for k in (
        "clipnorm", "clipvalue", "global_clipnorm")}
    if any(v is not None for v in clipping.values()) or (
            getattr(optimizer, "gradient_accumulation_steps", None)):
        raise ValueError(
            "L2W's look-ahead follows the model optimizer's update, "
            f"without gradient clipping or accumulation; the model's {name} "
            f"has {clipping} and gradient_accumulation_steps="
            f"{getattr(optimizer, 'gradient_accumulation_steps', None)}: "
            "drop them, or use L2W(lookahead='sgd').")
    needs_state = isinstance(optimizer, keras.optimizers.Adam) or bool(
        optimizer.momentum)
    if needs_state and not optimizer.built:
        raise ValueError(
            f"L2W's look-ahead reads the state of the model's {name}, which "
            "is not built yet: `fit` builds it; outside `fit`, call "
            "`model.optimizer.build(model.trainable_variables)` first.")
