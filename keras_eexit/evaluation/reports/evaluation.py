"""The evaluation report: one model's exits, budget table and sweep.

What `keras-eexit evaluate` writes: the static exits, the budget table
(Kubaty et al.'s reading, with the caption stating the FLOP convention and
the denominator), the sweep and, when given, the calibrated curves next
to the sweep: the best-accuracy curve (per-exit thresholds searched on
the validation split, what keras-eexit leads with) and MSDNet's
budgeted-batch curve. `evaluation_report` renders the texts, each section by one
small function; `write_evaluation_report` writes them with the figures.
FLOPs are reported in Kubaty et al.'s (fvcore) convention whenever the
outputs carry it (`records.reference_convention`).
"""

import os

import numpy as np

from keras_eexit.evaluation import plots
from keras_eexit.evaluation.reports.records import CONVENTION_CAPTIONS
from keras_eexit.evaluation.reports.records import number
from keras_eexit.evaluation.reports.records import reference_convention
from keras_eexit.evaluation.reports.text import csv_text
from keras_eexit.evaluation.reports.text import json_text
from keras_eexit.evaluation.reports.text import markdown_table
from keras_eexit.evaluation.reports.text import write_files
from keras_eexit.evaluation.sweep import accuracy_at
from keras_eexit.evaluation.tables import anytime_table
from keras_eexit.evaluation.tables import budget_table

BUDGET_READING = (
    "Each cell is Kubaty et al.'s reading: the last threshold, walking from "
    "the most eager to the most conservative, before the mean FLOPs exceed "
    "the budget (no interpolation; n/a: even the most eager threshold "
    "exceeds it). `max` is the most conservative threshold (every sample "
    "at the final exit), which can be below `100%`; a larger budget can "
    "read lower, when later exits are wrong where earlier ones were right.")

BUDGETED_BATCH_PROTOCOL = (
    "MSDNet's protocol (Huang et al. 2018, `adaptive_inference.py`): for "
    "q = p / 20, p = 1..39, exit k takes the share q^k / Σ q^j of the "
    "validation samples, most confident first; those per-exit thresholds "
    "are applied to the test split. `budget` is the mean FLOPs as a "
    "fraction of the base network's; ")


BEST_ACCURACY_PROTOCOL = (
    "keras-eexit's per-exit threshold search "
    "(`keras_eexit.inference.best_accuracy_curve`): for each of 39 mean-"
    "FLOPs budgets from the first exit's cost to the last exit's, the "
    "per-exit thresholds of highest validation accuracy within the budget "
    "(never below the best single threshold on validation), applied to the "
    "test split. `budget` is the mean FLOPs as a fraction of the base "
    "network's; ")


def budget_rows(budget):
    """A budget table dict as one-row-per-budget dicts (for CSV).

    Args:
        budget: `{column: accuracy}` (`budget_table`).

    Returns:
        A list of `{"budget": column, "accuracy": value}` rows.

    Example:

    >>> budget_rows({"25%": 0.5, "max": 0.75})
    [{'budget': '25%', 'accuracy': 0.5}, {'budget': 'max', 'accuracy': 0.75}]
    """
    return [{"budget": key, "accuracy": value}
            for key, value in budget.items()]


def _mflops_table(rows, columns):
    """`markdown_table` with the `mflops` column headed `MFLOPs`."""
    return markdown_table(rows, columns).replace("| mflops |", "| MFLOPs |")


def _header(outputs, name, dataset):
    convention = getattr(outputs, "flops_convention", "keras_eexit")
    heading = f"# {name}" + (f" on {dataset}" if dataset else "")
    return [heading, "",
            f"Test split: {outputs.labels.shape[0]:,} samples. FLOPs are "
            "cumulative per exit (segments and heads up to the exit), per "
            f"sample. {CONVENTION_CAPTIONS.get(convention, convention)}.",
            ""]


def _static_exits(rows):
    return ["## Static exits", "",
            _mflops_table(rows, ["exit", "params", "mflops", "accuracy"]),
            ""]


def _denominator(outputs):
    """What the budgets are fractions of, with the MFLOPs."""
    base = getattr(outputs, "base_flops", None)
    if base is not None:
        return ("fractions of the base network's FLOPs (backbone and "
                "final head, no internal classifier: "
                f"{base / 1e6:.4g} MFLOPs)")
    return ("fractions of the final exit's cumulative FLOPs "
            f"({outputs.flops[-1] / 1e6:.4g} MFLOPs; the base network's "
            "cost is unknown)")


