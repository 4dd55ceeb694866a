"""Reports: tables as Markdown, CSV and JSON, and multi-run comparisons.

A *run record* is a JSON-able dict describing one trained model evaluated
once (one regime, one seed); `run_record` builds it from `collect` and
`sweep` results. `write_comparison_report` turns a list of run records
(several regimes × several seeds) into `report.md` (Kubaty et al.'s budget
table read from the seed-averaged curves, per-exit accuracy as mean ± std,
training dynamics, resources, the statistics protocol of "Strategies at a
glance"), `summary.csv`, `summary.json` and the plots.

FLOPs in the reports are in the convention of the records' `ExitOutputs`
(`collect(..., convention=...)`); the captions name it. Use
`convention="fvcore"` to put the figures next to Kubaty et al.'s.
"""

import csv
import io
import json
import math
import os

import numpy as np

from keras_eexit.evaluation.stats import TEST_NAMES as _TEST_NAMES
from keras_eexit.evaluation.stats import compare
from keras_eexit.evaluation.stats import mean_std
from keras_eexit.utils.validation import invalid_value

# Record keys every run record needs (see `run_record`).
RECORD_KEYS = ("regime", "seed", "exit_names", "flops", "exit_accuracy",
               "thresholds", "accuracy", "mean_flops", "exit_ratios",
               "budget")

# Efficiency metrics compared when the records carry them (lower is
# better), with their report labels: top-level record keys, or paths into
# `record["resources"]` (`ResourceMonitor.summary()`).
EFFICIENCY = (("train_seconds", "training time (s)"),
              ("peak_host_mb", "peak host memory (MiB)"),
              ("gpu_mean_power_w", "mean GPU power (W)"),
              ("gpu_peak_power_w", "peak GPU power (W)"),
              ("gpu_energy_j", "GPU energy (J)"),
              ("cpu_mean_power_w", "mean CPU package power (W)"),
              ("cpu_energy_j", "CPU package energy (J)"))

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


def _plain(value):
    """`value` with NumPy types made JSON-able and NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value):
    """Strict JSON (NaN and infinities as `null`; NumPy values converted).

    Args:
        value: dicts, lists, numbers, strings and NumPy arrays/scalars.

    Returns:
        The JSON text, indented.
    """
    return json.dumps(_plain(value), indent=2, ensure_ascii=False,
                      allow_nan=False)


def _cell(value, digits):
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows, columns=None, digits=4):
    """A Markdown table of dict rows.

    Args:
        rows: a list of dicts.
        columns: the keys to show, in order (default: the first row's).
        digits: decimals for floats (NaN shows as `n/a`; ints get thousands
            separators).

    Returns:
        The table as a string (no trailing newline).
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(str(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), digits)
                                       for c in columns) + " |")
    return "\n".join(lines)


