"""The comparison report: several regimes over several seeds.

`comparison_report` renders run records (see `records.run_record`) as
Markdown and a summary dict: Kubaty et al.'s budget table read from the
seed-averaged curves (`reference_budgets`), per-exit accuracy as mean ±
std, training dynamics, resources, and the statistics protocol of
"Strategies at a glance". Each section is one small function.
`write_comparison_report` writes it as `report.md`, `summary.csv` and
`summary.json`, with the figures of `comparison_figures`.

FLOPs are in the convention of the records (`run_record` keeps Kubaty et
al.'s fvcore count whenever the outputs carry it); the captions name it.
"""

import math

import numpy as np

from keras_eexit.evaluation.dynamics import METRICS
from keras_eexit.evaluation.dynamics import training_dynamics
from keras_eexit.evaluation.reports.comparison_figures import (
    comparison_figures)
from keras_eexit.evaluation.reports.records import CONVENTION_CAPTIONS
from keras_eexit.evaluation.reports.records import EFFICIENCY
from keras_eexit.evaluation.reports.records import aggregate
from keras_eexit.evaluation.reports.records import group_records
from keras_eexit.evaluation.reports.records import regime_base_flops
from keras_eexit.evaluation.reports.records import regime_curves
from keras_eexit.evaluation.reports.records import significance
from keras_eexit.evaluation.reports.text import csv_text
from keras_eexit.evaluation.reports.text import json_text
from keras_eexit.evaluation.reports.text import markdown_table
from keras_eexit.evaluation.reports.text import plain
from keras_eexit.evaluation.reports.text import write_files
from keras_eexit.evaluation.stats import TEST_NAMES
from keras_eexit.evaluation.stats import mean_std
from keras_eexit.evaluation.tables import DEFAULT_FRACTIONS
from keras_eexit.evaluation.tables import budget_table

KUBATY_READING = (
    "Kubaty et al.'s reading (their `cost_vs_table.py`): each regime's "
    "sweep curves are averaged over seeds per threshold; a cell is the last "
    "threshold, walking from the most eager to the most conservative, "
    "before the mean FLOPs exceed the budget (no interpolation; `n/a`: even "
    "the most eager threshold exceeds it); ± is the std over seeds of the "
    "accuracy at that threshold. `max` is the most conservative threshold "
    "(every sample leaves at the final exit, which also pays for the "
    "internal classifiers), so it can be below `100%`. A row can also go "
    "*down* as the budget grows: a larger budget admits a more "
    "conservative threshold, which sends more samples to later exits, and "
    "a later exit can be wrong where an earlier one was right "
    "(overthinking). The table reports that reading as it is; the best "
    "point within a budget is `keras_eexit.evaluation.best_within_budget`.")

DYNAMICS_CAPTION = (
    "Means over seeds (\"Strategies at a glance\", Table 3; definitions in "
    "`keras_eexit.evaluation.dynamics`): epoch of the minimum validation "
    "loss, of the peak validation accuracy, first epoch of over-fitting "
    "(validation loss above its minimum while the training loss still "
    "falls; over the seeds that over-fit), epoch from which the validation "
    "accuracy stays within 0.01 of its final value, and the generalisation "
    "gap (training minus validation accuracy, last epoch).")

DYNAMICS_COLUMNS = ("regime", "exit", "min_val_loss_epoch",
                    "peak_val_accuracy_epoch", "overfitting_epoch",
                    "overfitting_seeds", "saturation_epoch",
                    "generalization_gap")

