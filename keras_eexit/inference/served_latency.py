"""Policies whose served latency meets a budget: closed-loop calibration.

A `CostProfile` (`measure_costs`) times each exit with every row forced
out there. A served batch mixes exits: later stages run on fewer rows
(their fixed cost per call is paid for a few rows), the rows that go on
are gathered between stages, and a call has overhead of its own. The
profile's `seconds_per_call` (fitted from two batch sizes) charges each
stage's fixed cost to the batches that run it (`CostProfile.mean_cost`);
what it cannot know (a serving loop's own overhead, partial batches,
load) remains. `calibrate_latency` closes the loop: it picks a policy
on the profile, times the serving call itself on validation inputs
(`keras_serving`, `litert_serving`, or any `serve(policy) -> seconds per
sample`), scales the budget it hands to the policy by budget / measured,
and repeats until the measured latency is within `tolerance` of the
budget. Our extension (no paper calibrates against a served latency).

Example:

```python
profile = measure_costs(model, runtime="keras", batch_size=256)
serve = keras_serving(model, x_val, batch_size=256)
result = calibrate_latency(validation, 0.02e-3, profile, serve)
result.policy     # an ExitPolicy; result.measured: seconds per sample
```
"""

import dataclasses
import statistics
import time

import numpy as np

from keras_eexit.evaluation.cost import SECONDS
from keras_eexit.evaluation.cost import resolve_cost
from keras_eexit.utils.validation import invalid_value


def _time_per_sample(call, samples, repeats):
    """Median over `repeats` of `call()`'s seconds per sample, after one
    untimed call (tracing, caches)."""
    call()
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        passes.append((time.perf_counter() - start) / samples)
    return statistics.median(passes)


def _check_repeats(repeats):
    if (isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer))
            or repeats < 1):
        raise invalid_value("repeats", "an integer >= 1", repeats)
    return int(repeats)


def keras_serving(model, x, batch_size=256, repeats=3):
    """`serve(policy)`: seconds per sample of `predict_early_exit` on `x`.

    Args:
        model: a built `MultiExitModel`.
        x: the inputs to serve (validation inputs, not the test split).
        batch_size: the serving batch size.
        repeats: passes over `x`; the median is returned.

    Returns:
        A function `serve(policy) -> float`.
    """
    from keras_eexit.inference.predict import predict_early_exit

    repeats = _check_repeats(repeats)

    def serve(policy):
        return _time_per_sample(
            lambda: predict_early_exit(model, x, policy=policy,
                                       batch_size=batch_size),
            len(x), repeats)
    return serve


def litert_serving(runner, x, repeats=3):
    """`serve(policy)`: seconds per sample of a LiteRT file, one row a call.

    Args:
        runner: a `keras_eexit.export.LiteRTRunner` of an early-exit export.
        x: the inputs to serve, one per `runner.predict` call.
        repeats: passes over `x`; the median is returned.

    Returns:
        A function `serve(policy) -> float`.
    """
    repeats = _check_repeats(repeats)
    rows = [row[None] for row in np.asarray(x)]

    def serve(policy):
        thresholds = policy.threshold_array()

        def one_pass():
            for row in rows:
                runner.predict(row, thresholds)
        return _time_per_sample(one_pass, len(rows), repeats)
    return serve


@dataclasses.dataclass(frozen=True)
class LatencyCalibration:
    """What `calibrate_latency` found.

    Attributes:
        policy: the chosen `ExitPolicy` (its metadata records the rounds).
        budget: the latency budget, seconds per sample.
        measured: the chosen policy's served seconds per sample.
        met: whether `measured <= budget * (1 + tolerance)`.
        rounds: per round, a dict: `target` (the budget handed to the
            policy), `predicted` (its validation cost on the profile) and
            `measured` (seconds per sample), `validation_accuracy`.
    """

    policy: object
    budget: float
    measured: float
    met: bool
    rounds: tuple


def calibrate_latency(validation, budget, cost, serve, tolerance=0.05,
                      max_rounds=6, policy_fn=None):
    """The most accurate policy whose served latency meets `budget`.

    Round 1 picks `policy_fn(validation, budget, cost=cost)` (default
    `best_accuracy_policy`) and times it with `serve`. Each later round
    hands the policy `target * budget / measured` (within the profile's
    first and last exit costs), until the measured latency is within
    `tolerance` of `budget`, the target stops moving, or `max_rounds`.
    Of the rounds at most `tolerance` over the budget, the one of highest
    validation accuracy is returned; if none, the fastest.

    Args:
        validation: `ExitOutputs` of the validation split.
        budget: seconds per sample, within the profile's exit costs.
        cost: the `CostProfile` the policies are chosen on.
        serve: `serve(policy) -> seconds per sample`, the serving call
            timed on validation inputs (`keras_serving`, `litert_serving`).
        tolerance: the relative distance to `budget` that ends the search.
        max_rounds: the most policies tried (an integer >= 1).
        policy_fn: `f(validation, budget, cost=...) -> ExitPolicy`
            (default `best_accuracy_policy`).

    Returns:
        A `LatencyCalibration`.
    """
    from keras_eexit.inference.calibration import best_accuracy_policy

    policy_fn = policy_fn or best_accuracy_policy
    costs, unit = resolve_cost(validation, cost)
    if unit != SECONDS:
        raise invalid_value("cost", "a measured CostProfile (budgets in "
                            "seconds)", cost)
    lowest, highest = float(costs.flops[0]), float(costs.flops[-1])
    if not isinstance(budget, (int, float, np.floating)) or not (
            lowest <= float(budget) <= highest):
        raise invalid_value(
            "budget", f"seconds per sample between the first exit's "
            f"{lowest:.3g} and the last exit's {highest:.3g}", budget)
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise invalid_value("tolerance", "a number in (0, 1)", tolerance)
    if (isinstance(max_rounds, bool) or not isinstance(max_rounds, int)
            or max_rounds < 1):
        raise invalid_value("max_rounds", "an integer >= 1", max_rounds)
    budget = float(budget)
    target, rounds, policies = budget, [], []
    for _ in range(max_rounds):
        policy = policy_fn(validation, target, cost=cost)
        measured = float(serve(policy))
        if not (np.isfinite(measured) and measured > 0):
            raise ValueError(f"serve(policy) returned {measured!r}: it must "
                             "return the seconds per sample (> 0).")
        rounds.append({"target": target,
                       "predicted":
                           policy.metadata.get("validation_seconds"),
                       "measured": measured,
                       "validation_accuracy":
                           policy.metadata.get("validation_accuracy")})
        policies.append(policy)
        if abs(measured - budget) <= tolerance * budget:
            break
        moved = min(max(target * budget / measured, lowest), highest)
        if moved == target:
            break
        target = moved
    within = [i for i, r in enumerate(rounds)
              if r["measured"] <= budget * (1 + tolerance)]
    if within:
        best = max(within, key=lambda i: (
            rounds[i]["validation_accuracy"] or 0.0, rounds[i]["measured"]))
    else:
        best = min(range(len(rounds)), key=lambda i: rounds[i]["measured"])
    chosen = policies[best]
    metadata = {**chosen.metadata, "latency_calibration": {
        "budget": budget, "served_seconds_per_sample":
            rounds[best]["measured"], "tolerance": tolerance,
        "rounds": rounds}}
    chosen = dataclasses.replace(chosen, metadata=metadata)
    return LatencyCalibration(
        policy=chosen, budget=budget, measured=rounds[best]["measured"],
        met=rounds[best]["measured"] <= budget * (1 + tolerance),
        rounds=tuple(rounds))