def csv_text(rows, columns=None):
    """CSV text of dict rows (header line first; NaN as an empty cell).

    Args:
        rows: a list of dicts.
        columns: the keys, in order (default: the first row's).

    Returns:
        The CSV text.
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns),
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v)
                         for k, v in _plain(row).items()})
    return buffer.getvalue()


def budget_rows(budget):
    """A budget table dict as one-row-per-budget dicts (for CSV)."""
    return [{"budget": key, "accuracy": value}
            for key, value in budget.items()]


def run_record(outputs, result, regime="model", seed=0, **extra):
    """The JSON-able record of one evaluated run.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: the `Sweep` of `sweep(outputs, ...)`.
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
    """
    from keras_eexit.evaluation.tables import budget_table

    outputs, result = reference_convention(outputs, result)
    return _plain({
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


def reference_convention(outputs, result):
    """`(outputs, result)` with FLOPs in the fvcore convention if possible.

    The sweep is recomputed from the outputs with the same criterion and
    thresholds (exit decisions do not depend on costs), so its mean FLOPs
    are exact in the new convention. Outputs without fvcore costs (built by
    hand) are returned unchanged.
    """
    from keras_eexit.evaluation.sweep import sweep

    if getattr(outputs, "flops_convention", "keras_eexit") == "fvcore":
        return outputs, result
    costs = getattr(outputs, "costs", None) or {}
    if "fvcore" not in costs:
        return outputs, result
    outputs = outputs.with_convention("fvcore")
    result = sweep(outputs, criterion=result.criterion,
                   thresholds=result.thresholds)
    return outputs, result


def _number(value):
    return float("nan") if value is None else float(value)


def group_records(records):
    """`{regime: [record, ...]}`, regimes in order of first appearance.

    Args:
        records: run records (see `run_record`).

    Returns:
        The grouped records.

    Raises:
        ValueError: for no records, records missing keys, or regimes with
            different exits.
    """
    records = list(records)
    if not records:
        raise invalid_value("records", "at least one run record", records)
    for record in records:
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise ValueError(
                f"Run record of regime {record.get('regime')!r}, seed "
                f"{record.get('seed')!r} misses keys {missing}; build "
                "records with keras_eexit.evaluation.run_record.")
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


def _resource(record, key):
    """An efficiency value of a record (top level or its `resources`)."""
    if record.get(key) is not None:
        return record[key]
    value = record.get("resources")
    for part in _RESOURCE_PATHS.get(key, ()):
        value = value.get(part) if isinstance(value, dict) else None
    return value


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
    """
    grouped = group_records(records)
    first = next(iter(grouped.values()))[0]
    metrics = {}
    for column in first["budget"]:
        metrics[column] = {
            name: np.array([_number(r["budget"].get(column)) for r in rs])
            for name, rs in grouped.items()}
    for k, exit_name in enumerate(first["exit_names"]):
        metrics[exit_name] = {
            name: np.array([_number(r["exit_accuracy"][k]) for r in rs])
            for name, rs in grouped.items()}
    all_records = [r for rs in grouped.values() for r in rs]
    for key, _ in EFFICIENCY:
        if all(_resource(r, key) is not None for r in all_records):
            metrics[key] = {
                name: np.array([_number(_resource(r, key)) for r in rs])
                for name, rs in grouped.items()}
    return metrics


def significance(metrics, alpha=0.05):
    """ANOVA/Tukey orderings for every metric that can be tested.

    Args:
        metrics: the output of `aggregate`.
        alpha: significance level.

    Returns:
        `{metric: Comparison or a string saying why it was not tested}`
        (efficiency metrics are ordered lowest first).
    """
    lower = {key for key, _ in EFFICIENCY}
    out = {}
    for metric, values in metrics.items():
        if len(values) < 2:
            out[metric] = "only one regime"
        elif any(v.size < 2 for v in values.values()):
            out[metric] = "needs at least two seeds per regime"
        elif any(np.isnan(v).any() for v in values.values()):
            out[metric] = "not every run has a value (budget not reached)"
        elif all(np.ptp(v) == 0 for v in values.values()):
            out[metric] = ("no spread across seeds: every seed gave the "
                           "same value, so no test is defined")
        else:
            out[metric] = compare(values, alpha=alpha,
                                  higher_is_better=metric not in lower)
    return out


def _curves(grouped):
    from keras_eexit.evaluation.sweep import Sweep

    return {
        name: [Sweep(r.get("criterion", "max_softmax"),
                     np.asarray(r["thresholds"]),
                     np.asarray(r["accuracy"], dtype=np.float64),
                     np.asarray(r["mean_flops"], dtype=np.float64),
                     np.asarray(r["exit_ratios"], dtype=np.float64))
               for r in rs]
        for name, rs in grouped.items()}


def _base(records):
    """`(base FLOPs, whether the records carried it)` of one regime."""
    values = [r.get("base_flops") for r in records]
    if all(v is not None for v in values):
        return float(np.mean(values)), True
    return float(records[0]["flops"][-1]), False


