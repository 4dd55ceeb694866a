"""Reports: tables as Markdown, CSV and JSON, and multi-run comparisons.

A *run record* is a JSON-able dict describing one trained model evaluated
once (one regime, one seed); `run_record` builds it from `collect` and
`sweep` results. `write_comparison_report` turns a list of run records
(several regimes × several seeds) into `report.md` (budget table and
per-exit accuracy as mean ± std, efficiency, ANOVA/Tukey orderings),
`summary.csv`, `summary.json` and the plots.
"""

import csv
import io
import json
import math
import os

import numpy as np

from keras_eexit.evaluation.stats import compare
from keras_eexit.evaluation.stats import mean_std
from keras_eexit.utils.validation import invalid_value

# Record keys every run record needs (see `run_record`).
RECORD_KEYS = ("regime", "seed", "exit_names", "flops", "exit_accuracy",
               "thresholds", "accuracy", "mean_flops", "exit_ratios",
               "budget")

# Efficiency metrics compared when the records carry them (lower is
# better), with their report labels.
EFFICIENCY = (("train_seconds", "training time (s)"),
              ("peak_host_mb", "peak host memory (MiB)"))


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
            (`History.history`), `gradient_dominance`
            (`GradientDominance.to_dict()`).

    Returns:
        A dict with the keys of `RECORD_KEYS`, `criterion`, `params` and
        `extra`.
    """
    from keras_eexit.evaluation.tables import budget_table

    return _plain({
        "regime": regime, "seed": seed,
        "exit_names": list(outputs.exit_names),
        "flops": outputs.flops, "params": outputs.params,
        "exit_accuracy": outputs.accuracy(),
        "criterion": result.criterion,
        "thresholds": result.thresholds, "accuracy": result.accuracy,
        "mean_flops": result.mean_flops, "exit_ratios": result.exit_ratios,
        "budget": budget_table(result, outputs.flops),
        **extra,
    })


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


def aggregate(records):
    """Per metric, per regime: the values over seeds.

    Metrics: every budget column (`"25%"`, ..., `"max"`), the accuracy of
    every exit (by exit name), and the efficiency fields of `EFFICIENCY`
    that every record carries.

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
        if all(r.get(key) is not None for r in all_records):
            metrics[key] = {
                name: np.array([_number(r[key]) for r in rs])
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


def comparison_report(records, title="Regime comparison", alpha=0.05,
                      images=()):
    """The Markdown report of several regimes over several seeds.

    Args:
        records: run records (see `run_record`).
        title: the report's heading.
        alpha: significance level of the Tukey HSD orderings.
        images: `(caption, relative path)` pairs to embed at the end.

    Returns:
        `(markdown text, summary dict)`; the summary holds, per metric,
        per regime, the mean, std and per-seed values, and the orderings.
    """
    grouped = group_records(records)
    metrics = aggregate(records)
    tests = significance(metrics, alpha=alpha)
    first = next(iter(grouped.values()))[0]
    budget_columns = list(first["budget"])
    exit_names = list(first["exit_names"])
    seeds = sorted({len(rs) for rs in grouped.values()})
    criterion = first.get("criterion", "max_softmax")
    lines = [f"# {title}", "",
             f"{len(grouped)} regime(s), {'/'.join(map(str, seeds))} "
             "seed(s) each; test accuracy as mean ± std over seeds "
             "(ddof = 1).", "",
             f"## Accuracy within a FLOPs budget ({criterion} sweep)", "",
             "Budgets are fractions of the final exit's FLOPs; each cell "
             "takes the last sweep point within the budget (no "
             "interpolation, Kubaty et al.'s rule); `max` is the best "
             "accuracy over the sweep.", ""]

    def table(columns, digits=4):
        rows = [{"regime": name,
                 **{c: mean_std(metrics[c][name], digits) for c in columns}}
                for name in grouped]
        return markdown_table(rows, ["regime", *columns])

    lines += [table(budget_columns), "",
              "## Accuracy per exit (static exits)", "",
              "| | " + " | ".join(exit_names) + " |",
              "|---|" + "---|" * len(exit_names),
              "| MFLOPs | " + " | ".join(
                  f"{f / 1e6:.3f}" for f in first["flops"]) + " |"]
    lines += table(exit_names).splitlines()[2:]
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
    lines += ["", f"## Significance (one-way ANOVA, Tukey HSD, "
              f"α = {alpha:g})", "",
              "Regimes from best to worst mean: `A ≫ B` Tukey's HSD finds "
              "A better than B at α; `A > B` A has the better mean but the "
              "difference is not significant; `A = B` equal means. Lower "
              "is better for time and memory.", ""]
    labels = dict(EFFICIENCY)
    for metric, test in tests.items():
        name = labels.get(metric, metric)
        if isinstance(test, str):
            lines.append(f"- {name}: not tested: {test}")
        else:
            anova = ("n/a" if math.isnan(test.anova_p)
                     else f"{test.anova_p:.3g}")
            note = f"; {test.note}" if test.note else ""
            lines.append(f"- {name}: {test.ordering} (ANOVA p = {anova}"
                         f"{note})")
    for caption, path in images:
        lines += ["", f"![{caption}]({path})"]
    summary = {
        "alpha": alpha,
        "metrics": {
            metric: {name: {"mean": float(np.mean(v)) if v.size else None,
                            "std": float(np.std(v, ddof=1))
                            if v.size > 1 else 0.0,
                            "values": v}
                     for name, v in values.items()}
            for metric, values in metrics.items()},
        "significance": {
            metric: test if isinstance(test, str) else {
                "ordering": test.ordering, "anova_p": test.anova_p,
                "names": list(test.names), "tukey_p": test.tukey_p,
                "note": test.note}
            for metric, test in tests.items()},
    }
    return "\n".join(lines) + "\n", _plain(summary)


def write_comparison_report(records, out_dir, title="Regime comparison",
                            alpha=0.05, plots=True):
    """Writes `report.md`, `summary.csv`, `summary.json` and the plots.

    Every file is written atomically. Plots: `tradeoff.png` (mean curve per
    regime with a ±1 std band over seeds and the static exits as markers),
    `exit_ratios.png` (the first regime's first seed), and, when the
    records carry them, `training_<regime>.png` (from `history`) and
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
        static = {
            f"{name} (static exits)": (
                np.asarray(rs[0]["flops"], dtype=np.float64) / 1e6,
                np.mean([r["exit_accuracy"] for r in rs], axis=0))
            for name, rs in grouped.items()}
        path = os.path.join(out_dir, "tradeoff.png")
        plotting.tradeoff_plot(curves, path, static=static,
                               title=f"{title}: accuracy vs compute")
        written["tradeoff"] = path
        images.append(("trade-off", "tradeoff.png"))
        first = next(iter(grouped))
        path = os.path.join(out_dir, "exit_ratios.png")
        plotting.exit_ratio_plot(
            curves[first][0], list(grouped[first][0]["exit_names"]), path,
            title=f"Share of samples per exit ({first}, seed "
            f"{grouped[first][0]['seed']})")
        written["exit_ratios"] = path
        images.append(("exit ratios", "exit_ratios.png"))
        for name, rs in grouped.items():
            safe = "".join(c if c.isalnum() or c in "_.-=" else "_"
                           for c in name)
            if rs[0].get("history"):
                path = os.path.join(out_dir, f"training_{safe}.png")
                plotting.training_curves_plot(
                    rs[0]["history"], path,
                    title=f"Per-exit training ({name}, seed {rs[0]['seed']})")
                written[f"training_{name}"] = path
                images.append((f"training {name}", os.path.basename(path)))
            dominance = rs[0].get("gradient_dominance")
            if dominance and dominance.get("steps"):
                path = os.path.join(out_dir,
                                    f"gradient_dominance_{safe}.png")
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
    for name, content in (("report.md", text),
                          ("summary.csv", csv_text(rows)),
                          ("summary.json", json_text(summary))):
        path = os.path.join(out_dir, name)
        write_text(path, content)
        written[name] = path
    return written
