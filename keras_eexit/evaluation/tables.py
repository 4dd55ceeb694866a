"""Tables read from a sweep: accuracy within FLOPs budgets, per-exit costs."""

import numbers

import numpy as np

from keras_eexit.utils.validation import invalid_value


def conservative_order(result):
    """Sweep indices from the most eager to the most conservative point.

    "Conservative" means samples leave later, so mean FLOPs can only grow
    along this order: ascending thresholds for `"max_softmax"`,
    `"patience"` and `"static"`, descending thresholds for `"entropy"`
    (a larger entropy threshold lets more samples out early). An object
    without `criterion`/`thresholds` keeps its own order.

    Args:
        result: a `Sweep` (or any object with `accuracy` and `mean_flops`).

    Returns:
        An int array, a permutation of `range(len(result.accuracy))`.
    """
    count = len(np.asarray(result.accuracy))
    thresholds = getattr(result, "thresholds", None)
    if thresholds is None or len(thresholds) != count:
        return np.arange(count)
    keys = np.asarray(thresholds, dtype=np.float64)
    if getattr(result, "criterion", None) == "entropy":
        keys = -keys
    return np.argsort(keys, kind="stable")


def budget_table(result, flops, fractions=(0.25, 0.5, 0.75, 1.0)):
    """Accuracy within fractions of the full model's FLOPs, and the maximum.

    Kubaty et al.'s Table 1 convention (`eval.py`): for each budget, the
    LAST sweep point whose mean FLOPs is within `fraction × FLOPs of the
    final exit`, walking the sweep from the most eager to the most
    conservative threshold (see `conservative_order`; for max-softmax
    that is increasing threshold, as in their `linspace(0, 1, 100)`
    loop). No interpolation between sweep points, so a coarse sweep reads
    lower than the curve through it. `"max"` is the best accuracy over the
    whole sweep, with no FLOPs limit.

    Args:
        result: a `Sweep`.
        flops: `(K,)` cumulative FLOPs per exit (or an `ExitOutputs`); the
            last value is the full model's cost.
        fractions: budget fractions, each in (0, ∞).

    Returns:
        A dict `{"25%": acc, "50%": ..., "100%": ..., "max": acc}` (NaN where
        no sweep point fits the budget).

    Example:

    ```python
    result = sweep(outputs)
    budget_table(result, outputs.flops)
    # {'25%': 0.71, '50%': 0.93, '75%': 0.97, '100%': 0.98, 'max': 0.98}
    ```
    """
    if hasattr(flops, "flops") and not isinstance(flops, np.ndarray):
        flops = flops.flops
    flops = np.asarray(flops, dtype=np.float64).reshape(-1)
    if flops.size == 0 or not np.all(np.isfinite(flops)):
        raise invalid_value("flops", "finite cumulative FLOPs per exit",
                            flops.tolist())
    fractions = tuple(fractions)
    if not fractions or any(
        isinstance(f, bool) or not isinstance(f, numbers.Real)
        or not np.isfinite(f) or f <= 0 for f in fractions
    ):
        raise invalid_value("fractions", "positive numbers", fractions)
    accuracy = np.asarray(result.accuracy, dtype=np.float64)
    mean_flops = np.asarray(result.mean_flops, dtype=np.float64)
    if accuracy.size == 0 or accuracy.shape != mean_flops.shape:
        raise invalid_value(
            "result", "a non-empty sweep (accuracy and mean_flops of the "
            "same length)", f"{accuracy.size} accuracies, "
            f"{mean_flops.size} FLOPs values")
    order = conservative_order(result)
    full = float(flops[-1])
    table = {}
    for fraction in fractions:
        fits = mean_flops[order] <= fraction * full * (1 + 1e-12) + 1e-9
        within = order[np.nonzero(fits)[0]]
        table[f"{fraction:.0%}"] = (float(accuracy[within[-1]])
                                    if within.size else float("nan"))
    table["max"] = float(accuracy.max())
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
