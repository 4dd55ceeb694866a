"""Small helpers shared by the named regimes."""

import dataclasses

from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_non_negative_int
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

REDUCTIONS = ("mean", "sum")


def one_hot(k, num_exits):
    """Weights selecting exit `k` (1-based) only."""
    return [1.0 if i == k else 0.0 for i in range(1, num_exits + 1)]


def ones(exits, num_exits):
    """Weights 1 on the given 1-based exits, 0 elsewhere."""
    return [1.0 if i in exits else 0.0 for i in range(1, num_exits + 1)]


def epochs_arg(argument, value):
    """Checks a positive epoch count."""
    return check_positive_int(argument, value)


def reduction_arg(reduction):
    """Checks a joint-loss reduction, `"mean"` or `"sum"`."""
    return check_choice("reduction", reduction, REDUCTIONS)


def reduced(weights, num_exits, reduction):
    """Per-exit weights of a joint loss reduced over the K exits.

    `"sum"`: `Σ_k w_k L_k` (weights unchanged). `"mean"`: `Σ_k w_k L_k / K`,
    the mean over heads of Kubaty et al.'s code (`methods/early_exit.py`:
    `loss = sum(losses) / len(losses)`, where `losses` holds every head's
    loss, frozen or not), so every weight is divided by K.

    Args:
        weights: a scheme name, a list, or a schedule `f(epoch, epochs)`.
        num_exits: K.
        reduction: `"mean"` or `"sum"`.

    Returns:
        Weights in a form `Phase(weights=...)` takes.
    """
    reduction_arg(reduction)
    if reduction == "sum":
        return weights
    if callable(weights):
        def schedule(epoch, epochs):
            return list(exit_weights(weights(epoch, epochs), num_exits)
                        / num_exits)
        return schedule
    return list(exit_weights(weights, num_exits) / num_exits)


def convergence_args(patience, metric):
    """Checks the `patience`/`metric` pair of a named regime."""
    if patience is not None:
        check_non_negative_int("patience", patience)
    if not isinstance(metric, str) or not metric:
        raise invalid_value("metric", "a per-exit metric name such as "
                            "'accuracy' or 'loss'", metric)
    return patience, metric


def converging(phase, exits, patience, metric):
    """`phase`, run until every exit in `exits` stops improving.

    With `patience` set, the phase monitors `val_exit_{k}_{metric}` for
    each exit `k` of `exits` (1-based), ends when every one has gone
    `patience` epochs without improving (its `epochs`, if any, is then the
    most it may last) and restores the weights of the last epoch in which
    any of them improved: the early stopping of Kubaty et al.'s code
    (`EarlyStopperEarlyExit`). Without `patience` the phase is returned
    unchanged (fixed length).

    Args:
        phase: a `Phase`.
        exits: 1-based exit numbers whose validation metric is watched.
        patience: `None` or epochs without improvement.
        metric: the per-exit metric (`"accuracy"` needs
            `compile(metrics=["accuracy"])`; `"loss"` is always logged).

    Returns:
        A `Phase`.
    """
    if patience is None:
        return phase
    return dataclasses.replace(
        phase, monitor=tuple(f"val_exit_{k}_{metric}" for k in exits),
        patience=patience, restore_best=True)
