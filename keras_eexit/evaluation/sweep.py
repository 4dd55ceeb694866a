"""Exit criteria and vectorised threshold sweeps over cached exit outputs."""

import dataclasses
import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import check_cost
from keras_eexit.evaluation.cost import mean_costs
from keras_eexit.evaluation.cost import resolve_cost
from keras_eexit.evaluation.cost import resolve_cost_vector
from keras_eexit.utils.deprecation import deprecated_aliases
from keras_eexit.utils.deprecation import deprecated_module_call
from keras_eexit.utils.validation import invalid_value

CRITERIA = criteria_lib.CRITERIA
"""The exit criteria by name (`keras_eexit.criteria.CRITERIA`)."""

PROB_ATOL = criteria_lib.PROB_ATOL


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Accuracy and cost of early-exit inference at each threshold.

    Attributes:
        criterion: the exit criterion.
        thresholds: `(T,)` thresholds (one value for every exit: float32
            for max-softmax and entropy, patience values, or exit NUMBERS
            1..K for `"static"`), or `(T, K)` per-exit thresholds (one row
            per sweep point, e.g. the budgeted-batch curve of
            `keras_eexit.inference.budgeted_batch_curve`).
        accuracy: `(T,)` top-1 accuracy of the early-exit model.
        mean_flops: `(T,)` mean cost per sample, in `cost_unit` (FLOPs,
            or measured seconds: `threshold_sweep(..., cost=profile)`).
        exit_ratios: `(T, K)` fraction of samples leaving at each exit.
        cost_unit: `"FLOPs"` or `"s"` (see `keras_eexit.evaluation.cost`).
    """

    criterion: str
    thresholds: np.ndarray
    accuracy: np.ndarray
    mean_flops: np.ndarray
    exit_ratios: np.ndarray
    cost_unit: str = "FLOPs"

    @property
    def mean_cost(self):
        """`mean_flops` by the name that fits every unit."""
        return self.mean_flops

    @property
    def per_exit(self):
        """Whether `thresholds` holds one row of per-exit values per point."""
        return np.ndim(self.thresholds) == 2


def exit_indices(probs, criterion, thresholds):
    """The exit each sample leaves at, for every threshold (or row).

    The rules are those of `keras_eexit.criteria` (scores compared in
    float32; a sample that no exit accepts leaves at the final exit):

    - `"max_softmax"`: the first exit whose top probability is strictly
      greater than the threshold (Kubaty et al.'s `eval.py` uses `>`, so
      threshold 0 sends every sample out at the first exit and threshold 1
      sends every sample to the final exit).
    - `"entropy"`: the first exit whose normalised entropy `H / log C` is at
      most the threshold (low entropy = confident; thresholds in [0, 1]).
    - `"patience"` (PABEE, Zhou et al. 2020): the first exit at which the
      prediction has stayed the same for `threshold` consecutive exits
      (threshold 0: the first exit; the reference's counter).
    - `"static"`: always exit number `threshold` (1..K).

    Args:
        probs: `(K, N, C)` probabilities.
        criterion: a registered criterion's name (or a `Criterion`).
        thresholds: `(T,)` array, or `(T, K)` per-exit rows.

    Returns:
        `(T, N)` int array of 0-based exit indices.
    """
    return criteria_lib.exit_indices(probs, criteria_lib.get(criterion),
                                     thresholds)


def _check(probs, labels, flops):
    given = np.asarray(probs)
    if given.ndim != 3 or 0 in given.shape:
        raise invalid_value(
            "probs", "a non-empty array of shape (exits, samples, classes)",
            f"an array of shape {given.shape}")
    if given.dtype.kind not in "biuf":
        raise invalid_value("probs", "an array of probabilities",
                            f"dtype {given.dtype}")
    probs = given.astype(np.float64)
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
    probs = given  # scored as given (see keras_eexit.criteria)
    if flops is None:
        raise invalid_value("flops", "cumulative FLOPs per exit (or "
                            "cost=a CostProfile)", flops)
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


def threshold_sweep(probs, labels=None, flops=None, criterion="max_softmax",
                    thresholds=100, cost=None):
    """Accuracy vs mean cost of early exit over a range of thresholds.

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
        criterion: `"max_softmax"`, `"entropy"`, `"patience"`,
            `"static"` or another registered criterion (see
            `exit_indices`), or a `Criterion`.
        thresholds: a count (the criterion's `sweep_values`: evenly
            spaced over [0, 1] in float32 as Kubaty et al.'s
            `torch.linspace(0, 1, 100)` by default, see
            `keras_eexit.criteria.reference_grid`; for `"patience"` every
            patience 0..K-1 and for `"static"` every exit number 1..K,
            whatever the count), an explicit array of values in the
            criterion's range (one per sweep point, the same for every
            exit), or an array `(points, K)` of per-exit thresholds (one
            decision rule per row; not for `"static"`).
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile` (seconds per
            sample; `keras_eexit.inference.measure_costs`), which replaces
            `flops` (a profile of another model is refused). The sweep's
            `cost_unit` says which. A profile with `seconds_per_call`
            charges each stage's fixed cost per call to the batches that
            run it (`CostProfile.mean_cost`).

    Returns:
        A `Sweep`.

    Example:

    ```python
    out = collect(model, splits.test)
    result = threshold_sweep(out, criterion="entropy", thresholds=50)
    result.accuracy, result.mean_flops
    ```
    """
    if hasattr(probs, "probs") and hasattr(probs, "labels"):
        if labels is not None or flops is not None:
            raise ValueError(
                "threshold_sweep(outputs, ...) takes the labels and FLOPs "
                "from the ExitOutputs: pass `criterion=` and `thresholds=` "
                "by keyword."
            )
        outputs, unit = resolve_cost(probs, cost)
        probs, labels, flops = outputs.probs, outputs.labels, outputs.flops
    else:
        flops, unit = resolve_cost_vector(flops, np.shape(probs)[0], cost)
    criterion = criteria_lib.get(criterion)
    probs, labels, flops = _check(probs, labels, flops)
    num_exits = probs.shape[0]
    thresholds, _ = criteria_lib.check_sweep_thresholds(
        criterion, thresholds, num_exits)
    if criterion.integer:
        thresholds = thresholds.astype(np.int64)
    exits = exit_indices(probs, criterion, thresholds)  # (T, N)
    correct = probs.argmax(-1) == labels[None, :]  # (K, N)
    samples = np.arange(probs.shape[1])[None, :]
    accuracy = correct[exits, samples].mean(axis=1)
    mean_flops = mean_costs(flops, exits, check_cost(cost))
    counts = np.stack([(exits == k).mean(axis=1) for k in range(num_exits)],
                      axis=1)
    return Sweep(criterion.name, thresholds, accuracy, mean_flops, counts,
                 cost_unit=unit)


def accuracy_at(result, flops):
    """A sweep's accuracy at given mean FLOPs, as its curve is drawn.

    The sweep points sorted by mean FLOPs, joined by straight lines (as
    `tradeoff_plot` draws them); points of equal cost count with their
    best accuracy. Costs outside the swept range give NaN (no
    extrapolation).

    Args:
        result: a `Sweep`.
        flops: a number or an array of mean FLOPs per sample.

    Returns:
        A float or an array of accuracies (NaN outside the range).

    Example:

    ```python
    # Is the budgeted-batch curve above the global sweep at its budgets?
    curve.accuracy >= accuracy_at(threshold_sweep(test), curve.mean_flops)
    ```
    """
    costs, which = np.unique(np.asarray(result.mean_flops, np.float64),
                             return_inverse=True)
    accuracy = np.full(costs.shape, -np.inf)
    np.maximum.at(accuracy, which.reshape(-1),
                  np.asarray(result.accuracy, np.float64))
    flops = np.asarray(flops, np.float64)
    value = np.interp(flops, costs, accuracy)
    # Relative tolerance: mean FLOPs are sums of float64 averages.
    slack = 1e-9 * max(abs(costs[-1]), 1.0)
    value = np.where((flops < costs[0] - slack) | (flops > costs[-1] + slack),
                     np.nan, value)
    return float(value) if value.ndim == 0 else value


# `sweep` was renamed `threshold_sweep`: as a package attribute the function
# hid this module. For one release the old name, and calling the module,
# still work with a DeprecationWarning.
__getattr__ = deprecated_aliases(__name__, {"sweep": "threshold_sweep"})
deprecated_module_call(__name__, "threshold_sweep")