SIGNIFICANCE_CAPTION = (
    "Per metric: Shapiro–Wilk on the ANOVA residuals and Levene checks, "
    "then one-way ANOVA with Tukey's HSD, or Welch's ANOVA with "
    "Games–Howell when variances differ, or Kruskal–Wallis with Dunn's "
    "tests (Holm) when the residuals are not normal. Regimes from best "
    "to worst mean: `A ≫ B` the "
    "post-hoc test finds A better than B at α; `A > B` A has the better "
    "mean but the difference is not significant; `A = B` equal means. "
    "Budget columns are tested on each seed's own table. Lower is better "
    "for time, memory, power and energy.")


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

    Example:

    ```python
    reference_budgets(records)["joint"]["mean"]
    # {'25%': 0.71, '50%': 0.93, '75%': 0.97, '100%': 0.98, 'max': 0.97}
    ```
    """
    grouped = group_records(records)
    curves = regime_curves(grouped)
    if fractions is None:
        first = next(iter(grouped.values()))[0]
        columns = [c for c in first["budget"] if c.endswith("%")]
        fractions = tuple(float(c[:-1]) / 100 for c in columns) or (
            DEFAULT_FRACTIONS)
    out = {}
    for name, rs in grouped.items():
        base, recorded = regime_base_flops(rs)
        table, stds = budget_table(curves[name], base_flops=base,
                                   fractions=fractions, return_std=True)
        out[name] = {"mean": table, "std": stds, "base_flops": base,
                     "base_recorded": recorded}
    return out


def _convention(grouped):
    """The records' FLOP convention, or "mixed"."""
    conventions = {r.get("flops_convention", "keras_eexit")
                   for rs in grouped.values() for r in rs}
    return conventions.pop() if len(conventions) == 1 else "mixed"


def _heading(title, grouped, convention):
    seeds = sorted({len(rs) for rs in grouped.values()})
    caption = CONVENTION_CAPTIONS.get(
        convention, "FLOP conventions differ between records: the costs "
        "are not comparable")
    return [f"# {title}", "",
            f"{len(grouped)} regime(s), {'/'.join(map(str, seeds))} "
            "seed(s) each; test accuracy as mean ± std over seeds "
            "(ddof = 1).", "", f"{caption}.", ""]


def _denominator(reference):
    """The sentence saying what the budgets are fractions of."""
    bases = {entry["base_flops"] for entry in reference.values()}
    base_text = ", ".join(sorted({f"{b / 1e6:.4g}" for b in bases}))
    if all(entry["base_recorded"] for entry in reference.values()):
        return ("Budgets are fractions of the base network's FLOPs (the "
                "backbone and the final head without internal classifiers: "
                f"{base_text} MFLOPs per sample), as in Kubaty et al.'s "
                "Table 1.")
    return ("The records do not carry the base network's FLOPs: budgets "
            "are fractions of the final exit's cumulative FLOPs "
            f"({base_text} MFLOPs, every internal classifier included), not "
            "Kubaty et al.'s denominator; re-run with a current "
            "`run_record`.")


def _decreasing(table, columns):
    """Pairs of columns where a larger budget reads a lower accuracy."""
    out = []
    values = [(c, table[c]) for c in columns if c != "max"]
    for (a, va), (b, vb) in zip(values, values[1:]):
        if not (math.isnan(va) or math.isnan(vb)) and vb < va - 1e-12:
            out.append(f"{b} < {a}")
    return out


def _budget_cell(entry, column):
    mean = entry["mean"].get(column, float("nan"))
    std = entry["std"].get(column, float("nan"))
    return "n/a" if math.isnan(mean) else f"{mean:.4f} ± {std:.4f}"


def _budget_section(reference, columns, criterion):
    """The budget table of the seed-averaged curves, with its captions."""
    rows, notes = [], []
    for name, entry in reference.items():
        rows.append({"regime": name, **{c: _budget_cell(entry, c)
                                        for c in columns}})
        down = _decreasing(entry["mean"], columns)
        if down:
            notes.append(f"{name} ({', '.join(down)})")
    lines = [f"## Accuracy within a FLOPs budget ({criterion} sweep)", "",
             _denominator(reference), "", KUBATY_READING, "",
             markdown_table(rows, ["regime", *columns])]
    if notes:
        lines += ["", "Rows that go down as the budget grows (see above): "
                  + "; ".join(notes) + "."]
    return lines


