"""Exit policies read from a VALIDATION split; the budgeted-batch curve.

Every function here calibrates on `validation` outputs only (an
`ExitOutputs` of `keras_eexit.evaluation.collect` on held-out data); the
curve function takes the test outputs separately and only applies the
thresholds found on validation to them.
"""

import dataclasses
import functools
import inspect
import math
import warnings

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import FLOPS
from keras_eexit.evaluation.cost import check_budget_value
from keras_eexit.evaluation.cost import check_cost
from keras_eexit.evaluation.cost import resolve_cost
from keras_eexit.inference.policy import ExitPolicy
from keras_eexit.inference.policy import check_temperatures
from keras_eexit.inference.policy import scale_probabilities
from keras_eexit.inference.threshold_search import search_thresholds
from keras_eexit.utils.validation import invalid_value

MSDNET_P = tuple(range(1, 40))
"""MSDNet's `adaptive_inference.py` budgets: q = p / 20 for p = 1..39."""

MIN_CALIBRATION_SAMPLES = 30
"""The fewest validation samples a calibration accepts, at every exit.

Every exit's threshold and temperature is fitted to the validation samples
scored at that exit (all N of them: `collect` runs every exit). Below 30,
one sample moves an exit's validation accuracy by more than 3 points,
three times the 1-point drop `accuracy_drop_policy` keeps by default, so
the search fits noise; on 1 or 2 samples every exit is often right on all
of them, the cheapest policy then sends everything to exit 1 (thresholds
0) and temperature scaling runs to its lower bound (T ≈ 0.05), which
makes test calibration worse. For comparison, Guo et al. (2017, "On
Calibration of Modern Neural Networks", Sec. 5) fit temperatures on 5,000
(CIFAR) to 25,000 (ImageNet) validation images. A test split may be of any
size."""


def _cost_aware(function):
    """Labels what `function` returns with the unit of its `cost=`.

    The function resolves `cost=` itself (`resolve_cost`, first lines);
    this adds the unit afterwards, so the search in its body never deals
    with units: a returned `Sweep` gets `cost_unit`; a returned
    `ExitPolicy` chosen on measured seconds gets `cost_unit`, `cost` (the
    profile in words), `validation_seconds` and
    `global_validation_seconds` in its metadata in place of the `_flops`
    keys.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        profile = check_cost(bound.arguments.get("cost"))
        unit = "s" if profile is not None else getattr(
            bound.arguments.get("validation"), "cost_unit", FLOPS)
        result = function(*args, **kwargs)
        if unit == FLOPS:
            return result
        if isinstance(result, ExitPolicy):
            metadata = dict(result.metadata)
            for key in ("validation_flops", "global_validation_flops"):
                if key in metadata:
                    metadata[key.replace("_flops", "_seconds")] = (
                        metadata.pop(key))
            metadata["cost_unit"] = unit
            if profile is not None:
                metadata["cost"] = profile.describe()
            return dataclasses.replace(result, metadata=metadata)
        return dataclasses.replace(result, cost_unit=unit)
    return wrapper


def _check_outputs(outputs, argument):
    for attribute in ("probs", "labels", "flops"):
        if not hasattr(outputs, attribute):
            raise invalid_value(
                argument, "an ExitOutputs (keras_eexit.evaluation.collect "
                "on a validation split)", type(outputs).__name__)
    if argument == "validation":
        check_calibration_samples(outputs)
    return outputs


def check_calibration_samples(validation):
    """Refuses validation outputs of fewer than `MIN_CALIBRATION_SAMPLES`.

    Args:
        validation: `ExitOutputs` of a validation split.

    Raises:
        ValueError: naming the number of samples and the minimum.
    """
    count = int(np.shape(validation.probs)[1])
    if count < MIN_CALIBRATION_SAMPLES:
        raise ValueError(
            "Invalid value received for argument `validation`. Expected "
            f"the outputs of at least {MIN_CALIBRATION_SAMPLES} validation "
            "samples (every exit's thresholds and temperature are fitted "
            "to them; fewer fit noise: see keras_eexit.inference."
            "calibration.MIN_CALIBRATION_SAMPLES). "
            f"Received: validation with {count} sample(s)."
        )


def _continuous(criterion):
    """The `Criterion` of `criterion`, refused unless its score is
    continuous (calibration ranks samples by it)."""
    criterion = criteria_lib.get(criterion)
    if not criterion.continuous:
        names = ", ".join(repr(n) for n in criteria_lib.continuous_names())
        raise invalid_value(
            "criterion", f"a criterion with a continuous score ({names}: "
            "calibration ranks samples by it)", criterion.name)
    return criterion


def _confidence_order(criterion, scores):
    """Per exit: sample indices, most confident first."""
    if criterion.higher_is_confident:
        return np.argsort(-scores, axis=1, kind="stable")
    return np.argsort(scores, axis=1, kind="stable")


def _eager(criterion, num_exits):
    """The threshold at which the most samples exit (max-softmax 0,
    entropy 1)."""
    return np.float32(criterion.eager_threshold(num_exits))


def geometric_exit_shares(q, num_exits):
    """MSDNet's exit prior: shares proportional to `q^k`, k = 1..K."""
    shares = np.power(float(q), np.arange(1, num_exits + 1))
    return shares / shares.sum()


