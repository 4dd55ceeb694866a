"""Run records: one evaluated run as a JSON-able dict, and groups of them.

A *run record* describes one trained model evaluated once (one regime,
one seed); `run_record` builds it from `collect` and `sweep` results, in
Kubaty et al.'s (fvcore) FLOP convention whenever the outputs carry it.
`group_records`, `aggregate` and `significance` turn records of several
regimes × seeds into the per-seed values and the tests the comparison
report shows; `regime_curves` and `regime_base_flops` give each regime's
sweeps and budget denominator.
"""

import numpy as np

from keras_eexit.evaluation.stats import compare
from keras_eexit.evaluation.sweep import Sweep
from keras_eexit.evaluation.sweep import threshold_sweep
from keras_eexit.evaluation.tables import budget_table
from keras_eexit.evaluation.reports.text import plain
from keras_eexit.utils.validation import invalid_value

RECORD_KEYS = ("regime", "seed", "exit_names", "flops", "exit_accuracy",
               "thresholds", "accuracy", "mean_flops", "exit_ratios",
               "budget")
"""Record keys every run record needs (see `run_record`)."""

EFFICIENCY = (("train_seconds", "training time (s)"),
              ("peak_host_mb", "peak host memory (MiB)"),
              ("gpu_mean_power_w", "mean GPU power (W)"),
              ("gpu_peak_power_w", "peak GPU power (W)"),
              ("gpu_energy_j", "GPU energy (J)"),
              ("cpu_mean_power_w", "mean CPU package power (W)"),
              ("cpu_energy_j", "CPU package energy (J)"))
"""Efficiency metrics compared when the records carry them (lower is
better), with their report labels: top-level record keys, or paths into
`record["resources"]` (`ResourceMonitor.summary()`)."""

_RESOURCE_PATHS = {
    "train_seconds": ("train_seconds",),
    "peak_host_mb": ("host", "peak_mb"),
    "gpu_mean_power_w": ("gpu", "mean_power_w"),
    "gpu_peak_power_w": ("gpu", "peak_power_w"),
    "gpu_energy_j": ("gpu", "energy_j"),
    "cpu_mean_power_w": ("cpu", "mean_power_w"),
    "cpu_energy_j": ("cpu", "energy_j"),
}

CONVENTION_CAPTIONS = {
    "fvcore": "FLOPs are counted as in Kubaty et al.'s reference code "
              "(fvcore: 1 per multiply-add, plus the element-wise ops the "
              "reference registers; `keras_eexit.models.flops`)",
    "keras_eexit": "FLOPs are this library's count (2 per multiply-add of "
                   "convolutions and matrix products, nothing else; not the "
                   "convention of Kubaty et al.'s tables: collect with "
                   "convention=\"fvcore\" for that)",
}
"""The caption sentence of each FLOP convention, for every report."""


def reference_convention(outputs, result):
    """`(outputs, result)` with FLOPs in the fvcore convention if possible.

    The sweep is recomputed from the outputs with the same criterion and
    thresholds (exit decisions do not depend on costs), so its mean FLOPs
    are exact in the new convention. Outputs without fvcore costs (built by
    hand) are returned unchanged.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: a `Sweep` of those outputs.

    Returns:
        `(outputs, result)`, in the fvcore convention when the outputs
        carry it.

    Example:

    ```python
    outputs, result = reference_convention(collect(model, data),
                                           threshold_sweep(outputs))
    outputs.flops_convention  # 'fvcore'
    ```
    """
    if getattr(outputs, "flops_convention", "keras_eexit") == "fvcore":
        return outputs, result
    costs = getattr(outputs, "costs", None) or {}
    if "fvcore" not in costs:
        return outputs, result
    outputs = outputs.with_convention("fvcore")
    result = threshold_sweep(outputs, criterion=result.criterion,
                             thresholds=result.thresholds)
    return outputs, result


def run_record(outputs, result, regime="model", seed=0, **extra):
    """The JSON-able record of one evaluated run.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: the `Sweep` of `threshold_sweep(outputs, ...)`.
        regime: the regime (or model) label the run belongs to.
        seed: its seed.
        **extra: more fields, e.g. `train_seconds`, `peak_host_mb`,
            `resources` (`ResourceMonitor.summary()`), `history`
            (`History.history`, with validation for the training
            dynamics), `gradient_dominance` (`GradientDominance.to_dict()`).

    Returns:
        A dict with the keys of `RECORD_KEYS`, `criterion`, `params`,
        `base_flops`, `flops_convention` and `extra`; `budget` is this
        seed's own budget table (`budget_table(result, outputs)`). FLOPs
        (per exit, base, and the sweep's mean) are in Kubaty et al.'s
        (fvcore) convention whenever the outputs carry it (`collect`
        counts both), so reports can stand next to the paper's tables.

    Example:

    ```python
    outputs = collect(model, splits.test)
    record = run_record(outputs, threshold_sweep(outputs), regime="joint",
                        seed=0, train_seconds=12.5)
    ```
    """
    outputs, result = reference_convention(outputs, result)
    return plain({
        "regime": regime, "seed": seed,
        "exit_names": list(outputs.exit_names),
        "flops": outputs.flops, "params": outputs.params,
        "base_flops": getattr(outputs, "base_flops", None),
        "flops_convention": getattr(outputs, "flops_convention",
                                    "keras_eexit"),
        "exit_accuracy": outputs.accuracy(),
        "criterion": result.criterion,
        "thresholds": result.thresholds, "accuracy": result.accuracy,
        "mean_flops": result.mean_flops, "exit_ratios": result.exit_ratios,
        "budget": budget_table(result, outputs),
        **extra,
    })