def _static_exits_section(grouped, metrics):
    """Per-exit accuracy (mean ± std) under a row of per-exit MFLOPs."""
    first = next(iter(grouped.values()))[0]
    exit_names = list(first["exit_names"])
    rows = [{"regime": name, **{e: mean_std(metrics[e][name], 4)
                                for e in exit_names}}
            for name in grouped]
    table = markdown_table(rows, ["regime", *exit_names]).splitlines()
    return ["", "## Accuracy per exit (static exits)", "",
            "| | " + " | ".join(exit_names) + " |",
            "|---|" + "---|" * len(exit_names),
            "| MFLOPs | " + " | ".join(
                f"{f / 1e6:.3f}" for f in first["flops"]) + " |",
            *table[2:]]


def _dynamics_row(name, exit_name, per_seed):
    """One regime × exit row: each metric's mean over the seeds."""
    row = {"regime": name, "exit": exit_name}
    for metric in METRICS:
        values = [d.get(exit_name, {}).get(metric) for d in per_seed]
        known = [v for v in values if v is not None]
        row[metric] = float(np.mean(known)) if known else float("nan")
        if metric == "overfitting_epoch":
            row["overfitting_seeds"] = f"{len(known)}/{len(values)}"
    return row


def dynamics_rows(grouped):
    """Mean over seeds of the training-dynamics metrics per regime × exit.

    Args:
        grouped: the output of `group_records`.

    Returns:
        A list of row dicts, or `[]` when a record has no usable
        `history`.
    """
    rows = []
    for name, rs in grouped.items():
        per_seed = []
        for r in rs:
            if not r.get("history"):
                return []
            try:
                per_seed.append(training_dynamics(r["history"]))
            except ValueError:
                return []
        rows += [_dynamics_row(name, exit_name, per_seed)
                 for exit_name in per_seed[0]]
    return rows


def _dynamics_section(dynamics):
    if not dynamics:
        return []
    return ["", "## Training dynamics per exit", "", DYNAMICS_CAPTION, "",
            markdown_table(dynamics, DYNAMICS_COLUMNS, digits=2)]


def _efficiency_section(grouped, metrics):
    efficiency = [(key, label) for key, label in EFFICIENCY
                  if key in metrics]
    if not efficiency:
        return []
    rows = [{"regime": name, **{label: mean_std(metrics[key][name], 1)
                                for key, label in efficiency}}
            for name in grouped]
    return ["", "## Efficiency", "", markdown_table(
        rows, ["regime", *(label for _, label in efficiency)])]


def _test_line(name, test):
    """One metric's ordering, its tests and p-value, as a list item."""
    if isinstance(test, str):
        return f"- {name}: not tested: {test}"
    p = "n/a" if math.isnan(test.omnibus_p) else f"{test.omnibus_p:.3g}"
    note = f"; {test.note}" if test.note else ""
    return (f"- {name}: {test.ordering} ({TEST_NAMES[test.omnibus]} "
            f"p = {p}, {TEST_NAMES[test.posthoc]}{note})")


def _significance_section(tests, alpha):
    labels = dict(EFFICIENCY)
    return ["", f"## Significance (α = {alpha:g})", "",
            SIGNIFICANCE_CAPTION, "",
            *(_test_line(labels.get(metric, metric), test)
              for metric, test in tests.items())]


def _test_summary(test):
    if isinstance(test, str):
        return test
    return {"ordering": test.ordering, "omnibus": test.omnibus,
            "omnibus_p": test.omnibus_p, "posthoc": test.posthoc,
            "names": list(test.names), "pairwise_p": test.pairwise_p,
            "assumptions": test.assumptions, "note": test.note}


def _metric_summary(values):
    return {"mean": float(np.mean(values)) if values.size else None,
            "std": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
            "values": values}