def reference_budgets(records, fractions=None):
    """Kubaty et al.'s budget table per regime, from the averaged curves.

    Each regime's sweeps (one per seed) are averaged per threshold and
    then read with `budget_table` (the reference's `mean_std` followed by
    `generate_score_eff_table`); the spread is the standard deviation over
    seeds of the accuracy at the chosen threshold.

    Args:
        records: run records (see `run_record`).
        fractions: budget fractions (default: the columns of the records'
            own budget tables, or 25/50/75/100%).

    Returns:
        `{regime: {"mean": {column: acc}, "std": {column: std},
        "base_flops": float, "base_recorded": bool}}`.
    """
    from keras_eexit.evaluation.tables import DEFAULT_FRACTIONS
    from keras_eexit.evaluation.tables import budget_table

    grouped = group_records(records)
    curves = _curves(grouped)
    if fractions is None:
        first = next(iter(grouped.values()))[0]
        columns = [c for c in first["budget"] if c.endswith("%")]
        fractions = tuple(float(c[:-1]) / 100 for c in columns) or (
            DEFAULT_FRACTIONS)
    out = {}
    for name, rs in grouped.items():
        base, recorded = _base(rs)
        table, stds = budget_table(curves[name], base_flops=base,
                                   fractions=fractions, return_std=True)
        out[name] = {"mean": table, "std": stds, "base_flops": base,
                     "base_recorded": recorded}
    return out


def _decreasing(table, columns):
    """Pairs of columns where a larger budget reads a lower accuracy."""
    out = []
    values = [(c, table[c]) for c in columns if c != "max"]
    for (a, va), (b, vb) in zip(values, values[1:]):
        if not (math.isnan(va) or math.isnan(vb)) and vb < va - 1e-12:
            out.append(f"{b} < {a}")
    return out


def _dynamics_rows(grouped):
    """Mean over seeds of the training-dynamics metrics per regime × exit."""
    from keras_eexit.evaluation.dynamics import METRICS
    from keras_eexit.evaluation.dynamics import training_dynamics

    rows = []
    for name, rs in grouped.items():
        per_seed = []
        for r in rs:
            history = r.get("history")
            if not history:
                return []
            try:
                per_seed.append(training_dynamics(history))
            except ValueError:
                return []
        for exit_name in per_seed[0]:
            row = {"regime": name, "exit": exit_name}
            for metric in METRICS:
                values = [d.get(exit_name, {}).get(metric) for d in per_seed]
                known = [v for v in values if v is not None]
                row[metric] = (float(np.mean(known)) if known
                               else float("nan"))
                if metric == "overfitting_epoch":
                    row["overfitting_seeds"] = f"{len(known)}/{len(values)}"
            rows.append(row)
    return rows