def _budget(result, outputs, budget):
    return [f"## Early exit ({result.criterion}): accuracy within a FLOPs "
            "budget", "",
            f"Budgets are {_denominator(outputs)}. {BUDGET_READING} "
            f"{len(result.thresholds)}-point sweep.", "",
            markdown_table([budget]), "",
            "![trade-off](tradeoff.png)", "",
            "![exit ratios](exit_ratios.png)", ""]


def _curve_rows(curve, result, outputs):
    """A calibrated curve's rows, with the sweep at the same cost."""
    base = getattr(outputs, "base_flops", None)
    versus = accuracy_at(result, curve.mean_flops)
    rows = []
    for j, (cost, accuracy) in enumerate(zip(curve.mean_flops,
                                             curve.accuracy)):
        rows.append({
            "point": j + 1, "mflops": float(cost) / 1e6,
            "budget": (float(cost) / base if base else None),
            "accuracy": float(accuracy),
            "global_sweep_accuracy": number(versus[j]),
            **{f"threshold_{n}": float(t) for n, t in zip(
                outputs.exit_names, curve.thresholds[j])},
            **{f"ratio_{n}": float(r) for n, r in zip(
                outputs.exit_names, curve.exit_ratios[j])}})
    return rows, versus


def _curve_section(title, protocol, image, curve, result, versus, rows):
    """A calibrated curve next to the global sweep."""
    known = np.isfinite(versus)
    above = int(np.sum(curve.accuracy[known] >= versus[known]))
    return [
        f"## {title} ({curve.criterion}, thresholds from the validation "
        "split)", "",
        f"{protocol}`global_sweep_accuracy` is the "
        f"{result.criterion} sweep above at the same mean FLOPs (straight "
        "lines between its points; n/a outside its range). The curve is "
        f"on or above the sweep at {above} of {int(known.sum())} points.",
        "",
        _mflops_table(rows, ["point", "mflops", "budget", "accuracy",
                             "global_sweep_accuracy"]), "",
        f"![{image[:-4].replace('_', ' ')}]({image})", ""]


def _sweep_rows(result, outputs):
    return [
        {"threshold": float(t), "accuracy": float(a), "mean_flops": float(f),
         **{f"ratio_{n}": float(r) for n, r in zip(outputs.exit_names,
                                                    ratios)}}
        for t, a, f, ratios in zip(result.thresholds, result.accuracy,
                                   result.mean_flops, result.exit_ratios)]


def _curve(result):
    return {"criterion": result.criterion, "thresholds": result.thresholds,
            "accuracy": result.accuracy, "mean_flops": result.mean_flops,
            "exit_ratios": result.exit_ratios}


def _summary(outputs, result, curves, name, dataset, rows, budget):
    """The content of `evaluation.json`."""
    summary = {
        "model": name, "dataset": dataset,
        "num_samples": outputs.labels.shape[0],
        "flops_convention": getattr(outputs, "flops_convention",
                                    "keras_eexit"),
        "base_flops": getattr(outputs, "base_flops", None),
        "exits": rows, "budget": budget, **_curve(result)}
    for key, curve in curves.items():
        if curve is not None:
            summary[key] = _curve(curve)
    return summary


def _in_reference_convention(outputs, result, curves):
    """The outputs, the sweep and the calibrated curves in Kubaty et al.'s
    convention (see the module doc)."""
    curves = {key: None if curve is None else reference_convention(
        outputs, curve)[1] for key, curve in curves.items()}
    outputs, result = reference_convention(outputs, result)
    return outputs, result, curves


CURVES = {
    # key (file stem and JSON key): section title, protocol text
    "best_accuracy": ("Best accuracy within a budget",
                      BEST_ACCURACY_PROTOCOL),
    "budgeted_batch": ("Budgeted batch classification",
                       BUDGETED_BATCH_PROTOCOL),
}
"""The calibrated curves a report can show, in the order it shows them."""


def _render(outputs, result, curves, name, dataset):
    """`evaluation_report` of outputs already in the reported convention."""
    rows = anytime_table(outputs)
    budget = budget_table(result, outputs)
    lines = [*_header(outputs, name, dataset), *_static_exits(rows),
             *_budget(result, outputs, budget)]
    files = {}
    for key, (title, protocol) in CURVES.items():
        if curves.get(key) is None:
            continue
        curve_rows, versus = _curve_rows(curves[key], result, outputs)
        lines += _curve_section(title, protocol, f"{key}.png", curves[key],
                                result, versus, curve_rows)
        files[f"{key}.csv"] = csv_text(curve_rows)
    return {
        "report.md": "\n".join(lines),
        "exits.csv": csv_text(rows),
        "budget.csv": csv_text(budget_rows(budget)),
        "sweep.csv": csv_text(_sweep_rows(result, outputs)),
        **files,
        "evaluation.json": json_text(_summary(
            outputs, result, curves, name, dataset, rows, budget)),
    }


