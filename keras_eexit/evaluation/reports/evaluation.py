"""The evaluation report: one model's exits, budget table and sweep.

What `keras-eexit evaluate` writes: the static exits, the budget table
(Kubaty et al.'s reading, with the caption stating the FLOP convention and
the denominator), the sweep and, when given, the budgeted-batch curve next
to the sweep. `evaluation_report` renders the texts, each section by one
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


def _budgeted_rows(budgeted, result, outputs):
    """The budgeted-batch curve's rows, with the sweep at the same cost."""
    base = getattr(outputs, "base_flops", None)
    versus = accuracy_at(result, budgeted.mean_flops)
    rows = []
    for j, (cost, accuracy) in enumerate(zip(budgeted.mean_flops,
                                             budgeted.accuracy)):
        rows.append({
            "point": j + 1, "mflops": float(cost) / 1e6,
            "budget": (float(cost) / base if base else None),
            "accuracy": float(accuracy),
            "global_sweep_accuracy": number(versus[j]),
            **{f"threshold_{n}": float(t) for n, t in zip(
                outputs.exit_names, budgeted.thresholds[j])},
            **{f"ratio_{n}": float(r) for n, r in zip(
                outputs.exit_names, budgeted.exit_ratios[j])}})
    return rows, versus


def _budgeted_section(budgeted, result, rows, versus):
    """The budgeted-batch curve next to the global sweep."""
    known = np.isfinite(versus)
    above = int(np.sum(budgeted.accuracy[known] >= versus[known]))
    return [
        f"## Budgeted batch classification ({budgeted.criterion}, "
        "thresholds from the validation split)", "",
        f"{BUDGETED_BATCH_PROTOCOL}`global_sweep_accuracy` is the "
        f"{result.criterion} sweep above at the same mean FLOPs (straight "
        "lines between its points; n/a outside its range). The curve is "
        f"on or above the sweep at {above} of {int(known.sum())} points.",
        "",
        _mflops_table(rows, ["point", "mflops", "budget", "accuracy",
                             "global_sweep_accuracy"]), "",
        "![budgeted batch](budgeted_batch.png)", ""]


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


def _summary(outputs, result, budgeted, name, dataset, rows, budget):
    """The content of `evaluation.json`."""
    summary = {
        "model": name, "dataset": dataset,
        "num_samples": outputs.labels.shape[0],
        "flops_convention": getattr(outputs, "flops_convention",
                                    "keras_eexit"),
        "base_flops": getattr(outputs, "base_flops", None),
        "exits": rows, "budget": budget, **_curve(result)}
    if budgeted is not None:
        summary["budgeted_batch"] = _curve(budgeted)
    return summary


def _in_reference_convention(outputs, result, budgeted):
    """The three in Kubaty et al.'s convention (see the module doc)."""
    if budgeted is not None:
        budgeted = reference_convention(outputs, budgeted)[1]
    outputs, result = reference_convention(outputs, result)
    return outputs, result, budgeted


def _render(outputs, result, budgeted, name, dataset):
    """`evaluation_report` of outputs already in the reported convention."""
    rows = anytime_table(outputs)
    budget = budget_table(result, outputs)
    lines = [*_header(outputs, name, dataset), *_static_exits(rows),
             *_budget(result, outputs, budget)]
    files = {}
    if budgeted is not None:
        curve_rows, versus = _budgeted_rows(budgeted, result, outputs)
        lines += _budgeted_section(budgeted, result, curve_rows, versus)
        files["budgeted_batch.csv"] = csv_text(curve_rows)
    return {
        "report.md": "\n".join(lines),
        "exits.csv": csv_text(rows),
        "budget.csv": csv_text(budget_rows(budget)),
        "sweep.csv": csv_text(_sweep_rows(result, outputs)),
        **files,
        "evaluation.json": json_text(_summary(
            outputs, result, budgeted, name, dataset, rows, budget)),
    }


def evaluation_report(outputs, result, name="model", dataset=None,
                      budgeted=None):
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

    Returns:
        `{file name: text}` for `report.md`, `exits.csv`, `budget.csv`,
        `sweep.csv` and `evaluation.json` (and `budgeted_batch.csv`).

    Example:

    ```python
    outputs = collect(model, splits.test)
    files = evaluation_report(outputs, threshold_sweep(outputs),
                              name="resnet20")
    print(files["report.md"])
    ```
    """
    return _render(*_in_reference_convention(outputs, result, budgeted),
                   name, dataset)


def _figures(outputs, result, budgeted, out_dir, name, dataset):
    """Draws the trade-off, exit-ratio and budgeted-batch figures."""
    rows = anytime_table(outputs)
    where = f" on {dataset}" if dataset else ""
    paths = {key: os.path.join(out_dir, key) for key in (
        "tradeoff.png", "exit_ratios.png", "budgeted_batch.png")}
    plots.tradeoff_plot(
        {name: [result]}, paths["tradeoff.png"],
        static={f"{name} static exits": ([r["mflops"] for r in rows],
                                         [r["accuracy"] for r in rows])},
        title=f"{name}{where}: accuracy vs compute",
        convention=outputs.flops_convention, base_flops=outputs.base_flops)
    plots.exit_ratio_plot(
        result, list(outputs.exit_names), paths["exit_ratios.png"],
        title=f"{name}{where}: share of samples per exit")
    if budgeted is None:
        del paths["budgeted_batch.png"]
        return paths
    plots.tradeoff_plot(
        {"budgeted batch (validation thresholds)": [budgeted],
         f"global {result.criterion} threshold": [result]},
        paths["budgeted_batch.png"],
        title=f"{name}{where}: budgeted batch classification",
        convention=outputs.flops_convention, base_flops=outputs.base_flops)
    return paths


def write_evaluation_report(outputs, result, out_dir, name="model",
                            dataset=None, budgeted=None):
    """Writes `evaluation_report`'s files and its plots atomically.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        result: the `Sweep` of `threshold_sweep(outputs, ...)`.
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

    Example:

    ```python
    outputs = collect(model, splits.test)
    write_evaluation_report(outputs, threshold_sweep(outputs), "runs/evaluate",
                            name="resnet20", dataset="cifar10")
    ```
    """
    outputs, result, budgeted = _in_reference_convention(outputs, result,
                                                         budgeted)
    written = write_files(out_dir, _render(outputs, result, budgeted, name,
                                           dataset))
    written.update(_figures(outputs, result, budgeted, out_dir, name,
                            dataset))
    return written
