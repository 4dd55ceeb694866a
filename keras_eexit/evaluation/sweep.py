"""Exit criteria and vectorised threshold sweeps over cached exit outputs."""

import dataclasses

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

CRITERIA = ("max_softmax", "entropy", "patience", "static")


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
        p = np.clip(probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(-1) / np.log(probs.shape[-1])
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
      greater than the threshold (Kubaty et al.'s `eval.py` uses `>`).
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
    sums = probs.sum(-1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        worst = float(np.abs(sums - 1).max())
        raise ValueError(
            "Probabilities must sum to 1 over the classes (softmax outputs, "
            f"not logits): the largest deviation is {worst:.3g}."
        )
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != probs.shape[1]:
        raise ValueError(
            f"Label count mismatch: {labels.shape[0]} labels for "
            f"{probs.shape[1]} samples."
        )
    flops = np.asarray(flops, dtype=np.float64).reshape(-1)
    if flops.shape[0] != probs.shape[0]:
        raise ValueError(
            f"FLOPs list of the wrong length: {flops.shape[0]} values for "
            f"{probs.shape[0]} exits."
        )
    return probs, labels, flops


def _thresholds(criterion, thresholds, num_exits):
    if criterion in ("patience", "static"):
        low, high = (1, num_exits - 1) if criterion == "patience" else (
            0, num_exits - 1)
        if isinstance(thresholds, int) and not isinstance(thresholds, bool):
            return np.arange(low, high + 1)
        values = np.asarray(thresholds)
        if values.size == 0 or np.any(values != np.round(values)) or (
            values.min() < low or values.max() > high
        ):
            raise invalid_value(
                "thresholds", f"integers in [{low}, {high}] for "
                f"criterion={criterion!r}", thresholds)
        return values.astype(np.int64)
    if isinstance(thresholds, int) and not isinstance(thresholds, bool):
        if thresholds < 2:
            raise invalid_value("thresholds", "a count >= 2 or an array",
                                thresholds)
        return np.linspace(0.0, 1.0, thresholds)
    values = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if values.size == 0 or values.min() < 0 or values.max() > 1 or (
        not np.all(np.isfinite(values))
    ):
        raise invalid_value(
            "thresholds", f"values in [0, 1] for criterion={criterion!r}",
            thresholds)
    return values


def sweep(probs, labels=None, flops=None, criterion="max_softmax",
          thresholds=100):
    """Accuracy vs mean FLOPs of early exit over a range of thresholds.

    Vectorised over thresholds and samples (one pass of array work on the
    outputs cached by `collect`).

    Args:
        probs: `(K, N, C)` probabilities, or an `ExitOutputs` (then `labels`
            and `flops` come from it).
        labels: `(N,)` integer labels.
        flops: `(K,)` cumulative FLOPs per exit.
        criterion: `"max_softmax"`, `"entropy"`, `"patience"` or
            `"static"` (see `exit_indices`).
        thresholds: a count (evenly spaced over [0, 1]; for `"patience"`
            and `"static"` every valid value) or an explicit array.

    Returns:
        A `Sweep`.

    Example:

    ```python
    out = collect(model, splits.test)
    result = sweep(out, criterion="entropy", thresholds=50)
    result.accuracy, result.mean_flops
    ```
    """
    if labels is None and hasattr(probs, "probs"):
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


def budget_table(result, flops, fractions=(0.25, 0.5, 0.75, 1.0)):
    """Accuracy within fractions of the full model's FLOPs, and the maximum.

    Kubaty et al.'s Table 1 convention: for each budget, the LAST sweep point
    (in threshold order) whose mean FLOPs is within `fraction × FLOPs of the
    final exit` — no interpolation; `"max"` is the best accuracy over the
    whole sweep, with no limit.

    Args:
        result: a `Sweep`.
        flops: `(K,)` cumulative FLOPs per exit.
        fractions: budget fractions.

    Returns:
        A dict `{"25%": acc, "50%": ..., "100%": ..., "max": acc}` (NaN where
        no sweep point fits the budget).
    """
    full = float(np.asarray(flops).reshape(-1)[-1])
    table = {}
    for fraction in fractions:
        within = np.nonzero(result.mean_flops <= fraction * full + 1e-9)[0]
        table[f"{fraction:.0%}"] = (float(result.accuracy[within[-1]])
                                    if within.size else float("nan"))
    table["max"] = float(result.accuracy.max())
    return table


def anytime_table(outputs):
    """Per exit: parameters, FLOPs (also in MFLOPs) and accuracy.

    The layout of the damping paper's Table 1 (static exits).

    Args:
        outputs: an `ExitOutputs` from `collect`.

    Returns:
        A list of dicts with keys `exit`, `params`, `flops`, `mflops`,
        `accuracy`.
    """
    accuracy = outputs.accuracy()
    return [
        {"exit": name, "params": int(outputs.params[k]),
         "flops": int(outputs.flops[k]),
         "mflops": float(outputs.flops[k]) / 1e6,
         "accuracy": float(accuracy[k])}
        for k, name in enumerate(outputs.exit_names)
    ]