def comparison_report(records, title="Regime comparison", alpha=0.05,
                      images=()):
    """The Markdown report of several regimes over several seeds.

    Args:
        records: run records (see `run_record`).
        title: the report's heading.
        alpha: significance level of the statistics.
        images: `(caption, relative path)` pairs to embed at the end.

    Returns:
        `(markdown text, summary dict)`; the summary holds, per metric,
        per regime, the mean, std and per-seed values, the reference
        budget table (`budget_reference`), the training dynamics and the
        tests.
    """
    grouped = group_records(records)
    metrics = aggregate(records)
    tests = significance(metrics, alpha=alpha)
    first = next(iter(grouped.values()))[0]
    budget_columns = list(first["budget"])
    exit_names = list(first["exit_names"])
    seeds = sorted({len(rs) for rs in grouped.values()})
    criterion = first.get("criterion", "max_softmax")
    conventions = {r.get("flops_convention", "keras_eexit")
                   for rs in grouped.values() for r in rs}
    convention = conventions.pop() if len(conventions) == 1 else "mixed"
    reference = reference_budgets(records)
    bases = {name: entry["base_flops"] for name, entry in reference.items()}
    recorded = all(entry["base_recorded"] for entry in reference.values())
    base_text = ", ".join(sorted({f"{b / 1e6:.4g}" for b in bases.values()}))
    lines = [f"# {title}", "",
             f"{len(grouped)} regime(s), {'/'.join(map(str, seeds))} "
             "seed(s) each; test accuracy as mean ± std over seeds "
             "(ddof = 1).", "",
             CONVENTION_CAPTIONS.get(
                 convention, "FLOP conventions differ between records: the "
                 "costs are not comparable") + ".",
             "", f"## Accuracy within a FLOPs budget ({criterion} sweep)",
             ""]
    if recorded:
        lines.append(
            "Budgets are fractions of the base network's FLOPs (the "
            "backbone and the final head without internal classifiers: "
            f"{base_text} MFLOPs per sample), as in Kubaty et al.'s Table 1.")
    else:
        lines.append(
            "The records do not carry the base network's FLOPs: budgets are "
            "fractions of the final exit's cumulative FLOPs "
            f"({base_text} MFLOPs, every internal classifier included), not "
            "Kubaty et al.'s denominator; re-run with a current "
            "`run_record`.")
    lines += [
        "", "Kubaty et al.'s reading (their `cost_vs_table.py`): each "
        "regime's sweep curves are averaged over seeds per threshold; a "
        "cell is the last threshold, walking from the most eager to the "
        "most conservative, before the mean FLOPs exceed the budget (no "
        "interpolation; `n/a`: even the most eager threshold exceeds it); "
        "± is the std over seeds of the accuracy at that threshold. `max` "
        "is the most conservative threshold (every sample leaves at the "
        "final exit, which also pays for the internal classifiers), so it "
        "can be below `100%`. A row can also go *down* as the budget "
        "grows: a larger budget admits a more conservative threshold, "
        "which sends more samples to later exits, and a later exit can be "
        "wrong where an earlier one was right (overthinking). The table "
        "reports that reading as it is; the best point within a budget is "
        "`keras_eexit.evaluation.best_within_budget`.", ""]
    rows = []
    notes = []
    for name, entry in reference.items():
        row = {"regime": name}
        for column in budget_columns:
            mean = entry["mean"].get(column, float("nan"))
            std = entry["std"].get(column, float("nan"))
            row[column] = ("n/a" if math.isnan(mean)
                           else f"{mean:.4f} ± {std:.4f}")
        rows.append(row)
        down = _decreasing(entry["mean"], budget_columns)
        if down:
            notes.append(f"{name} ({', '.join(down)})")
    lines.append(markdown_table(rows, ["regime", *budget_columns]))
    if notes:
        lines += ["", "Rows that go down as the budget grows (see above): "
                  + "; ".join(notes) + "."]

    def table(columns, digits=4):
        rows = [{"regime": name,
                 **{c: mean_std(metrics[c][name], digits) for c in columns}}
                for name in grouped]
        return markdown_table(rows, ["regime", *columns])

    lines += ["", "## Accuracy per exit (static exits)", "",
              "| | " + " | ".join(exit_names) + " |",
              "|---|" + "---|" * len(exit_names),
              "| MFLOPs | " + " | ".join(
                  f"{f / 1e6:.3f}" for f in first["flops"]) + " |"]
    lines += table(exit_names).splitlines()[2:]
    dynamics = _dynamics_rows(grouped)
    if dynamics:
        lines += ["", "## Training dynamics per exit", "",
                  "Means over seeds (\"Strategies at a glance\", Table 3; "
                  "definitions in `keras_eexit.evaluation.dynamics`): epoch "
                  "of the minimum validation loss, of the peak validation "
                  "accuracy, first epoch of over-fitting (validation loss "
                  "above its minimum while the training loss still falls; "
                  "over the seeds that over-fit), epoch from which the "
                  "validation accuracy stays within 0.01 of its final "
                  "value, and the generalisation gap (training minus "
                  "validation accuracy, last epoch).", "",
                  markdown_table(dynamics, [
                      "regime", "exit", "min_val_loss_epoch",
                      "peak_val_accuracy_epoch", "overfitting_epoch",
                      "overfitting_seeds", "saturation_epoch",
                      "generalization_gap"], digits=2)]
    efficiency = [(key, label) for key, label in EFFICIENCY
                  if key in metrics]
    if efficiency:
        lines += ["", "## Efficiency", "",
                  markdown_table(
                      [{"regime": name,
                        **{label: mean_std(metrics[key][name], 1)
                           for key, label in efficiency}}
                       for name in grouped],
                      ["regime", *(label for _, label in efficiency)])]
    lines += ["", f"## Significance (α = {alpha:g})", "",
              "Per metric: Shapiro–Wilk (per regime) and Levene checks, then "
              "one-way ANOVA with Tukey's HSD, or Welch's ANOVA with "
              "Games–Howell when variances differ, or Kruskal–Wallis with "
              "Dunn's tests (Holm) when a regime is not normal. Regimes from "
              "best to worst mean: `A ≫ B` the post-hoc test finds A better "
              "than B at α; `A > B` A has the better mean but the "
              "difference is not significant; `A = B` equal means. Budget "
              "columns are tested on each seed's own table. Lower is better "
              "for time, memory, power and energy.", ""]
    labels = dict(EFFICIENCY)
    for metric, test in tests.items():
        name = labels.get(metric, metric)
        if isinstance(test, str):
            lines.append(f"- {name}: not tested: {test}")
        else:
            p = ("n/a" if math.isnan(test.omnibus_p)
                 else f"{test.omnibus_p:.3g}")
            note = f"; {test.note}" if test.note else ""
            lines.append(
                f"- {name}: {test.ordering} ({_TEST_NAMES[test.omnibus]} "
                f"p = {p}, {_TEST_NAMES[test.posthoc]}{note})")
    for caption, path in images:
        lines += ["", f"![{caption}]({path})"]
    summary = {
        "alpha": alpha,
        "flops_convention": convention,
        "budget_reference": {
            name: {"mean": entry["mean"], "std": entry["std"],
                   "base_flops": entry["base_flops"]}
            for name, entry in reference.items()},
        "metrics": {
            metric: {name: {"mean": float(np.mean(v)) if v.size else None,
                            "std": float(np.std(v, ddof=1))
                            if v.size > 1 else 0.0,
                            "values": v}
                     for name, v in values.items()}
            for metric, values in metrics.items()},
        "training_dynamics": dynamics,
        "significance": {
            metric: test if isinstance(test, str) else {
                "ordering": test.ordering, "omnibus": test.omnibus,
                "omnibus_p": test.omnibus_p, "posthoc": test.posthoc,
                "names": list(test.names), "pairwise_p": test.pairwise_p,
                "assumptions": test.assumptions, "note": test.note}
            for metric, test in tests.items()},
    }
    return "\n".join(lines) + "\n", _plain(summary)


