"""The figures of the comparison report, each drawn by one function.

`comparison_figures` draws them into the report's folder and returns the
`(caption, file)` pairs the Markdown embeds: the trade-off curves, the exit
ratios, the significant pairs, and each regime's first-seed training
curves and gradient dominance when its records carry them.
"""

import os

import numpy as np

from keras_eexit.evaluation import plots
from keras_eexit.evaluation.reports.records import EFFICIENCY
from keras_eexit.evaluation.reports.records import aggregate
from keras_eexit.evaluation.reports.records import group_records
from keras_eexit.evaluation.reports.records import regime_base_flops
from keras_eexit.evaluation.reports.records import regime_curves
from keras_eexit.evaluation.reports.records import significance


def safe_name(name):
    """`name` with every character unsafe in a file name as `_`."""
    return "".join(c if c.isalnum() or c in "_.-=" else "_" for c in name)


def _tradeoff(grouped, out_dir, title):
    """Mean curve per regime (±1 std over seeds), static exits as marks."""
    conventions = {r.get("flops_convention", "keras_eexit")
                   for rs in grouped.values() for r in rs}
    static = {
        f"{name} (static exits)": (
            np.asarray(rs[0]["flops"], dtype=np.float64) / 1e6,
            np.mean([r["exit_accuracy"] for r in rs], axis=0))
        for name, rs in grouped.items()}
    bases = {regime_base_flops(rs) for rs in grouped.values()}
    base, recorded = next(iter(bases))
    path = os.path.join(out_dir, "tradeoff.png")
    plots.tradeoff_plot(
        regime_curves(grouped), path, static=static,
        title=f"{title}: accuracy vs compute",
        convention=conventions.pop() if len(conventions) == 1 else None,
        base_flops=base if len(bases) == 1 and recorded else None)
    return {"tradeoff": path}, [("trade-off", "tradeoff.png")]


def _exit_ratios(grouped, out_dir):
    """One panel per regime: the share of samples per exit."""
    exit_names = list(next(iter(grouped.values()))[0]["exit_names"])
    path = os.path.join(out_dir, "exit_ratios.png")
    plots.exit_ratio_plot(regime_curves(grouped), exit_names, path,
                          title="Share of samples per exit")
    return {"exit_ratios": path}, [("exit ratios", "exit_ratios.png")]


def _significance(records, out_dir, alpha):
    """The significant pairs of every metric that has any (else nothing)."""
    tests = {metric: test for metric, test in significance(
        aggregate(records), alpha=alpha).items()
        if not isinstance(test, str) and test.significant_pairs()}
    if not tests:
        return {}, []
    labels = dict(EFFICIENCY)
    path = os.path.join(out_dir, "significance.png")
    plots.significance_plot({labels.get(k, k): v for k, v in tests.items()},
                            path)
    return ({"significance": path},
            [("significant differences", "significance.png")])


def _training(name, record, out_dir):
    """The first seed's per-exit training curves, when it has a history."""
    if not record.get("history"):
        return {}, []
    path = os.path.join(out_dir, f"training_{safe_name(name)}.png")
    plots.training_curves_plot(
        record["history"], path,
        title=f"Per-exit training ({name}, seed {record['seed']})")
    return ({f"training_{name}": path},
            [(f"training {name}", os.path.basename(path))])


def _dominance(name, record, out_dir):
    """The first seed's gradient dominance, when it was recorded."""
    dominance = record.get("gradient_dominance")
    if not (dominance and dominance.get("steps")):
        return {}, []
    path = os.path.join(out_dir, f"gradient_dominance_{safe_name(name)}.png")
    plots.gradient_dominance_plot(
        dominance, record["exit_names"], path,
        title=f"Gradient dominance ({name}, seed {record['seed']})")
    return ({f"gradient_dominance_{name}": path},
            [(f"gradient dominance {name}", os.path.basename(path))])


def comparison_figures(records, out_dir, title="Regime comparison",
                       alpha=0.05):
    """Draws the comparison report's figures into `out_dir`.

    Args:
        records: run records (see `run_record`).
        out_dir: the output directory (created if needed).
        title: the report's title (the trade-off plot's is derived).
        alpha: significance level of the pairs drawn.

    Returns:
        `(written, images)`: `{name: path}` of the PNG files, and the
        `(caption, file name)` pairs to embed in the report.

    Example:

    ```python
    written, images = comparison_figures(records, "runs/compare")
    ```
    """
    grouped = group_records(records)
    os.makedirs(out_dir, exist_ok=True)
    parts = [_tradeoff(grouped, out_dir, title),
             _exit_ratios(grouped, out_dir),
             _significance(records, out_dir, alpha)]
    for name, rs in grouped.items():
        parts += [_training(name, rs[0], out_dir),
                  _dominance(name, rs[0], out_dir)]
    written, images = {}, []
    for files, captions in parts:
        written.update(files)
        images += captions
    return written, images