def _summary(alpha, convention, reference, metrics, dynamics, tests):
    """The JSON-able summary of `comparison_report`."""
    return plain({
        "alpha": alpha,
        "flops_convention": convention,
        "budget_reference": {
            name: {"mean": entry["mean"], "std": entry["std"],
                   "base_flops": entry["base_flops"]}
            for name, entry in reference.items()},
        "metrics": {metric: {name: _metric_summary(v)
                             for name, v in values.items()}
                    for metric, values in metrics.items()},
        "training_dynamics": dynamics,
        "significance": {metric: _test_summary(test)
                         for metric, test in tests.items()},
    })


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

    Example:

    ```python
    text, summary = comparison_report(records, title="Regimes on digits")
    summary["significance"]["exit_3"]["ordering"]  # 'joint > mixed'
    ```
    """
    grouped = group_records(records)
    metrics = aggregate(records)
    tests = significance(metrics, alpha=alpha)
    first = next(iter(grouped.values()))[0]
    convention = _convention(grouped)
    reference = reference_budgets(records)
    dynamics = dynamics_rows(grouped)
    lines = [*_heading(title, grouped, convention),
             *_budget_section(reference, list(first["budget"]),
                              first.get("criterion", "max_softmax")),
             *_static_exits_section(grouped, metrics),
             *_dynamics_section(dynamics),
             *_efficiency_section(grouped, metrics),
             *_significance_section(tests, alpha)]
    for caption, path in images:
        lines += ["", f"![{caption}]({path})"]
    summary = _summary(alpha, convention, reference, metrics, dynamics,
                       tests)
    return "\n".join(lines) + "\n", summary


def summary_rows(summary, grouped):
    """The `summary.csv` rows: every metric's and budget cell's mean ± std.

    Args:
        summary: the summary of `comparison_report`.
        grouped: the output of `group_records` of the same records.

    Returns:
        A list of `{"metric", "regime", "mean", "std", "seeds"}` rows.
    """
    rows = [{"metric": metric, "regime": name, "mean": entry["mean"],
             "std": entry["std"], "seeds": len(entry["values"])}
            for metric, per_regime in summary["metrics"].items()
            for name, entry in per_regime.items()]
    rows += [{"metric": f"reference {column}", "regime": name,
              "mean": entry["mean"][column], "std": entry["std"][column],
              "seeds": len(grouped[name])}
             for name, entry in summary["budget_reference"].items()
             for column in entry["mean"]]
    return rows


def write_comparison_report(records, out_dir, title="Regime comparison",
                            alpha=0.05, plots=True):
    """Writes `report.md`, `summary.csv`, `summary.json` and the plots.

    Every file is written atomically. Plots (see `comparison_figures`):
    `tradeoff.png`, `exit_ratios.png`, `significance.png` and, when the
    records carry them, `training_<regime>.png` and
    `gradient_dominance_<regime>.png`.

    Args:
        records: run records (see `run_record`), e.g. read back from the
            per-run JSON files of `keras-eexit compare`.
        out_dir: the output directory (created if needed).
        title: the report's heading.
        alpha: significance level.
        plots: whether to draw the plots.

    Returns:
        A dict `{name: path}` of the files written.

    Example:

    ```python
    records = [run_record(collect(m, test), threshold_sweep(collect(m, test)),
                          regime=name, seed=seed)
               for (name, seed), m in trained.items()]
    write_comparison_report(records, "runs/compare", title="On digits")
    ```
    """
    records = list(records)
    grouped = group_records(records)
    written, images = {}, []
    if plots:
        written, images = comparison_figures(records, out_dir, title, alpha)
    text, summary = comparison_report(records, title=title, alpha=alpha,
                                      images=images)
    written.update(write_files(out_dir, {
        "report.md": text,
        "summary.csv": csv_text(summary_rows(summary, grouped)),
        "summary.json": json_text(summary)}))
    return written