def budgeted_batch_thresholds(validation, q, criterion="max_softmax",
                              temperatures=None):
    """Per-exit thresholds for a geometric exit schedule (MSDNet).

    kalviny/MSDNet-PyTorch `adaptive_inference.py`,
    `dynamic_eval_find_threshold`: exit `k` should take a share
    `q^k / Σ_j q^j` of the samples; walking the validation samples from
    the most confident at exit `k` down, among those no earlier exit took,
    the threshold is the score of the `floor(N · share_k)`-th one (no
    sample leaves at `k` when that count is 0 or is never reached). MSDNet
    exits on `confidence >= T`; with a strict `>` (max-softmax) the
    threshold is the next float32 below `T`, which takes the same samples.
    Criteria exiting on `<=` (entropy) or `>=` use `T` itself.

    Args:
        validation: `ExitOutputs` of a validation split.
        q: the geometric ratio (> 0; MSDNet uses p / 20, p = 1..39).
        criterion: a criterion with a continuous score (`"max_softmax"`,
            `"entropy"` or a registered one: `Criterion.continuous`).
        temperatures: optional per-exit temperatures (applied first).

    Returns:
        An `ExitPolicy`.
    """
    validation = _check_outputs(validation, "validation")
    criterion = _continuous(criterion)
    if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)) \
            or not math.isfinite(q) or q <= 0:
        raise invalid_value("q", "a positive number", q)
    probs = scale_probabilities(validation.probs, temperatures)
    num_exits, num_samples = probs.shape[:2]
    scores = criterion.scores(probs)  # (K, N) float32
    order = _confidence_order(criterion, scores)
    shares = geometric_exit_shares(q, num_exits)
    never = np.float32(criterion.never_exit(num_exits))
    thresholds = np.full(num_exits, never, np.float32)
    taken = np.zeros(num_samples, bool)
    for k in range(num_exits - 1):
        wanted = math.floor(num_samples * shares[k])
        free = order[k][~taken[order[k]]]
        if wanted >= 1 and len(free) >= wanted:
            value = scores[k, free[wanted - 1]]
            if criterion.comparison == ">":
                value = np.nextafter(value, np.float32(-np.inf))
                low = criterion.threshold_range(num_exits)[0]
                value = max(value, np.float32(low))
            thresholds[k] = value
        taken |= criterion.accepts(scores[k], thresholds[k])
    thresholds[-1] = _eager(criterion, num_exits)  # the last takes everyone
    return ExitPolicy(criterion.name, thresholds, temperatures=temperatures,
                      metadata={"method": "budgeted_batch", "q": float(q)})


