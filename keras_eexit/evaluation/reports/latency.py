"""The latency report: one model's sweep and budgets in measured time.

What `keras-eexit evaluate --cost profile.json` writes next to the FLOPs
report: the static exits with their measured cumulative time, the budget
table in milliseconds (fractions of the final exit's measured time, as
served: every internal classifier included) and the sweep against
milliseconds per sample, all labelled with the profile (runtime, batch
size, device).
"""

import os

from keras_eexit.evaluation import plots
from keras_eexit.evaluation.reports.text import csv_text
from keras_eexit.evaluation.reports.text import markdown_table
from keras_eexit.evaluation.reports.text import write_files
from keras_eexit.evaluation.sweep import threshold_sweep
from keras_eexit.evaluation.tables import anytime_table
from keras_eexit.evaluation.tables import budget_table

LATENCY_FILES = ("latency.md", "latency_budget.csv", "latency_sweep.csv")


def latency_report(outputs, result, profile, name="model", dataset=None):
    """The Markdown and CSV texts of one model's sweep in measured time.

    Args:
        outputs: the `ExitOutputs` of `collect` (in FLOPs).
        result: the FLOPs `Sweep` of `threshold_sweep(outputs, ...)`; the
            same criterion and thresholds are swept again in seconds.
        profile: the model's `CostProfile`.
        name: the model's name in the heading.
        dataset: the data set's name, or None.

    Returns:
        `({file name: text}, the Sweep in seconds)`.
    """
    measured = threshold_sweep(outputs, criterion=result.criterion,
                               thresholds=result.thresholds, cost=profile)
    rows = anytime_table(outputs, cost=profile)
    budget = budget_table(measured, outputs, cost=profile)
    final = profile.seconds_per_sample[-1] * 1e3
    heading = f"# {name}" + (f" on {dataset}" if dataset else "")
    lines = [
        f"{heading}: early exit in measured time", "",
        f"Costs {profile.describe()} (`keras-eexit profile`, "
        f"{profile.repeats} repeats, spread {profile.spread or 0:.1%}): "
        "cumulative milliseconds per sample to reach and evaluate each "
        "exit.", "",
        markdown_table(rows, ["exit", "params", "mflops", "ms",
                              "accuracy"]).replace(
            "| mflops |", "| MFLOPs |"), "",
        f"## Early exit ({measured.criterion}): accuracy within a latency "
        "budget", "",
        "Budgets are fractions of the final exit's measured time "
        f"({final:.4g} ms per sample, every internal classifier included); "
        "each cell is the last threshold, from the most eager to the most "
        "conservative, before the mean time exceeds the budget.", "",
        markdown_table([budget]), "",
        "![latency trade-off](latency_tradeoff.png)", ""]
    sweep_rows = [
        {"threshold": float(t), "accuracy": float(a), "mean_ms": float(s) * 1e3,
         **{f"ratio_{n}": float(r) for n, r in zip(outputs.exit_names,
                                                    ratios)}}
        for t, a, s, ratios in zip(measured.thresholds, measured.accuracy,
                                   measured.mean_flops, measured.exit_ratios)]
    files = {
        "latency.md": "\n".join(lines),
        "latency_budget.csv": csv_text([{"budget": key, "accuracy": value}
                                        for key, value in budget.items()]),
        "latency_sweep.csv": csv_text(sweep_rows)}
    return files, measured


def write_latency_report(outputs, result, profile, out_dir, name="model",
                         dataset=None):
    """Writes `latency_report`'s files and `latency_tradeoff.png`.

    Args:
        outputs, result, profile, name, dataset: see `latency_report`.
        out_dir: the output directory (created if needed).

    Returns:
        `{file name: path}` of everything written.

    Example:

    ```python
    profile = CostProfile.load("profile.json")
    write_latency_report(outputs, threshold_sweep(outputs), profile,
                         "runs/evaluate")
    ```
    """
    files, measured = latency_report(outputs, result, profile, name,
                                     dataset)
    written = write_files(out_dir, files)
    path = os.path.join(out_dir, "latency_tradeoff.png")
    where = f" on {dataset}" if dataset else ""
    rows = anytime_table(outputs, cost=profile)
    plots.tradeoff_plot(
        {name: [measured]}, path, cost=profile,
        static={f"{name} static exits": ([r["ms"] for r in rows],
                                         [r["accuracy"] for r in rows])},
        title=f"{name}{where}: accuracy vs measured time")
    written["latency_tradeoff.png"] = path
    return written
