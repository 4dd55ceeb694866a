"""Tables read from a sweep: accuracy within FLOPs budgets, per-exit costs.

The budget table follows Kubaty et al.'s reference code
(kamadforge/early-exit-benchmark, `visualize/cost_vs_table.py`
`generate_score_eff_table`, with the seed averaging of
`visualize/__init__.py` `mean_std`):

1. Budgets are fractions of the **base network's** cost: the backbone
   through the final exit without any internal classifier
   (`MultiExitModel.base_flops()`, carried by `collect` in
   `ExitOutputs.base_flops`).
2. Each row walks the sweep from the most eager to the most conservative
   point and stops at the first point whose mean FLOPs exceed the budget;
   the cell is the point before it (NaN when the very first point exceeds
   the budget), or the last point when none does. Mean FLOPs grow along
   a threshold sweep, so this is the last point within the budget.
3. "Max" is the most conservative point of the sweep (threshold 1.0 for
   max-softmax: every sample leaves at the final exit). It can be *below*
   the 100% column: the final exit costs more than the base network
   (it also pays for every internal classifier), and an earlier exit can
   be right where the final one is wrong.
4. Over several seeds the curves (accuracy and mean FLOPs per threshold)
   are averaged first, then read; the spread reported next to a cell is
   the standard deviation (ddof = 1) over seeds of the accuracy at the
   threshold the mean curve picked.
5. Each seed's mean FLOPs are rounded to float32 before the seeds are
   averaged (in float64) and compared with the budget: the reference
   stores them with `torch.tensor(...)` (float32 by default) and averages
   with `.double()` (`visualize/__init__.py` `mean_std`). A mean cost
   within one float32 step above a budget therefore fits it, as in the
   reference (with float64 costs the cell would be NaN or the previous
   point). Accuracies are averaged in float64 (the reference's float32
   mean differs by less than 1e-7).

A consequence of rule 2 worth knowing: a row can *decrease* as the budget
grows. A larger budget admits a more conservative threshold, which sends
more samples to later exits; when a later exit is wrong on samples an
earlier exit got right ("overthinking", Kaya et al. 2019), accuracy drops.
The table reports that honestly instead of taking the best point within
the budget (`best_within_budget` gives that reading).
"""

import numbers

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import FLOPS
from keras_eexit.evaluation.cost import check_cost
from keras_eexit.evaluation.cost import format_cost
from keras_eexit.evaluation.cost import resolve_cost
from keras_eexit.utils.validation import invalid_value

DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def conservative_order(result):
    """Sweep indices from the most eager to the most conservative point.

    "Conservative" means samples leave later, so mean FLOPs can only grow
    along this order: the criterion's `conservative_order` (ascending
    thresholds for `"max_softmax"`, `"patience"` and `"static"`,
    descending for `"entropy"`: a larger entropy threshold lets more
    samples out early); sweeps over per-exit threshold rows (`(T, K)`
    thresholds) by increasing mean FLOPs. An object without
    `criterion`/`thresholds`, or naming no registered criterion, keeps
    ascending thresholds (or its own order).

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
    if keys.ndim == 2:  # per-exit rows: no single key, order by cost
        return np.argsort(np.asarray(result.mean_flops, np.float64),
                          kind="stable")
    name = getattr(result, "criterion", None)
    criterion = criteria_lib.CRITERIA.get(name) or criteria_lib.get(
        criteria_lib.DEFAULT)  # ascending thresholds
    return criterion.conservative_order(keys)


def reference_index(walk_flops, limit):
    """The reference's reading of one budget row, on a walk of the sweep.

    A transcription of the loop in `generate_score_eff_table`
    (`visualize/cost_vs_table.py`): the point before the first one whose
    cost exceeds `limit` (strict `>`), the last point when none does, and
    `None` when the first point already exceeds it.

    Args:
        walk_flops: mean FLOPs per sweep point, most eager first.
        limit: the budget in FLOPs (may be `inf`).

    Returns:
        An index into `walk_flops`, or `None`.
    """
    over = np.nonzero(np.asarray(walk_flops, dtype=np.float64) > limit)[0]
    if over.size == 0:
        return len(walk_flops) - 1
    return int(over[0]) - 1 if over[0] > 0 else None


def _check_fractions(fractions):
    fractions = tuple(fractions)
    if not fractions or any(
        isinstance(f, bool) or not isinstance(f, numbers.Real)
        or not np.isfinite(f) or f <= 0 for f in fractions
    ):
        raise invalid_value("fractions", "positive, finite numbers",
                            fractions)
    return fractions


def _denominator(flops, base_flops):
    """The base cost budgets are fractions of (see `budget_table`)."""
    if base_flops is None and hasattr(flops, "flops") and not isinstance(
            flops, np.ndarray):
        base_flops = getattr(flops, "base_flops", None)
        flops = flops.flops
    if base_flops is None:
        if flops is None:
            raise invalid_value(
                "base_flops", "the base network's FLOPs "
                "(model.base_flops()), or pass the ExitOutputs of collect",
                None)
        flops = np.asarray(flops, dtype=np.float64).reshape(-1)
        if flops.size == 0 or not np.all(np.isfinite(flops)):
            raise invalid_value("flops", "finite cumulative FLOPs per exit",
                                flops.tolist())
        base_flops = flops[-1]
    if (isinstance(base_flops, bool) or not isinstance(
            base_flops, (numbers.Real, np.floating, np.integer))
            or not np.isfinite(base_flops) or base_flops <= 0):
        raise invalid_value("base_flops", "a positive, finite FLOPs count",
                            base_flops)
    return float(base_flops)


def _check_budgets(budgets):
    budgets = tuple(np.asarray(budgets, dtype=np.float64).reshape(-1))
    if not budgets or not all(np.isfinite(b) and b > 0 for b in budgets):
        raise invalid_value("budgets", "positive, finite mean costs per "
                            "sample (in the sweep's unit)", budgets)
    return budgets


def _sweep_unit(result):
    results = result if isinstance(result, (list, tuple)) else [result]
    units = {getattr(r, "cost_unit", FLOPS) for r in results}
    if len(units) > 1:
        raise ValueError(
            "The sweeps mix cost units "
            f"({sorted(units)}): sweep every seed with the same `cost=`.")
    return units.pop() if units else FLOPS


def _limits(result, flops, base_flops, fractions, budgets, cost):
    """`[(column, limit)]`: the budgets, in the sweep's unit.

    Absolute `budgets` are named with their unit ("3 ms", "12 MFLOPs").
    Otherwise fractions of the base cost (`_denominator`); with a
    `CostProfile` (`cost=`) the base is the profile's final exit (the
    measured path, every internal classifier included) unless
    `base_flops` is given, and a sweep in another unit is refused.
    """
    unit = _sweep_unit(result)
    if budgets is not None:
        return [(format_cost(b, unit), b) for b in _check_budgets(budgets)]
    fractions = _check_fractions(fractions)
    profile = check_cost(cost)
    if hasattr(flops, "exit_names"):  # ExitOutputs
        flops, base_unit = resolve_cost(flops, profile)
    elif profile is not None:
        base_unit = "s"
        if base_flops is None:
            base_flops = profile.seconds_per_sample[-1]
    else:
        base_unit = unit  # arrays and numbers: in the sweep's unit
    if base_unit != unit:
        raise ValueError(
            f"The sweep's costs are in {unit} and the budgets' base in "
            f"{base_unit}: pass the same `cost=` to threshold_sweep and the "
            "table.")
    base = _denominator(flops, base_flops)
    return [(f"{f:.0%}", f * base) for f in fractions]


def _curves(results):
    """`(thresholds-sorted walk, accuracies (S, T), FLOPs (S, T))`.

    The FLOPs are each seed's rounded to float32 (module docstring, rule
    5).
    """
    single = not isinstance(results, (list, tuple))
    results = [results] if single else list(results)
    if not results:
        raise invalid_value("result", "a Sweep or a non-empty list of "
                            "Sweeps (one per seed)", results)
    accuracy, flops = [], []
    for r in results:
        if not (hasattr(r, "accuracy") and hasattr(r, "mean_flops")):
            raise invalid_value("result", "a Sweep or a list of Sweeps",
                                type(r).__name__)
        a = np.asarray(r.accuracy, dtype=np.float64).reshape(-1)
        # float32 first, as the reference's `torch.tensor` (rule 5).
        f = np.asarray(r.mean_flops, dtype=np.float64).reshape(-1).astype(
            np.float32).astype(np.float64)
        if a.size == 0 or a.shape != f.shape:
            raise invalid_value(
                "result", "a non-empty sweep (accuracy and mean_flops of the "
                "same length)", f"{a.size} accuracies, {f.size} FLOPs values")
        accuracy.append(a)
        flops.append(f)
    first = results[0]
    for r, a in zip(results[1:], accuracy[1:]):
        same = a.shape == accuracy[0].shape and getattr(
            r, "criterion", None) == getattr(first, "criterion", None)
        t0, t1 = (getattr(first, "thresholds", None),
                  getattr(r, "thresholds", None))
        if same and t0 is not None and t1 is not None:
            same = np.array_equal(np.asarray(t0, dtype=np.float64),
                                  np.asarray(t1, dtype=np.float64))
        if not same:
            raise ValueError(
                "budget_table: the seeds' sweeps differ (criterion or "
                "thresholds); curves can only be averaged per threshold "
                "when every seed was swept over the same thresholds.")
    order = conservative_order(first)
    return order, np.stack(accuracy), np.stack(flops)


def budget_table(result, flops=None, base_flops=None,
                 fractions=DEFAULT_FRACTIONS, return_std=False, cost=None,
                 budgets=None):
    """Accuracy within fractions of the base network's FLOPs, and "max".

    Kubaty et al.'s Table 1 as their code computes it (see the module
    docstring for the rules and the reference lines): budgets are
    fractions of the base network's cost; each cell is the last sweep
    point, walking from the most eager to the most conservative threshold
    (`conservative_order`), before the mean FLOPs first exceed the budget
    (NaN when the first point already does); `"max"` is the most
    conservative point (threshold 1.0). With several seeds the curves are
    averaged per threshold first and then read.

    Args:
        result: a `Sweep`, or a list of `Sweep`s (one per seed, same
            criterion and thresholds).
        flops: an `ExitOutputs` (its `base_flops` is the denominator), or
            `(K,)` cumulative FLOPs per exit (then the last value is the
            denominator unless `base_flops` is given: the final exit's
            cost *including* every internal classifier, which is not the
            reference's denominator), or None with `base_flops`.
        base_flops: the base network's FLOPs per sample
            (`model.base_flops()`); overrides `flops`. Use the same FLOP
            convention as the sweep's mean FLOPs.
        fractions: budget fractions, each in (0, ∞).
        return_std: also return the standard deviation (ddof = 1) over
            seeds of the accuracy at each cell's threshold (0 for one
            seed, NaN where the cell is NaN).
        cost: `None` (FLOPs, the papers' table) or the `CostProfile` the
            sweep was made with (`threshold_sweep(..., cost=profile)`):
            the fractions are then of the profile's final exit (measured
            seconds per sample), unless `base_flops` gives the base in
            seconds. A sweep in another unit than the base is refused.
        budgets: absolute mean costs per sample in the sweep's unit
            (seconds or FLOPs) instead of `fractions`; the columns name
            them with their unit (`"3 ms"`, `"12.5 MFLOPs"`).

    Returns:
        A dict `{"25%": acc, "50%": ..., "100%": ..., "max": acc}` (NaN
        where no sweep point fits the budget), or `(table, stds)` with
        `return_std=True`.

    Example:

    ```python
    outputs = collect(model, splits.test)   # carries model.base_flops()
    result = threshold_sweep(outputs)
    budget_table(result, outputs)
    # {'25%': 0.71, '50%': 0.93, '75%': 0.97, '100%': 0.98, 'max': 0.97}
    budget_table([threshold_sweep(o) for o in outputs_per_seed],
                 base_flops=base)
    ```

    References:
        - [Kubaty et al. Joint or Disjoint: Mixing Training Regimes for
            Early-Exit Models](https://github.com/kamadforge/early-exit-benchmark)
            (Table 1; `visualize/cost_vs_table.py`)
    """
    limits = _limits(result, flops, base_flops, fractions, budgets, cost)
    order, accuracy, mean_flops = _curves(result)
    mean_accuracy = accuracy.mean(0)[order]
    walk = mean_flops.mean(0)[order]
    if len(accuracy) > 1:
        spread = accuracy.std(0, ddof=1)[order]
    else:
        spread = np.zeros_like(mean_accuracy)
    table, stds = {}, {}
    for key, limit in limits + [("max", np.inf)]:
        index = reference_index(walk, limit)
        table[key] = (float("nan") if index is None
                      else float(mean_accuracy[index]))
        stds[key] = (float("nan") if index is None
                     else float(spread[index]))
    return (table, stds) if return_std else table


def budget_table_per_seed(results, flops=None, base_flops=None,
                          fractions=DEFAULT_FRACTIONS, cost=None,
                          budgets=None):
    """One budget table per seed, as arrays: the values for statistics.

    `budget_table` averages the curves before reading them (the
    reference's table); tests across regimes need one value per seed, so
    this reads each seed's own curve.

    Args:
        results: a list of `Sweep`s (one per seed).
        flops: see `budget_table`.
        base_flops: see `budget_table`.
        fractions: see `budget_table`.
        cost: see `budget_table`.
        budgets: see `budget_table`.

    Returns:
        `{column: np.ndarray of per-seed values}` with the columns of
        `budget_table`.
    """
    results = list(results) if isinstance(results, (list, tuple)) else [
        results]
    tables = [budget_table(r, flops, base_flops, fractions, cost=cost,
                           budgets=budgets) for r in results]
    return {key: np.array([t[key] for t in tables]) for key in tables[0]}


def best_within_budget(result, flops=None, base_flops=None,
                       fractions=DEFAULT_FRACTIONS, cost=None, budgets=None):
    """The best accuracy of any sweep point within each budget.

    Not the reference's reading (`budget_table`): the most accurate
    threshold whose mean FLOPs fit, as an oracle that picks the threshold
    on the test set would report. `"best"` is the best accuracy over the
    whole sweep (this library's former "max" column).

    Args:
        result: a `Sweep` or a list of per-seed `Sweep`s (averaged per
            threshold first).
        flops: see `budget_table`.
        base_flops: see `budget_table`.
        fractions: see `budget_table`.
        cost: see `budget_table`.
        budgets: see `budget_table`.

    Returns:
        A dict `{"25%": acc, ..., "best": acc}` (NaN where nothing fits).
    """
    limits = _limits(result, flops, base_flops, fractions, budgets, cost)
    _, accuracy, mean_flops = _curves(result)
    accuracy, mean_flops = accuracy.mean(0), mean_flops.mean(0)
    table = {}
    for key, limit in limits:
        fits = mean_flops <= limit
        table[key] = (float(accuracy[fits].max()) if fits.any()
                      else float("nan"))
    table["best"] = float(accuracy.max())
    return table


def anytime_table(outputs, cost=None):
    """Per exit: parameters, FLOPs (also in MFLOPs) and accuracy.

    The layout of the damping paper's Table 1 (static exits).

    Args:
        outputs: an `ExitOutputs` from `collect` (in FLOPs).
        cost: optional `CostProfile` of the model: each row also gets its
            measured cumulative time per sample, `ms`.

    Returns:
        A list of dicts with keys `exit`, `params`, `flops`, `mflops`,
        (with `cost`: `ms`) and `accuracy`.
    """
    accuracy = outputs.accuracy()
    measured = None
    if check_cost(cost) is not None:
        measured, _ = resolve_cost(outputs, cost)
    rows = []
    for k, name in enumerate(outputs.exit_names):
        row = {"exit": name, "params": int(outputs.params[k]),
               "flops": int(outputs.flops[k]),
               "mflops": float(outputs.flops[k]) / 1e6}
        if measured is not None:
            row["ms"] = float(measured.flops[k]) * 1e3
        rows.append({**row, "accuracy": float(accuracy[k])})
    return rows