def _consistent(validation, test):
    if validation.probs.shape[0] != test.probs.shape[0] or (
            validation.probs.shape[-1] != test.probs.shape[-1]):
        raise ValueError(
            "The validation and test outputs disagree: "
            f"{validation.probs.shape[0]} exits × "
            f"{validation.probs.shape[-1]} classes vs "
            f"{test.probs.shape[0]} exits × {test.probs.shape[-1]} "
            "classes. Calibrate on a split of the same task and model.")


@_cost_aware
def budgeted_batch_curve(validation, test, criterion="max_softmax",
                         p_values=MSDNET_P, temperatures=None, cost=None):
    """The budgeted-batch curve: test accuracy vs mean cost (MSDNet).

    For each `p`, thresholds come from `validation` with
    `budgeted_batch_thresholds(q=p / 20)` and are applied to `test`
    (`dynamic_eval_with_threshold`). The test split is never read to
    choose a threshold.

    Args:
        validation: `ExitOutputs` of the validation split.
        test: `ExitOutputs` of the test split.
        criterion: a criterion with a continuous score (see
            `budgeted_batch_thresholds`).
        p_values: MSDNet's 1..39 by default.
        temperatures: optional per-exit temperatures.
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile`
            (`keras_eexit.inference.measure_costs`): budgets and costs are
            then seconds per sample.

    Returns:
        A `keras_eexit.evaluation.Sweep` whose `thresholds` are the
        `(len(p_values), K)` per-exit rows (draw it with `tradeoff_plot`
        next to the global-threshold sweep, or with `budgeted_batch_plot`).
    """
    from keras_eexit.evaluation import threshold_sweep as sweep

    profile = check_cost(cost)
    validation, _ = resolve_cost(validation, profile)
    test, _ = resolve_cost(test, profile)
    validation = _check_outputs(validation, "validation")
    test = _check_outputs(test, "test")
    _consistent(validation, test)
    rows = np.stack([
        budgeted_batch_thresholds(validation, p / 20, criterion,
                                  temperatures).threshold_array()
        for p in p_values])
    probs = scale_probabilities(test.probs, temperatures)
    return sweep(probs, test.labels, test.flops, criterion=criterion,
                 thresholds=rows, cost=profile)


def _check_budget(budget, flops, unit=FLOPS):
    return check_budget_value(budget, flops, unit)


def _evaluate(policy, outputs, profile):
    """`policy.evaluate` on outputs whose cost is resolved already, the
    profile's fixed costs per call charged (`CostProfile.mean_cost`)."""
    from keras_eexit.evaluation import threshold_sweep as sweep

    return sweep(policy.probabilities(outputs.probs), outputs.labels,
                 outputs.flops, criterion=policy.criterion,
                 thresholds=policy.threshold_array()[None], cost=profile)