def evaluation_report(outputs, result, name="model", dataset=None,
                      budgeted=None, best_accuracy=None):
    """The Markdown, CSV and JSON texts of one evaluated model.

    Args:
        outputs: the `ExitOutputs` of `collect`; its FLOPs are reported
            in Kubaty et al.'s (fvcore) convention (`reference_convention`).
        result: the `Sweep` of `threshold_sweep(outputs, ...)`.
        name: the model's name in the heading.
        dataset: the data set's name in the heading, or None.
        budgeted: optional budgeted-batch curve on the same outputs (the
            `Sweep` of `keras_eexit.inference.budgeted_batch_curve`:
            per-exit thresholds from a validation split, no temperatures).
        best_accuracy: optional best-accuracy curve on the same outputs
            (the `Sweep` of `keras_eexit.inference.best_accuracy_curve`),
            shown first.

    Returns:
        `{file name: text}` for `report.md`, `exits.csv`, `budget.csv`,
        `sweep.csv` and `evaluation.json` (and `best_accuracy.csv`,
        `budgeted_batch.csv`).

    Example:

    ```python
    outputs = collect(model, splits.test)
    files = evaluation_report(outputs, threshold_sweep(outputs),
                              name="resnet20")
    print(files["report.md"])
    ```
    """
    curves = {"best_accuracy": best_accuracy, "budgeted_batch": budgeted}
    return _render(*_in_reference_convention(outputs, result, curves),
                   name, dataset)


def _figures(outputs, result, curves, out_dir, name, dataset):
    """Draws the trade-off and exit-ratio figures, and one per calibrated
    curve (next to the global sweep)."""
    rows = anytime_table(outputs)
    where = f" on {dataset}" if dataset else ""
    paths = {key: os.path.join(out_dir, key) for key in (
        "tradeoff.png", "exit_ratios.png")}
    plots.tradeoff_plot(
        {name: [result]}, paths["tradeoff.png"],
        static={f"{name} static exits": ([r["mflops"] for r in rows],
                                         [r["accuracy"] for r in rows])},
        title=f"{name}{where}: accuracy vs compute",
        convention=outputs.flops_convention, base_flops=outputs.base_flops)
    plots.exit_ratio_plot(
        result, list(outputs.exit_names), paths["exit_ratios.png"],
        title=f"{name}{where}: share of samples per exit")
    for key, (title, _) in CURVES.items():
        if curves.get(key) is None:
            continue
        paths[f"{key}.png"] = os.path.join(out_dir, f"{key}.png")
        label = key.replace("_", " ")
        plots.tradeoff_plot(
            {f"{label} (validation thresholds)": [curves[key]],
             f"global {result.criterion} threshold": [result]},
            paths[f"{key}.png"], title=f"{name}{where}: {title[0].lower()}"
            f"{title[1:]}", convention=outputs.flops_convention,
            base_flops=outputs.base_flops)
    return paths


def write_evaluation_report(outputs, result, out_dir, name="model",
                            dataset=None, budgeted=None, best_accuracy=None):
    """Writes `evaluation_report`'s files and its plots atomically.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: the `Sweep` of `threshold_sweep(outputs, ...)`.
        out_dir: the output directory (created if needed).
        name: the model's name in headings.
        dataset: the data set's name, or None.
        budgeted: optional budgeted-batch curve (see `evaluation_report`).
        best_accuracy: optional best-accuracy curve (see
            `evaluation_report`).

    Returns:
        `{file name: path}` of everything written: `report.md`,
        `exits.csv`, `budget.csv`, `sweep.csv`, `evaluation.json`,
        `tradeoff.png`, `exit_ratios.png` (with `best_accuracy`, also
        `best_accuracy.csv` and `best_accuracy.png`; with `budgeted`,
        `budgeted_batch.csv` and `budgeted_batch.png`: each curve next to
        the sweep).

    Example:

    ```python
    outputs = collect(model, splits.test)
    write_evaluation_report(outputs, threshold_sweep(outputs), "runs/evaluate",
                            name="resnet20", dataset="cifar10")
    ```
    """
    curves = {"best_accuracy": best_accuracy, "budgeted_batch": budgeted}
    outputs, result, curves = _in_reference_convention(outputs, result,
                                                       curves)
    written = write_files(out_dir, _render(outputs, result, curves, name,
                                           dataset))
    written.update(_figures(outputs, result, curves, out_dir, name,
                            dataset))
    return written