def _safe(name):
    return "".join(c if c.isalnum() or c in "_.-=" else "_" for c in name)


def write_comparison_report(records, out_dir, title="Regime comparison",
                            alpha=0.05, plots=True):
    """Writes `report.md`, `summary.csv`, `summary.json` and the plots.

    Every file is written atomically. Plots: `tradeoff.png` (mean curve per
    regime with a ±1 std band over seeds and the static exits as markers),
    `exit_ratios.png` (one panel per regime, mean ± std over seeds),
    `significance.png` (the significant pairs of every metric that has
    any), and, when the records carry them,
    `training_<regime>.png` (from `history`) and
    `gradient_dominance_<regime>.png` (from `gradient_dominance`) for each
    regime's first seed.

    Args:
        records: run records (see `run_record`), e.g. read back from the
            per-run JSON files of `keras-eexit compare`.
        out_dir: the output directory (created if needed).
        title: the report's heading.
        alpha: significance level.
        plots: whether to draw the plots.

    Returns:
        A dict `{name: path}` of the files written.
    """
    from keras_eexit.evaluation import plots as plotting
    from keras_eexit.utils.atomic import write_text

    grouped = group_records(records)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    images = []
    if plots:
        curves = _curves(grouped)
        conventions = {r.get("flops_convention", "keras_eexit")
                       for rs in grouped.values() for r in rs}
        static = {
            f"{name} (static exits)": (
                np.asarray(rs[0]["flops"], dtype=np.float64) / 1e6,
                np.mean([r["exit_accuracy"] for r in rs], axis=0))
            for name, rs in grouped.items()}
        path = os.path.join(out_dir, "tradeoff.png")
        bases = {_base(rs) for rs in grouped.values()}
        plotting.tradeoff_plot(
            curves, path, static=static,
            title=f"{title}: accuracy vs compute",
            convention=conventions.pop() if len(conventions) == 1 else None,
            base_flops=(next(iter(bases))[0] if len(bases) == 1
                        and next(iter(bases))[1] else None))
        written["tradeoff"] = path
        images.append(("trade-off", "tradeoff.png"))
        exit_names = list(next(iter(grouped.values()))[0]["exit_names"])
        path = os.path.join(out_dir, "exit_ratios.png")
        plotting.exit_ratio_plot(curves, exit_names, path,
                                 title="Share of samples per exit")
        written["exit_ratios"] = path
        images.append(("exit ratios", "exit_ratios.png"))
        tests = {metric: test for metric, test in significance(
            aggregate(records), alpha=alpha).items()
            if not isinstance(test, str) and test.significant_pairs()}
        if tests:
            labels = dict(EFFICIENCY)
            path = os.path.join(out_dir, "significance.png")
            plotting.significance_plot(
                {labels.get(k, k): v for k, v in tests.items()}, path)
            written["significance"] = path
            images.append(("significant differences", "significance.png"))
        for name, rs in grouped.items():
            if rs[0].get("history"):
                path = os.path.join(out_dir, f"training_{_safe(name)}.png")
                plotting.training_curves_plot(
                    rs[0]["history"], path,
                    title=f"Per-exit training ({name}, seed {rs[0]['seed']})")
                written[f"training_{name}"] = path
                images.append((f"training {name}", os.path.basename(path)))
            dominance = rs[0].get("gradient_dominance")
            if dominance and dominance.get("steps"):
                path = os.path.join(out_dir,
                                    f"gradient_dominance_{_safe(name)}.png")
                plotting.gradient_dominance_plot(
                    dominance, rs[0]["exit_names"], path,
                    title=f"Gradient dominance ({name}, seed "
                    f"{rs[0]['seed']})")
                written[f"gradient_dominance_{name}"] = path
                images.append((f"gradient dominance {name}",
                               os.path.basename(path)))
    text, summary = comparison_report(records, title=title, alpha=alpha,
                                      images=images)
    rows = [{"metric": metric, "regime": name, "mean": entry["mean"],
             "std": entry["std"], "seeds": len(entry["values"])}
            for metric, per_regime in summary["metrics"].items()
            for name, entry in per_regime.items()]
    rows += [{"metric": f"reference {column}", "regime": name,
              "mean": entry["mean"][column], "std": entry["std"][column],
              "seeds": len(grouped[name])}
             for name, entry in summary["budget_reference"].items()
             for column in entry["mean"]]
    for name, content in (("report.md", text),
                          ("summary.csv", csv_text(rows)),
                          ("summary.json", json_text(summary))):
        path = os.path.join(out_dir, name)
        write_text(path, content)
        written[name] = path
    return written