@_cost_aware
def budgeted_batch_policy(validation, budget, criterion="max_softmax",
                          temperatures=None, num_q=200, cost=None):
    """The budgeted-batch policy whose validation cost fits `budget`.

    Scans `num_q` geometric ratios q in [0.01, 4] and keeps the policy
    with the largest mean validation cost within `budget` (more compute,
    usually more accuracy).

    Args:
        validation: `ExitOutputs` of the validation split.
        budget: the target mean cost per sample (at least the first
            exit's cost): FLOPs, or seconds with a measured `cost`.
        criterion: a criterion with a continuous score (see
            `budgeted_batch_thresholds`).
        temperatures: optional per-exit temperatures.
        num_q: number of ratios scanned.
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile`
            (`keras_eexit.inference.measure_costs`): budgets and costs are
            then seconds per sample.

    Returns:
        An `ExitPolicy` (its metadata holds q, the validation accuracy and
        mean FLOPs).
    """
    profile = check_cost(cost)
    validation, unit = resolve_cost(validation, profile)
    validation = _check_outputs(validation, "validation")
    flops = np.asarray(validation.flops, dtype=np.float64)
    _check_budget(budget, flops, unit)
    best = None
    for q in np.geomspace(0.01, 4.0, num_q):
        policy = budgeted_batch_thresholds(validation, float(q), criterion,
                                           temperatures)
        result = _evaluate(policy, validation, profile)
        cost = float(result.mean_flops[0])
        if cost <= budget * (1 + 1e-12) and (best is None
                                              or cost > best[0]):
            best = (cost, float(result.accuracy[0]), policy)
    if best is None:  # even the most eager schedule exceeds the budget
        policy = ExitPolicy(criterion, _eager(criteria_lib.get(criterion),
                                              flops.size),
                            num_exits=flops.size, temperatures=temperatures)
        result = _evaluate(policy, validation, profile)
        best = (float(result.mean_flops[0]), float(result.accuracy[0]),
                policy)
    cost, accuracy, policy = best
    metadata = dict(policy.metadata, budget=float(budget),
                    validation_accuracy=accuracy, validation_flops=cost)
    return ExitPolicy(policy.criterion, policy.thresholds,
                      temperatures=policy.temperatures, metadata=metadata)


def _per_exit_candidates(criterion, probs, candidates, grid):
    """Thresholds to try at each exit in a coordinate search.

    The common grid plus `grid` quantiles of the exit's validation scores
    (cuts where the samples are, not only where the grid is).
    """
    scores = criterion.scores(probs)
    levels = np.linspace(0.0, 1.0, grid)
    return [np.unique(np.concatenate([
        candidates, np.quantile(scores[k], levels).astype(np.float32)]))
        for k in range(probs.shape[0])]


@_cost_aware
def accuracy_drop_policy(validation, max_drop=0.01, criterion="max_softmax",
                         temperatures=None, grid=100, passes=4, cost=None):
    """The cheapest per-exit thresholds within `max_drop` of the final exit.

    Validation accuracy must stay at least `final exit accuracy -
    max_drop`. The search starts from the cheapest single threshold of a
    `grid`-point sweep that meets the target (so it is never costlier than
    the global-threshold sweep on validation) and then lowers each exit's
    threshold in turn (coordinate descent over the grid, `passes` rounds)
    while the target still holds.

    Args:
        validation: `ExitOutputs` of the validation split.
        max_drop: allowed accuracy loss, a fraction in [0, 1].
        criterion: a criterion with a continuous score (see
            `budgeted_batch_thresholds`).
        temperatures: optional per-exit temperatures.
        grid: threshold candidates per exit (`reference_grid(grid)`).
        passes: coordinate-descent rounds.
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile`
            (`keras_eexit.inference.measure_costs`): budgets and costs are
            then seconds per sample.

    Returns:
        An `ExitPolicy` (metadata: target, validation accuracy and cost).
    """
    from keras_eexit.evaluation import threshold_sweep as sweep

    profile = check_cost(cost)
    validation, _ = resolve_cost(validation, profile)
    validation = _check_outputs(validation, "validation")
    if isinstance(max_drop, bool) or not isinstance(
            max_drop, (int, float, np.floating)) or not 0 <= max_drop <= 1:
        raise invalid_value("max_drop", "a fraction between 0 and 1",
                            max_drop)
    crit = _continuous(criterion)
    probs = scale_probabilities(validation.probs, temperatures)
    labels, flops = validation.labels, validation.flops
    num_exits = probs.shape[0]
    target = (probs[-1].argmax(-1) == labels).mean() - max_drop - 1e-12
    candidates = crit.sweep_values(grid, num_exits)
    overall = sweep(probs, labels, flops, crit.name, candidates,
                    cost=profile)
    ok = overall.accuracy >= target
    start = int(np.argmin(np.where(ok, overall.mean_flops, np.inf)))
    current = np.full(num_exits, candidates[start], np.float32)
    cost = overall.mean_flops[start]
    per_exit = _per_exit_candidates(crit, probs, candidates, grid)
    for _ in range(passes):
        improved = False
        for k in range(num_exits - 1):
            rows = np.repeat(current[None], len(per_exit[k]), 0)
            rows[:, k] = per_exit[k]
            result = sweep(probs, labels, flops, crit.name, rows,
                           cost=profile)
            fits = result.accuracy >= target
            costs = np.where(fits, result.mean_flops, np.inf)
            j = int(np.argmin(costs))
            if costs[j] < cost - 1e-9:
                current, cost, improved = rows[j], costs[j], True
        if not improved:
            break
    final = sweep(probs, labels, flops, crit.name, current[None],
                  cost=profile)
    return ExitPolicy(crit.name, current, temperatures=temperatures,
                      metadata={"method": "accuracy_drop",
                                "max_drop": float(max_drop),
                                "validation_accuracy":
                                    float(final.accuracy[0]),
                                "validation_flops":
                                    float(final.mean_flops[0])})