def number(value):
    """`value` as a float, None as NaN."""
    return float("nan") if value is None else float(value)


def _check_keys(record):
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(
            f"Run record of regime {record.get('regime')!r}, seed "
            f"{record.get('seed')!r} misses keys {missing}; build "
            "records with keras_eexit.evaluation.run_record.")


def group_records(records):
    """`{regime: [record, ...]}`, regimes in order of first appearance.

    Args:
        records: run records (see `run_record`).

    Returns:
        The grouped records.

    Raises:
        ValueError: for no records, records missing keys, or regimes with
            different exits.

    Example:

    ```python
    list(group_records(records))  # ['joint', 'mixed']
    ```
    """
    records = list(records)
    if not records:
        raise invalid_value("records", "at least one run record", records)
    for record in records:
        _check_keys(record)
    names = list(records[0]["exit_names"])
    grouped = {}
    for record in records:
        if list(record["exit_names"]) != names:
            raise ValueError(
                f"Regime {record['regime']!r} has exits "
                f"{list(record['exit_names'])}, others {names}: only models "
                "with the same exits can be compared.")
        grouped.setdefault(str(record["regime"]), []).append(record)
    return grouped


def resource(record, key):
    """An efficiency value of a record (top level or its `resources`).

    Args:
        record: a run record.
        key: a key of `EFFICIENCY`.

    Returns:
        The value, or None when the record does not carry it.
    """
    if record.get(key) is not None:
        return record[key]
    value = record.get("resources")
    for part in _RESOURCE_PATHS.get(key, ()):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _per_regime(grouped, value):
    """`{regime: np.ndarray of value(record) over its seeds}`."""
    return {name: np.array([number(value(r)) for r in rs])
            for name, rs in grouped.items()}


def aggregate(records):
    """Per metric, per regime: the values over seeds.

    Metrics: every budget column (`"25%"`, ..., `"max"`, each seed's own
    table: the values the statistics need), the accuracy of every exit (by
    exit name), and the efficiency fields of `EFFICIENCY` that every record
    carries (at the top level or in its `resources`).

    Args:
        records: run records.

    Returns:
        `{metric: {regime: np.ndarray of per-seed values}}`.

    Example:

    ```python
    aggregate(records)["exit_3"]  # {'joint': array([0.97, 0.96, 0.97])}
    ```
    """
    grouped = group_records(records)
    first = next(iter(grouped.values()))[0]
    metrics = {}
    for column in first["budget"]:
        metrics[column] = _per_regime(
            grouped, lambda r, c=column: r["budget"].get(c))
    for k, exit_name in enumerate(first["exit_names"]):
        metrics[exit_name] = _per_regime(
            grouped, lambda r, k=k: r["exit_accuracy"][k])
    all_records = [r for rs in grouped.values() for r in rs]
    for key, _ in EFFICIENCY:
        if all(resource(r, key) is not None for r in all_records):
            metrics[key] = _per_regime(grouped,
                                       lambda r, k=key: resource(r, k))
    return metrics


def _untestable(values):
    """Why `{regime: values}` cannot be tested, or None."""
    if len(values) < 2:
        return "only one regime"
    if any(v.size < 2 for v in values.values()):
        return "needs at least two seeds per regime"
    if any(np.isnan(v).any() for v in values.values()):
        return "not every run has a value (budget not reached)"
    if np.ptp(np.concatenate(list(values.values()))) == 0:
        return ("every run of every regime gave the same value, so no test "
                "is defined")
    return None


def significance(metrics, alpha=0.05):
    """ANOVA/Tukey orderings for every metric that can be tested.

    Args:
        metrics: the output of `aggregate`.
        alpha: significance level.

    Returns:
        `{metric: Comparison or a string saying why it was not tested}`
        (efficiency metrics are ordered lowest first).

    Example:

    ```python
    significance(aggregate(records))["exit_3"].ordering
    # 'joint > mixed ≫ two_stage'
    ```
    """
    lower = {key for key, _ in EFFICIENCY}
    out = {}
    for metric, values in metrics.items():
        out[metric] = _untestable(values) or compare(
            values, alpha=alpha, higher_is_better=metric not in lower)
    return out


def regime_curves(grouped):
    """`{regime: [Sweep per seed]}` rebuilt from grouped run records.

    Args:
        grouped: the output of `group_records`.

    Returns:
        Each regime's sweeps, one per record.
    """
    return {
        name: [Sweep(r.get("criterion", "max_softmax"),
                     np.asarray(r["thresholds"]),
                     np.asarray(r["accuracy"], dtype=np.float64),
                     np.asarray(r["mean_flops"], dtype=np.float64),
                     np.asarray(r["exit_ratios"], dtype=np.float64))
               for r in rs]
        for name, rs in grouped.items()}


def regime_base_flops(records):
    """`(base FLOPs, whether the records carried it)` of one regime.

    Args:
        records: the run records of one regime.

    Returns:
        The mean recorded base FLOPs and True, or the final exit's
        cumulative FLOPs and False when a record lacks them.
    """
    values = [r.get("base_flops") for r in records]
    if all(v is not None for v in values):
        return float(np.mean(values)), True
    return float(records[0]["flops"][-1]), False