def evaluation_report(outputs, result, name="model", dataset=None,
                      budgeted=None):
    """The Markdown, CSV and JSON texts of one evaluated model.

    What `keras-eexit evaluate` writes: the static exits, the budget table
    (Kubaty et al.'s reading, with the caption stating the FLOP convention
    and the denominator), the sweep and, when given, the budgeted-batch
    curve next to the sweep.

    Args:
        outputs: the `ExitOutputs` of `collect`; its FLOPs are reported
            in Kubaty et al.'s (fvcore) convention (`reference_convention`).
        result: the `Sweep` of `sweep(outputs, ...)`.
        name: the model's name in the heading.
        dataset: the data set's name in the heading, or None.
        budgeted: optional budgeted-batch curve on the same outputs (the
            `Sweep` of `keras_eexit.inference.budgeted_batch_curve`:
            per-exit thresholds from a validation split, no temperatures).

    Returns:
        `{file name: text}` for `report.md`, `exits.csv`, `budget.csv`,
        `sweep.csv` and `evaluation.json` (and `budgeted_batch.csv`).
    """
    from keras_eexit.evaluation.tables import anytime_table
    from keras_eexit.evaluation.tables import budget_table

    if budgeted is not None:
        budgeted = reference_convention(outputs, budgeted)[1]
    outputs, result = reference_convention(outputs, result)
    rows = anytime_table(outputs)
    budget = budget_table(result, outputs)
    convention = getattr(outputs, "flops_convention", "keras_eexit")
    base = getattr(outputs, "base_flops", None)
    samples = outputs.labels.shape[0]
    heading = f"# {name}" + (f" on {dataset}" if dataset else "")
    if base is not None:
        denominator = ("fractions of the base network's FLOPs (backbone and "
                       "final head, no internal classifier: "
                       f"{base / 1e6:.4g} MFLOPs)")
    else:
        denominator = ("fractions of the final exit's cumulative FLOPs "
                       f"({outputs.flops[-1] / 1e6:.4g} MFLOPs; the base "
                       "network's cost is unknown)")
    lines = [
        heading, "",
        f"Test split: {samples:,} samples. FLOPs are cumulative per exit "
        "(segments and heads up to the exit), per sample. "
        f"{CONVENTION_CAPTIONS.get(convention, convention)}.", "",
        "## Static exits", "",
        markdown_table(rows, ["exit", "params", "mflops",
                              "accuracy"]).replace("| mflops |",
                                                   "| MFLOPs |"),
        "", f"## Early exit ({result.criterion}): accuracy within a FLOPs "
        "budget", "",
        f"Budgets are {denominator}. Each cell is Kubaty et al.'s reading: "
        "the last threshold, walking from the most eager to the most "
        "conservative, before the mean FLOPs exceed the budget (no "
        "interpolation; n/a: even the most eager threshold exceeds it). "
        "`max` is the most conservative threshold (every sample at the "
        "final exit), which can be below `100%`; a larger budget can read "
        "lower, when later exits are wrong where earlier ones were right. "
        f"{len(result.thresholds)}-point sweep.", "",
        markdown_table([budget]), "",
        "![trade-off](tradeoff.png)", "",
        "![exit ratios](exit_ratios.png)", ""]
    files = {}
    if budgeted is not None:
        section, rows_bb = _budgeted_section(budgeted, result, outputs, base)
        lines += section
        files["budgeted_batch.csv"] = csv_text(rows_bb)
    sweep_rows = [
        {"threshold": float(t), "accuracy": float(a),
         "mean_flops": float(f),
         **{f"ratio_{n}": float(r) for n, r in zip(outputs.exit_names,
                                                    ratios)}}
        for t, a, f, ratios in zip(result.thresholds, result.accuracy,
                                   result.mean_flops, result.exit_ratios)]
    summary = {
        "model": name, "dataset": dataset, "num_samples": samples,
        "flops_convention": convention, "base_flops": base,
        "exits": rows, "budget": budget,
        "criterion": result.criterion,
        "thresholds": result.thresholds, "accuracy": result.accuracy,
        "mean_flops": result.mean_flops,
        "exit_ratios": result.exit_ratios,
    }
    if budgeted is not None:
        summary["budgeted_batch"] = {
            "criterion": budgeted.criterion,
            "thresholds": budgeted.thresholds,
            "accuracy": budgeted.accuracy,
            "mean_flops": budgeted.mean_flops,
            "exit_ratios": budgeted.exit_ratios}
    return {
        "report.md": "\n".join(lines),
        "exits.csv": csv_text(rows),
        "budget.csv": csv_text(budget_rows(budget)),
        "sweep.csv": csv_text(sweep_rows),
        **files,
        "evaluation.json": json_text(summary),
    }