def _warn_search_arguments(**given):
    """`grid=`/`passes=` of the former grid search: accepted for one
    release, with no effect (the search tries every validation score)."""
    for name, value in given.items():
        if value is not None:
            warnings.warn(
                f"`{name}=` of best_accuracy_policy/best_accuracy_curve is "
                "deprecated and has no effect: the search tries every "
                "validation score at every exit (keras_eexit.inference."
                "search_thresholds). Remove the argument.",
                DeprecationWarning, stacklevel=3)


@_cost_aware
def best_accuracy_policy(validation, budget, criterion="max_softmax",
                         temperatures=None, search="per_exit", grid=None,
                         passes=None, cost=None):
    """The per-exit thresholds of highest validation accuracy in a budget.

    Where MSDNet's budgeted batch classification fixes how many samples
    each exit takes (a geometric schedule, `budgeted_batch_policy`), this
    searches the thresholds themselves
    (`keras_eexit.inference.threshold_search.search_thresholds`): from the
    exact best global threshold within the budget (every distinct
    validation score tried), Lagrangian proposals, coordinate ascent over
    every validation score at each exit and moves of two exits at once,
    keeping a change that raises validation accuracy (or keeps it with
    more of the budget spent) within the budget. On validation it is
    never below the best global threshold, and strictly above it whenever
    one exit's threshold alone can do better; a network with a weak early
    exit (which the geometric schedule must feed) gains most. Our
    extension of MSDNet's calibration (docs/serving.md), not a paper's
    procedure.

    Args:
        validation: `ExitOutputs` of the validation split.
        budget: the target mean cost per sample (at least the first
            exit's cost): FLOPs, or seconds with a measured `cost`
            (`budget=0.003`: 3 ms per sample).
        criterion: a criterion with a continuous score (see
            `budgeted_batch_thresholds`).
        temperatures: optional per-exit temperatures.
        search: `"per_exit"` (the search above) or `"global"` (the best
            single threshold within the budget, the same at every exit:
            the reference the per-exit search is measured against).
        grid, passes: deprecated, no effect (the former grid search's).
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile`
            (`keras_eexit.inference.measure_costs`): budgets and costs are
            then seconds per sample.

    Returns:
        An `ExitPolicy` (metadata: budget, search, validation accuracy and
        FLOPs, and the best global threshold's).

    Example:

    ```python
    policy = best_accuracy_policy(validation, 0.5 * model.base_flops())
    probs, exit_index, flops = predict_early_exit(model, x, policy=policy)
    # Within 3 ms per sample, as measured on LiteRT at batch 1:
    profile = measure_costs(model, runtime="litert", batch_size=1)
    policy = best_accuracy_policy(validation, 0.003, cost=profile)
    ```
    """
    from keras_eexit.evaluation import threshold_sweep as sweep

    _warn_search_arguments(grid=grid, passes=passes)
    profile = check_cost(cost)
    validation, unit = resolve_cost(validation, profile)
    budget = check_budget_value(budget, validation.flops, unit)
    validation = _check_outputs(validation, "validation")
    flops = np.asarray(validation.flops, dtype=np.float64)
    budget = _check_budget(budget, flops)
    crit = _continuous(criterion)
    probs = scale_probabilities(validation.probs, temperatures)
    labels = np.asarray(validation.labels).reshape(-1)
    calls = None if profile is None else profile.seconds_per_call
    found = search_thresholds(
        crit.scores(probs), probs.argmax(-1) == labels[None], flops, budget,
        crit, search=search, call_costs=calls,
        batch_size=None if calls is None else profile.batch_size)
    result = sweep(probs, labels, flops, crit.name, found.thresholds[None],
                   cost=profile)
    return ExitPolicy(crit.name, found.thresholds, temperatures=temperatures,
                      metadata={"method": "best_accuracy",
                                "search": search,
                                "budget": budget,
                                "validation_accuracy":
                                    float(result.accuracy[0]),
                                "validation_flops":
                                    float(result.mean_flops[0]),
                                "global_threshold": found.global_threshold,
                                "global_validation_accuracy":
                                    found.global_accuracy,
                                "global_validation_flops":
                                    found.global_cost})


