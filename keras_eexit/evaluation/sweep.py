"""Exit criteria and vectorised threshold sweeps over cached exit outputs."""

import dataclasses
import numbers

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

CRITERIA = ("max_softmax", "entropy", "patience", "static")

# Rows of `probs` may deviate from summing to 1 by this much (float32
# softmax outputs are within ~1e-6; logits or unnormalised scores are not).
PROB_ATOL = 1e-3


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Accuracy and cost of early-exit inference at each threshold.

    Attributes:
        criterion: the exit criterion.
        thresholds: `(T,)` thresholds (patience values, or exit indices for
            `"static"`).
        accuracy: `(T,)` top-1 accuracy of the early-exit model.
        mean_flops: `(T,)` mean FLOPs per sample.
        exit_ratios: `(T, K)` fraction of samples leaving at each exit.
    """

    criterion: str
    thresholds: np.ndarray
    accuracy: np.ndarray
    mean_flops: np.ndarray
    exit_ratios: np.ndarray


def _scores(probs, criterion):
    """Per exit and sample: the value compared with the threshold."""
    if criterion == "max_softmax":
        return probs.max(axis=-1)
    if criterion == "entropy":
        # 0 · log 0 = 0 exactly (clipping would add ~3e-11 per zero and
        # break ties with thresholds).
        positive = probs > 0
        logs = np.log(np.where(positive, probs, 1.0))
        entropy = -np.where(positive, probs * logs, 0.0).sum(-1)
        return entropy / np.log(probs.shape[-1])
    predictions = probs.argmax(-1)  # patience: length of the agreeing run
    runs = np.zeros(predictions.shape, dtype=np.int64)
    for k in range(1, len(predictions)):
        same = predictions[k] == predictions[k - 1]
        runs[k] = np.where(same, runs[k - 1] + 1, 0)
    return runs


def exit_indices(probs, criterion, thresholds):
    """The exit each sample leaves at, for every threshold.

    Rules (a sample that no exit accepts leaves at the final exit):

    - `"max_softmax"`: the first exit whose top probability is strictly
      greater than the threshold (Kubaty et al.'s `eval.py` uses `>`, so
      threshold 0 sends every sample out at the first exit and threshold 1
      sends every sample to the final exit; `>=` would differ only for
      probabilities exactly equal to a threshold).
    - `"entropy"`: the first exit whose normalised entropy `H / log C` is at
      most the threshold (low entropy = confident; thresholds in [0, 1]).
    - `"patience"` (PABEE, Zhou et al. 2020): the first exit at which the
      prediction has stayed the same for `threshold` consecutive exits
      (i.e. it equals the previous `threshold` exits' predictions).
    - `"static"`: always exit `threshold` (0-based).

    Args:
        probs: `(K, N, C)` probabilities.
        criterion: one of `CRITERIA`.
        thresholds: `(T,)` array.

    Returns:
        `(T, N)` int array of 0-based exit indices.
    """
    k = probs.shape[0]
    thresholds = np.asarray(thresholds)
    if criterion == "static":
        return np.broadcast_to(thresholds.astype(np.int64)[:, None],
                               (len(thresholds), probs.shape[1])).copy()
    scores = _scores(probs, criterion)[None]  # (1, K, N)
    t = thresholds[:, None, None]
    if criterion == "max_softmax":
        accept = scores > t
    elif criterion == "entropy":
        accept = scores <= t
    else:
        accept = scores >= t
    accept[:, k - 1, :] = True
    return accept.argmax(axis=1)


def _check(probs, labels, flops):
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or 0 in probs.shape:
        raise invalid_value(
            "probs", "a non-empty array of shape (exits, samples, classes)",
            f"an array of shape {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < -PROB_ATOL:
        raise ValueError(
            "Probabilities must be finite and non-negative (softmax "
            "outputs, not logits).")
    sums = probs.sum(-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=PROB_ATOL):
        worst = float(np.abs(sums - 1).max())
        raise ValueError(
            "Probabilities must sum to 1 over the classes (softmax outputs, "
            f"not logits): the largest deviation is {worst:.3g} (tolerance "
            f"{PROB_ATOL:g})."
        )
    if labels is None:
        raise invalid_value("labels", "an array of integer labels", labels)
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[-1] == probs.shape[-1] and (
        labels.shape[-1] > 1
    ):
        labels = labels.argmax(-1)  # one-hot
    labels = labels.reshape(-1)
    if labels.shape[0] != probs.shape[1]:
        raise ValueError(
            f"Label count mismatch: {labels.shape[0]} labels for "
            f"{probs.shape[1]} samples."
        )
    if labels.size and (
        labels.dtype.kind not in "biuf"
        or not np.all(np.isfinite(labels.astype(np.float64)))
        or np.any(labels != np.round(labels))
        or labels.min() < 0 or labels.max() >= probs.shape[-1]
    ):
        raise ValueError(
            f"Labels must be integers in [0, {probs.shape[-1] - 1}] (one per "
            f"sample, {probs.shape[-1]} classes); received "
            f"{labels[:5].tolist()}{' ...' if labels.size > 5 else ''}."
        )
    labels = labels.astype(np.int64)
    if flops is None:
        raise invalid_value("flops", "cumulative FLOPs per exit", flops)
    flops = np.asarray(flops, dtype=np.float64).reshape(-1)
    if flops.shape[0] != probs.shape[0]:
        raise ValueError(
            f"FLOPs list of the wrong length: {flops.shape[0]} values for "
            f"{probs.shape[0]} exits."
        )
    if not np.all(np.isfinite(flops)) or flops.min() < 0:
        raise invalid_value("flops", "finite, non-negative FLOPs per exit",
                            flops.tolist())
    return probs, labels, flops


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _thresholds(criterion, thresholds, num_exits):
    """Validates `thresholds` (a count or values) for `criterion`."""
    if criterion == "patience" and num_exits < 2:
        raise ValueError(
            "criterion='patience' needs at least 2 exits (it compares "
            f"consecutive predictions); the outputs have {num_exits}.")
    try:
        values = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if criterion in ("patience", "static"):
        low, high = (1, num_exits - 1) if criterion == "patience" else (
            0, num_exits - 1)
        if _is_count(thresholds):
            return np.arange(low, high + 1)
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(
            values != np.round(values)
        ) or values.min() < low or values.max() > high:
            raise invalid_value(
                "thresholds", f"a count, or integers in [{low}, {high}] for "
                f"criterion={criterion!r}", thresholds)
        return values.astype(np.int64)
    if _is_count(thresholds):
        if thresholds < 2:
            raise invalid_value("thresholds", "a count >= 2 or an array",
                                thresholds)
        return np.linspace(0.0, 1.0, int(thresholds))
    if values.size == 0 or not np.all(np.isfinite(values)) or (
        values.min() < 0 or values.max() > 1
    ):
        raise invalid_value(
            "thresholds", f"a count, or values in [0, 1] for "
            f"criterion={criterion!r}", thresholds)
    return values


def sweep(probs, labels=None, flops=None, criterion="max_softmax",
          thresholds=100):
    """Accuracy vs mean FLOPs of early exit over a range of thresholds.

    Vectorised over thresholds and samples (one pass of array work on the
    outputs cached by `collect`): 10,000 samples × 8 exits × 100
    thresholds take a few tens of milliseconds on one core
    (`benchmarks/sweep_speed.py`).

    Raises `ValueError` for thresholds outside the criterion's range,
    probabilities that are not finite, negative or do not sum to 1 within
    `PROB_ATOL`, labels that are not one integer class per sample, empty
    outputs, FLOPs of the wrong length and unknown criteria.

    Args:
        probs: `(K, N, C)` probabilities, or an `ExitOutputs` (then `labels`
            and `flops` come from it).
        labels: `(N,)` integer labels.
        flops: `(K,)` cumulative FLOPs per exit.
        criterion: `"max_softmax"`, `"entropy"`, `"patience"` or
            `"static"` (see `exit_indices`).
        thresholds: a count (evenly spaced over [0, 1], Kubaty et al.'s
            `linspace(0, 1, 100)` by default; for `"patience"` every
            patience 1..K-1 and for `"static"` every exit 0..K-1, whatever
            the count) or an explicit array of values in that range.

    Returns:
        A `Sweep`.

    Example:

    ```python
    out = collect(model, splits.test)
    result = sweep(out, criterion="entropy", thresholds=50)
    result.accuracy, result.mean_flops
    ```
    """
    if hasattr(probs, "probs") and hasattr(probs, "labels"):
        if labels is not None or flops is not None:
            raise ValueError(
                "sweep(outputs, ...) takes the labels and FLOPs from the "
                "ExitOutputs: pass `criterion=` and `thresholds=` by keyword."
            )
        probs, labels, flops = probs.probs, probs.labels, probs.flops
    check_choice("criterion", criterion, CRITERIA)
    probs, labels, flops = _check(probs, labels, flops)
    num_exits = probs.shape[0]
    thresholds = _thresholds(criterion, thresholds, num_exits)
    exits = exit_indices(probs, criterion, thresholds)  # (T, N)
    correct = probs.argmax(-1) == labels[None, :]  # (K, N)
    samples = np.arange(probs.shape[1])[None, :]
    accuracy = correct[exits, samples].mean(axis=1)
    mean_flops = flops[exits].mean(axis=1)
    counts = np.stack([(exits == k).mean(axis=1) for k in range(num_exits)],
                      axis=1)
    return Sweep(criterion, thresholds, accuracy, mean_flops, counts)