def _budgeted_section(budgeted, result, outputs, base):
    """Report lines and CSV rows of the budgeted-batch curve."""
    from keras_eexit.evaluation.sweep import accuracy_at

    versus = accuracy_at(result, budgeted.mean_flops)
    table, rows = [], []
    for j, (cost, accuracy) in enumerate(zip(budgeted.mean_flops,
                                             budgeted.accuracy)):
        row = {"point": j + 1, "mflops": float(cost) / 1e6,
               "budget": (float(cost) / base if base else None),
               "accuracy": float(accuracy),
               "global_sweep_accuracy": _number(versus[j])}
        table.append(row)
        rows.append({
            **row,
            **{f"threshold_{n}": float(t) for n, t in zip(
                outputs.exit_names, budgeted.thresholds[j])},
            **{f"ratio_{n}": float(r) for n, r in zip(
                outputs.exit_names, budgeted.exit_ratios[j])}})
    above = versus[np.isfinite(versus)]
    above = int(np.sum(budgeted.accuracy[np.isfinite(versus)] >= above))
    lines = [
        f"## Budgeted batch classification ({budgeted.criterion}, "
        "thresholds from the validation split)", "",
        "MSDNet's protocol (Huang et al. 2018, `adaptive_inference.py`): "
        "for q = p / 20, p = 1..39, exit k takes the share q^k / Σ q^j of "
        "the validation samples, most confident first; those per-exit "
        "thresholds are applied to the test split. `budget` is the mean "
        "FLOPs as a fraction of the base network's; "
        f"`global_sweep_accuracy` is the {result.criterion} sweep above "
        "at the same mean FLOPs (straight lines between its points; n/a "
        "outside its range). "
        f"The curve is on or above the sweep at {above} of "
        f"{int(np.isfinite(versus).sum())} points.", "",
        markdown_table(table, ["point", "mflops", "budget", "accuracy",
                               "global_sweep_accuracy"]).replace(
            "| mflops |", "| MFLOPs |"), "",
        "![budgeted batch](budgeted_batch.png)", ""]
    return lines, rows