@_cost_aware
def best_accuracy_curve(validation, test, budgets=None,
                        criterion="max_softmax", temperatures=None,
                        search="per_exit", grid=None, cost=None):
    """Test accuracy vs mean cost of `best_accuracy_policy` over budgets.

    Thresholds come from `validation` for each budget and are applied to
    `test` (never read to choose them).

    Args:
        validation: `ExitOutputs` of the validation split.
        test: `ExitOutputs` of the test split.
        budgets: mean costs per sample (default: 39 evenly spaced from
            the first exit's cost to the last exit's, like MSDNet's 39
            points), in FLOPs or, with a measured `cost`, seconds.
        criterion: a criterion with a continuous score (see
            `budgeted_batch_thresholds`).
        temperatures: optional per-exit temperatures.
        search: `"per_exit"` or `"global"` (see `best_accuracy_policy`).
        grid: deprecated, no effect.
        cost: what an exit costs: `None`/`"flops"` (FLOPs, the default,
            as the papers) or a measured `CostProfile`
            (`keras_eexit.inference.measure_costs`): budgets and costs are
            then seconds per sample.

    Returns:
        A `keras_eexit.evaluation.Sweep` whose `thresholds` are the
        `(len(budgets), K)` per-exit rows.
    """
    from keras_eexit.evaluation import threshold_sweep as sweep

    _warn_search_arguments(grid=grid)
    profile = check_cost(cost)
    given = validation
    validation, _ = resolve_cost(validation, profile)
    test, _ = resolve_cost(test, profile)
    validation = _check_outputs(validation, "validation")
    test = _check_outputs(test, "test")
    _consistent(validation, test)
    flops = np.asarray(validation.flops, dtype=np.float64)
    if budgets is None:
        budgets = np.linspace(flops[0], flops[-1], len(MSDNET_P))
    rows = np.stack([
        best_accuracy_policy(given, float(b), criterion, temperatures,
                             search, cost=profile).threshold_array()
        for b in np.asarray(budgets, dtype=np.float64).reshape(-1)])
    probs = scale_probabilities(test.probs, temperatures)
    return sweep(probs, test.labels, test.flops, criterion=criterion,
                 thresholds=rows, cost=profile)


