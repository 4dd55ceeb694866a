"""Exit criteria of exported models, in numpy and in TensorFlow graphs.

Both criteria read the class probabilities of one exit and decide whether a
sample may leave there:

* `"max_softmax"`: the top probability is strictly greater than the
  threshold (the strict `>` of Kubaty et al.'s benchmark). Threshold range
  [0, 1]; `1` never exits early.
* `"entropy"`: the entropy of the probabilities, divided by `log(C)` so
  that it lies in [0, 1], is at most the threshold. Threshold range
  [0, 1]; `0` exits early only on exactly one-hot outputs.

A sample that no internal exit accepts leaves at the last exit. The numpy
functions here are the reference the LiteRT graphs are tested against.
"""

import math
import numbers

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

CRITERIA = ("max_softmax", "entropy")
"""Exit criteria understood by `export_litert` and `LiteRTRunner`."""

DEFAULT_THRESHOLDS = {"max_softmax": 0.9, "entropy": 0.1}
"""Threshold stored in the sidecar when `export_litert` is given none."""

THRESHOLD_RANGES = {"max_softmax": (0.0, 1.0), "entropy": (0.0, 1.0)}
"""Closed interval of meaningful thresholds, per criterion."""

_RULES = {
    "max_softmax": "exit when the top probability is > threshold",
    "entropy": "exit when the normalised entropy is <= threshold",
}

# Threshold fed with every int8 calibration sample: no exit can accept it (a
# softmax never exceeds 1, a normalised entropy is never negative), so every
# stage of an early-exit graph sees calibration data.
NEVER_EXIT = {"max_softmax": 1.0, "entropy": -1.0}


def check_criterion(criterion):
    """Returns `criterion` if it is one of `CRITERIA`, else raises."""
    return check_choice("criterion", criterion, CRITERIA)


def check_threshold(criterion, threshold):
    """Returns `threshold` as a float if it is valid for `criterion`.

    Args:
        criterion: one of `CRITERIA`.
        threshold: a real number within `THRESHOLD_RANGES[criterion]`.

    Returns:
        `float(threshold)`.

    Raises:
        ValueError: naming the criterion, its rule and its range.
    """
    low, high = THRESHOLD_RANGES[criterion]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (numbers.Real, np.floating))
        or not math.isfinite(float(threshold))
        or not low <= float(threshold) <= high
    ):
        raise invalid_value(
            "threshold",
            f"a number between {low:g} and {high:g} for criterion "
            f"{criterion!r} ({_RULES[criterion]})",
            threshold,
        )
    return float(threshold)


def confidence(probs, criterion):
    """The per-sample statistic a criterion compares with the threshold.

    Args:
        probs: array `(..., num_classes)` of probabilities.
        criterion: one of `CRITERIA`.

    Returns:
        Array `(...)`: the top probability (`"max_softmax"`) or the
        entropy divided by `log(num_classes)` (`"entropy"`).
    """
    probs = np.asarray(probs, dtype="float64")
    if criterion == "max_softmax":
        return probs.max(axis=-1)
    # Renormalised first: quantised probabilities need not sum to 1.
    probs = probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-30)
    safe = np.where(probs > 0, probs, 1.0)
    entropy = -(probs * np.log(safe)).sum(axis=-1)
    return entropy / math.log(probs.shape[-1])


def accepts(probs, criterion, threshold):
    """Whether an exit with these probabilities lets each sample leave.

    Args:
        probs: array `(..., num_classes)`.
        criterion: one of `CRITERIA`.
        threshold: the threshold (not range-checked here).

    Returns:
        Boolean array `(...)`.
    """
    stat = confidence(probs, criterion)
    if criterion == "max_softmax":
        return stat > threshold
    return stat <= threshold


def first_exit(probs_per_exit, criterion, threshold):
    """The exit each sample takes under a criterion, from all exits' outputs.

    Args:
        probs_per_exit: array `(num_exits, num_samples, num_classes)`.
        criterion: one of `CRITERIA`.
        threshold: the threshold.

    Returns:
        Int array `(num_samples,)` of 0-based exit indices; samples that no
        internal exit accepts take the last exit.

    Example:

    >>> p = np.array([[[0.6, 0.4]], [[0.9, 0.1]]])
    >>> first_exit(p, "max_softmax", 0.5).tolist()
    [0]
    """
    probs_per_exit = np.asarray(probs_per_exit)
    ok = accepts(probs_per_exit, criterion, threshold)
    ok[-1] = True
    return ok.argmax(axis=0).astype("int64")


def graph_accepts(logits, probs, criterion, threshold):
    """TensorFlow version of `accepts` for a batch of one sample.

    The comparison is made on the IEEE-754 bit patterns of the statistic
    and the threshold, reinterpreted as int32 (`tf.bitcast`; monotonic for
    non-negative floats; negative statistics, such as `-0.0`, are clamped
    to `+0.0`). An int8 converter cannot quantize a bitcast, so the
    run-time threshold stays an exact float32 even in int8 models; were it
    quantized, its range would be calibrated separately inside each `If`
    branch, from the few thresholds that reach that branch.

    Args:
        logits: `(1, num_classes)` float32 class logits.
        probs: their softmax.
        criterion: one of `CRITERIA`.
        threshold: scalar float32 tensor.

    Returns:
        A scalar boolean tensor.
    """
    import tensorflow as tf

    if criterion == "max_softmax":
        stat = tf.reduce_max(probs, axis=-1)
    else:
        num_classes = int(logits.shape[-1])
        entropy = -tf.reduce_sum(
            probs * tf.math.log(tf.maximum(probs, 1e-6)), axis=-1
        )
        stat = entropy * (1.0 / math.log(num_classes))
    stat_bits = tf.maximum(tf.bitcast(tf.reshape(stat, []), tf.int32), 0)
    threshold_bits = tf.bitcast(threshold, tf.int32)
    if criterion == "max_softmax":
        return stat_bits > threshold_bits
    return stat_bits <= threshold_bits