def write_evaluation_report(outputs, result, out_dir, name="model",
                            dataset=None, budgeted=None):
    """Writes `evaluation_report`'s files and its plots atomically.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: the `Sweep` of `sweep(outputs, ...)`.
        out_dir: the output directory (created if needed).
        name: the model's name in headings.
        dataset: the data set's name, or None.
        budgeted: optional budgeted-batch curve (see `evaluation_report`).

    Returns:
        `{file name: path}` of everything written: `report.md`,
        `exits.csv`, `budget.csv`, `sweep.csv`, `evaluation.json`,
        `tradeoff.png`, `exit_ratios.png` (with `budgeted`, also
        `budgeted_batch.csv` and `budgeted_batch.png`: the curve next to
        the sweep).
    """
    from keras_eexit.evaluation import plots as plotting
    from keras_eexit.evaluation.tables import anytime_table
    from keras_eexit.utils.atomic import write_text

    files = evaluation_report(outputs, result, name, dataset, budgeted)
    if budgeted is not None:
        budgeted = reference_convention(outputs, budgeted)[1]
    outputs, result = reference_convention(outputs, result)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for filename, text in files.items():
        path = os.path.join(out_dir, filename)
        write_text(path, text)
        written[filename] = path
    rows = anytime_table(outputs)
    where = f" on {dataset}" if dataset else ""
    path = os.path.join(out_dir, "tradeoff.png")
    plotting.tradeoff_plot(
        {name: [result]}, path,
        static={f"{name} static exits": ([r["mflops"] for r in rows],
                                         [r["accuracy"] for r in rows])},
        title=f"{name}{where}: accuracy vs compute",
        convention=outputs.flops_convention, base_flops=outputs.base_flops)
    written["tradeoff.png"] = path
    path = os.path.join(out_dir, "exit_ratios.png")
    plotting.exit_ratio_plot(result, list(outputs.exit_names), path,
                             title=f"{name}{where}: share of samples per "
                             "exit")
    written["exit_ratios.png"] = path
    if budgeted is not None:
        path = os.path.join(out_dir, "budgeted_batch.png")
        plotting.tradeoff_plot(
            {"budgeted batch (validation thresholds)": [budgeted],
             f"global {result.criterion} threshold": [result]}, path,
            title=f"{name}{where}: budgeted batch classification",
            convention=outputs.flops_convention,
            base_flops=outputs.base_flops)
        written["budgeted_batch.png"] = path
    return written