def expected_calibration_error(probs, labels, bins=15):
    """Expected calibration error (Guo et al. 2017, 15 equal-width bins).

    Args:
        probs: `(N, C)` probabilities (or `(K, N, C)`: one value per exit).
        labels: `(N,)` integer labels.
        bins: number of confidence bins.

    Returns:
        A float (or a `(K,)` array): Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 3:
        return np.array([expected_calibration_error(p, labels, bins)
                         for p in probs])
    labels = np.asarray(labels).reshape(-1)
    confidence = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0,
                    bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean()
                                          - confidence[members].mean())
    return float(error)


def fit_temperatures(validation, bounds=(0.05, 20.0)):
    """Temperature scaling per exit (Guo et al. 2017) on validation NLL.

    Needs at least `MIN_CALIBRATION_SAMPLES` validation samples. Warns
    (`UserWarning`, with the numbers) for an exit whose validation NLL has
    no minimum inside `bounds`: every validation sample right at that exit
    (the NLL falls as T falls), every one wrong, or a temperature that
    ended at a bound. Such a temperature reflects the split, not the
    model.

    Args:
        validation: `ExitOutputs` of the validation split.
        bounds: search interval for each temperature.

    Returns:
        A dict: `temperatures` `(K,)`, `ece_before` and `ece_after`
        `(K,)` (expected calibration error on the validation split).

    Example:

    ```python
    fit = fit_temperatures(collect(model, splits.validation))
    policy = ExitPolicy("max_softmax", 0.9, num_exits=model.num_exits,
                        temperatures=fit["temperatures"])
    ```
    """
    from scipy.optimize import minimize_scalar

    validation = _check_outputs(validation, "validation")
    probs = np.asarray(validation.probs, dtype=np.float64)
    labels = np.asarray(validation.labels)
    rows = np.arange(len(labels))
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(probs, 1e-45))
    temperatures = []
    for k in range(probs.shape[0]):
        def nll(log_t, z=logs[k]):
            scaled = z / math.exp(log_t)
            scaled = scaled - scaled.max(-1, keepdims=True)
            lse = np.log(np.exp(scaled).sum(-1))
            return float((lse - scaled[rows, labels]).mean())

        found = minimize_scalar(nll, bounds=tuple(np.log(bounds)),
                                method="bounded")
        temperatures.append(math.exp(found.x))
        _warn_at_bound(k, temperatures[-1], bounds, probs[k], labels)
    temperatures = check_temperatures(temperatures, probs.shape[0])
    after = scale_probabilities(probs, temperatures)
    return {"temperatures": temperatures,
            "ece_before": expected_calibration_error(probs, labels),
            "ece_after": expected_calibration_error(after, labels)}


def _warn_at_bound(exit_index, temperature, bounds, probs, labels):
    """Warns when exit `exit_index`'s validation NLL has no minimum inside
    `bounds`: every sample right (the NLL falls as T falls) or every one
    wrong, or a temperature that ended at a bound."""
    low, high = bounds
    correct = int((probs.argmax(-1) == labels).sum())
    if 0 < correct < len(labels) and low * 1.001 < temperature < high / 1.001:
        return
    warnings.warn(
        f"Temperature scaling of exit {exit_index + 1} found no minimum of "
        f"the validation NLL inside the bounds {tuple(bounds)} (it stopped "
        f"at T={temperature:.3g}): exit {exit_index + 1} classifies "
        f"{correct} of {len(labels)} validation samples correctly, so this "
        "temperature is not meaningful. Calibrate on more (or more varied) "
        "validation samples.",
        stacklevel=3)


def budgeted_batch_plot(curve, global_sweep=None, path=None,
                        title="Budgeted batch classification", cost=None):
    """The budgeted-batch curve next to the global-threshold sweep.

    Args:
        curve: the `Sweep` of `budgeted_batch_curve`.
        global_sweep: optional `Sweep` of `evaluation.threshold_sweep` on
            the test split (one threshold for every exit).
        path: PNG path (written atomically), or None.
        title: the axes title.
        cost: the `CostProfile` of sweeps in seconds (named on the axis).

    Returns:
        The matplotlib `Figure`.
    """
    from keras_eexit.evaluation.plots import tradeoff_plot

    curves = {"budgeted batch (validation thresholds)": [curve]}
    if global_sweep is not None:
        curves[f"global {global_sweep.criterion} threshold"] = [global_sweep]
    return tradeoff_plot(curves, path, title=title, cost=cost)
