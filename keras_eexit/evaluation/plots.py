"""Plots of early-exit evaluation and training (matplotlib, PNG).

Every function builds a `matplotlib.figure.Figure` on the Agg canvas
(headless, no pyplot state), writes it atomically as PNG when given a path,
and returns it so callers and tests can inspect its axes.
"""

import os
import re

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import FLOPS
from keras_eexit.evaluation.cost import check_cost
from keras_eexit.evaluation.cost import display_unit
from keras_eexit.utils.atomic import atomic_path


def new_figure(ncols=1, figsize=(6.4, 4.2), nrows=1, squeeze=True):
    """A figure on the Agg canvas, outside pyplot's global state.

    Building `matplotlib.figure.Figure` directly leaves the user's pyplot
    backend and open figures alone, and nothing needs closing.

    Args:
        ncols: columns of axes.
        figsize: inches.
        nrows: rows of axes.
        squeeze: as `Figure.subplots`.

    Returns:
        `(figure, axes)`.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=120, layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze)


_figure = new_figure


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def check_folder(path):
    """Raises `FileNotFoundError` naming the folder when `path`'s folder is
    missing (or is not a folder), before anything is drawn or written."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Cannot write {os.fspath(path)}: the folder {folder} does not "
            "exist. Create it first (os.makedirs).")


def save_figure(figure, path):
    """Writes `figure` as PNG to `path` atomically (no-op for None)."""
    if path is not None:
        check_folder(path)
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", bbox_inches="tight")


_save = save_figure


def _threshold_label(name):
    """The x label of a sweep over `name`'s thresholds."""
    criterion = criteria_lib.CRITERIA.get(name)
    return (criterion.threshold_label if criterion is not None
            else f"{name} threshold")


def _sweep_lists(curves, function):
    """`{label: [Sweep, ...]}` from the forms the plots accept."""
    if hasattr(curves, "accuracy") and hasattr(curves, "mean_flops"):
        return {"model": [curves]}
    if isinstance(curves, (list, tuple)) and curves and all(
            hasattr(c, "exit_ratios") for c in curves):
        return {"model": list(curves)}
    if not isinstance(curves, dict) or not curves:
        raise ValueError(
            f"{function}: expected {{label: Sweep or list of Sweeps}} (one "
            f"sweep per seed); received {type(curves).__name__}.")
    out = {}
    for label, sweeps in curves.items():
        if hasattr(sweeps, "accuracy") and hasattr(sweeps, "mean_flops"):
            sweeps = [sweeps]
        elif isinstance(sweeps, (list, tuple)):
            sweeps = list(sweeps)
        else:
            raise ValueError(
                f"{function}: the value of {label!r} must be a Sweep or a "
                f"list of Sweeps (one per seed); received "
                f"{type(sweeps).__name__}.")
        if not sweeps:
            raise ValueError(f"{function}: no sweeps for {label!r}.")
        bad = [type(s).__name__ for s in sweeps
               if not (hasattr(s, "accuracy") and hasattr(s, "mean_flops"))]
        if bad:
            raise ValueError(
                f"{function}: the value of {label!r} must hold Sweeps; "
                f"received {bad[0]}.")
        out[str(label)] = sweeps
    return out


def _cost_axis(curves, convention, cost):
    """`(scale, x label)` of the curves' cost unit (one for all): the
    axis shows costs divided by the scale."""
    units = {getattr(s, "cost_unit", FLOPS) for sweeps in curves.values()
             for s in sweeps}
    if len(units) > 1:
        raise ValueError(
            f"tradeoff_plot: the curves mix cost units ({sorted(units)}); "
            "sweep them all with the same `cost=`.")
    unit = units.pop()
    label, scale = display_unit(unit)
    if unit == FLOPS:
        detail = (f", {_CONVENTION_NAMES.get(convention, convention)}"
                  if convention else "")
        return scale, f"mean compute per sample ({label}{detail})"
    profile = check_cost(cost)
    detail = f", {profile.describe()}" if profile is not None else (
        ", measured")
    return scale, f"mean latency per sample ({label}{detail})"


def tradeoff_plot(curves, path=None, static=None,
                  title="Accuracy vs compute (early exit)", convention=None,
                  base_flops=None, cost=None):
    """Cost-vs-accuracy curves with std bands across seeds.

    Kubaty et al. fig. 6 style: one line per model/regime (the mean over
    seeds of accuracy against mean MFLOPs per sample along the sweep), a
    ±1 std band over seeds, and each model's static exits as markers.
    Sweeps made with a measured `CostProfile` (`cost_unit` `"s"`) are
    drawn against milliseconds per sample; every curve must have the same
    unit.

    Args:
        curves: `{label: Sweep or list of Sweeps}` (one sweep per seed,
            same thresholds), or one `Sweep`; the mean curve is drawn with
            a ±1 std band.
        path: where to write the PNG (atomically), or None.
        static: optional `{label: (cost per exit, accuracy per exit)}`
            drawn as markers (static exits), the cost in the axis' unit
            (MFLOPs, or ms for measured sweeps); a label that is a
            curve's label, or starts with it followed by a space, takes
            that curve's colour.
        title: the axes title.
        convention: the FLOP convention, named in the axis label
            (`"fvcore"`, `"keras_eexit"`), or None.
        base_flops: the base network's cost per sample, in the curves'
            unit (FLOPs, or seconds); when given, dotted lines mark the
            25/50/75/100% budgets of the table.
        cost: the `CostProfile` measured sweeps were made with: the axis
            names its runtime, batch size and device.

    Returns:
        The matplotlib `Figure` (inspect its axes:
        one line per curve and per static set, one band per curve).
    """
    curves = _sweep_lists(curves, "tradeoff_plot")
    scale, xlabel = _cost_axis(curves, convention, cost)
    if path is not None:
        check_folder(path)
    figure, axes = _figure()
    colours = {}
    for label, sweeps in curves.items():
        flops = np.mean([s.mean_flops for s in sweeps], axis=0) / scale
        accuracy = np.array([s.accuracy for s in sweeps]) * 100
        mean = accuracy.mean(0)
        std = accuracy.std(0, ddof=1) if len(sweeps) > 1 else np.zeros_like(
            mean)
        order = np.argsort(flops, kind="stable")
        seeds = f" ({len(sweeps)} seeds)" if len(sweeps) > 1 else ""
        (line,) = axes.plot(flops[order], mean[order], label=label + seeds)
        colours[label] = line.get_color()
        axes.fill_between(flops[order], (mean - std)[order],
                          (mean + std)[order], alpha=0.2,
                          color=line.get_color(), linewidth=0)
    for label, (mflops, accuracy) in (static or {}).items():
        colour = next((c for name, c in colours.items()
                       if label == name or label.startswith(name + " ")),
                      None)
        axes.plot(mflops, np.asarray(accuracy) * 100, "o", label=label,
                  color=colour, markeredgecolor="black", markersize=6,
                  zorder=3)
    if base_flops:
        for fraction in (0.25, 0.5, 0.75, 1.0):
            axes.axvline(fraction * base_flops / scale, color="grey",
                         linestyle=":", linewidth=0.8, zorder=0)
            axes.annotate(f"{fraction:.0%}", (fraction * base_flops / scale,
                                              1.0),
                          xycoords=("data", "axes fraction"),
                          textcoords="offset points", xytext=(2, -10),
                          fontsize="x-small", color="grey")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)
    return figure


_CONVENTION_NAMES = {"fvcore": "fvcore convention, as Kubaty et al.",
                     "keras_eexit": "2 per multiply-add"}


def exit_ratio_plot(result, exit_names, path=None, max_groups=6,
                    thresholds=None, title="Share of samples per exit"):
    """Exit ratios per threshold as grouped bars (EWC/LwF paper, fig. 3).

    With several regimes (a dict) there is one panel per regime, side by
    side with a shared y axis; with several seeds a bar is the mean share
    over seeds and its error bar the standard deviation (ddof = 1).

    Args:
        result: a `Sweep`, a list of `Sweep`s (seeds), or `{label: Sweep
            or list of Sweeps}` (regimes); every sweep has the same
            thresholds.
        exit_names: names of the exits.
        path: where to write the PNG (atomically), or None.
        max_groups: how many thresholds (evenly picked along the sweep) to
            draw when `thresholds` is None.
        thresholds: optional threshold values to draw (the nearest sweep
            point of each).
        title: the figure title.

    Returns:
        The matplotlib `Figure` (one axes per regime, one bar per exit per
        threshold group).
    """
    groups = _sweep_lists(result, "exit_ratio_plot")
    exit_names = list(exit_names)
    for label, sweeps in groups.items():
        for s in sweeps:
            ratios = np.asarray(s.exit_ratios)
            if ratios.ndim != 2 or ratios.shape[1] != len(exit_names):
                raise ValueError(
                    f"exit_ratio_plot: {len(exit_names)} exit names for "
                    f"{ratios.shape[-1]} exits.")
    if path is not None:
        check_folder(path)
    def points(sweep):
        """The sweep's x values, whether rows are per-exit, the picks."""
        values = np.asarray(sweep.thresholds, dtype=np.float64)
        per_exit = values.ndim == 2
        if per_exit:  # rows of per-exit thresholds: label the points
            if thresholds is not None:
                raise ValueError(
                    "exit_ratio_plot: `thresholds` picks points of a sweep "
                    "over single thresholds; this sweep has per-exit rows.")
            values = np.arange(1, len(values) + 1, dtype=np.float64)
        if thresholds is None:
            picks = np.unique(np.linspace(0, len(values) - 1,
                                          max_groups).round().astype(int))
        else:
            picks = np.array([int(np.abs(values - t).argmin())
                              for t in np.ravel(thresholds)])
        return values, per_exit, picks

    for sweeps in groups.values():
        points(sweeps[0])  # refuse bad `thresholds` before drawing
    panels = len(groups)
    figure, axes_list = _figure(panels, figsize=(
        max(6.4, 4.0 * panels), 4.2), squeeze=False)
    axes_list = axes_list[0]
    width = 0.8 / len(exit_names)
    for axes, (label, sweeps) in zip(axes_list, groups.items()):
        # Each panel reads its own sweep: groups may use different exit
        # rules (a patience sweep has K points, max-softmax 100).
        first = sweeps[0]
        values, per_exit, picks = points(first)
        positions = np.arange(len(picks))
        integral = np.all(values == np.round(values))
        ratios = np.stack([np.asarray(s.exit_ratios, dtype=np.float64)
                           for s in sweeps]) * 100
        mean = ratios.mean(0)
        std = ratios.std(0, ddof=1) if len(sweeps) > 1 else None
        for k, name in enumerate(exit_names):
            axes.bar(positions + k * width, mean[picks, k], width,
                     label=name, yerr=None if std is None else std[picks, k],
                     error_kw={"elinewidth": 0.8, "capsize": 2})
        axes.set_xticks(positions + width * (len(exit_names) - 1) / 2)
        axes.set_xticklabels([f"{values[i]:.0f}" if integral
                              else f"{values[i]:.2f}" for i in picks])
        axes.set_xlabel("sweep point (per-exit thresholds)" if per_exit
                        else _threshold_label(first.criterion))
        axes.set_ylim(0, 105)
        axes.grid(axis="y", alpha=0.3)
        if panels > 1 or len(sweeps) > 1:
            seeds = (f" (mean ± std, {len(sweeps)} seeds)" if len(sweeps) > 1
                     else "")
            axes.set_title(f"{label}{seeds}", fontsize="medium")
    axes_list[0].set_ylabel("samples leaving at the exit (%)")
    if panels == 1:
        axes_list[0].set_title(title if len(next(iter(groups.values()))) == 1
                               else f"{title}\n{axes_list[0].get_title()}")
        axes_list[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16),
                            ncol=min(len(exit_names), 6), fontsize="small",
                            frameon=False)
    else:
        figure.suptitle(title)
        handles, labels = axes_list[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center",
                      ncol=min(len(exit_names), 8), fontsize="small",
                      frameon=False)
    _save(figure, path)
    return figure


def training_curves_plot(history, path=None, title="Per-exit training"):
    """Per-exit loss and accuracy per epoch, training and validation.

    Args:
        history: a `History` or its `history` dict (keys like
            `exit_1_loss`, `val_exit_1_accuracy`; dashed lines are
            validation).
        path: where to write the PNG (atomically), or None.
        title: the figure title.

    Returns:
        The matplotlib `Figure` with two axes (loss, accuracy).
    """
    history = getattr(history, "history", history)
    if path is not None:
        check_folder(path)
    figure, (loss_axes, acc_axes) = _figure(2, figsize=(10, 4.6))
    exits = sorted(
        {m.group(1) for m in (re.fullmatch(r"(?:val_)?(exit_\w+?)_"
                                           r"(?:loss|accuracy)", key)
                              for key in history) if m},
        key=lambda name: [int(t) if t.isdigit() else t
                          for t in re.split(r"(\d+)", name)])
    if not exits:
        raise ValueError(
            "training_curves_plot: no per-exit keys such as 'exit_1_loss' "
            f"in the history (keys: {sorted(history)}).")
    colours = {}
    for axes, suffix, label in ((loss_axes, "loss", "loss"),
                                (acc_axes, "accuracy", "accuracy")):
        for exit_name in exits:
            for prefix, style, kind in (("", "-", "train"),
                                        ("val_", "--", "validation")):
                key = f"{prefix}{exit_name}_{suffix}"
                if key not in history:
                    continue
                values = np.asarray(history[key], dtype=np.float64)
                (line,) = axes.plot(np.arange(1, len(values) + 1), values,
                                    style, color=colours.get(exit_name),
                                    label=f"{exit_name} {kind}")
                colours[exit_name] = line.get_color()
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(_integer_ticks())
        axes.set_ylabel(label if suffix == "loss"
                        else "accuracy (fraction correct)")
        axes.set_title(f"{label} per exit")
        axes.grid(alpha=0.3)
    # One legend for both panels, below them: inside an axes it covers the
    # curves (the accuracy curves rise into every corner).
    handles, labels = loss_axes.get_legend_handles_labels()
    known = set(labels)
    for handle, label in zip(*acc_axes.get_legend_handles_labels()):
        if label not in known:
            handles.append(handle)
            labels.append(label)
    if handles:
        figure.legend(handles, labels, loc="outside lower center",
                      ncol=min(len(labels), 6), fontsize="small",
                      frameon=False)
    figure.suptitle(title)
    _save(figure, path)
    return figure


def gradient_dominance_plot(history, exit_names, path=None,
                            title="Gradient dominance"):
    """Cosine of each exit's backbone gradient with the total, over steps.

    Args:
        history: a `GradientDominance` callback, its `history` (list of
            `(step, cosines)`) or its `to_dict()`.
        exit_names: names of the exits.
        path: where to write the PNG (atomically), or None.
        title: the axes title.

    Returns:
        The matplotlib `Figure` (one line per exit).
    """
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    if isinstance(history, dict):
        steps = np.asarray(history["steps"])
        values = np.asarray(history["cosines"], dtype=np.float64)
    else:
        steps = np.array([step for step, _ in history])
        values = np.array([cosines for _, cosines in history],
                          dtype=np.float64)
    exit_names = list(exit_names)
    if values.size == 0:
        raise ValueError("gradient_dominance_plot: no measurements.")
    if path is not None:
        check_folder(path)
    if values.shape[1] != len(exit_names):
        raise ValueError(
            f"gradient_dominance_plot: {len(exit_names)} exit names for "
            f"{values.shape[1]} exits.")
    figure, axes = _figure()
    for k, name in enumerate(exit_names):
        axes.plot(steps, values[:, k], marker="." if len(steps) < 30
                  else None, label=name)
    axes.set_xlabel("training step")
    axes.xaxis.set_major_locator(_integer_ticks())
    axes.set_ylabel("cos(exit gradient, total gradient)")
    axes.set_ylim(-1.05, 1.05)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)
    return figure


def significance_plot(comparisons, path=None,
                      title="Significant differences (post-hoc tests)"):
    """Directed graphs of the significant pairs, one panel per metric.

    "Strategies at a glance", Fig. 11: each regime is a node; an arrow
    from A to B means A is significantly better than B on that metric
    (post-hoc p < α), labelled with the difference of the means. Regimes
    sit on a circle in the order of their means (best at the top).

    Args:
        comparisons: `{metric label: Comparison}` (from `compare`).
        path: where to write the PNG (atomically), or None.
        title: the figure title.

    Returns:
        The matplotlib `Figure` (one axes per metric; one arrow annotation
        per significant pair).
    """
    from matplotlib.patches import FancyArrowPatch

    comparisons = {str(k): v for k, v in dict(comparisons).items()}
    if not comparisons:
        raise ValueError("significance_plot: no comparisons to draw.")
    if path is not None:
        check_folder(path)
    panels = len(comparisons)
    ncols = min(panels, 3)
    nrows = -(-panels // ncols)
    figure, axes_grid = _figure(ncols, figsize=(4.0 * ncols, 3.0 * nrows),
                                nrows=nrows, squeeze=False)
    flat = list(axes_grid.ravel())
    for axes, (metric, comparison) in zip(flat, comparisons.items()):
        names = list(comparison.names)
        angles = np.pi / 2 - 2 * np.pi * np.arange(len(names)) / len(names)
        xy = {n: (np.cos(a), np.sin(a)) for n, a in zip(names, angles)}
        pairs = comparison.significant_pairs()
        for better, worse, difference, p in pairs:
            (x0, y0), (x1, y1) = xy[better], xy[worse]
            axes.add_patch(FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14,
                shrinkA=22, shrinkB=22, color="tab:blue", linewidth=1.4,
                connectionstyle="arc3,rad=0.08"))
            axes.annotate(f"{difference:+.3g}", ((x0 + x1) / 2,
                                                   (y0 + y1) / 2),
                          fontsize="x-small", ha="center", va="center",
                          color="tab:blue",
                          bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                "ec": "none", "alpha": 0.8})
        for name, mean in zip(names, comparison.means):
            x, y = xy[name]
            axes.annotate(f"{name}\n{mean:.4g}", (x, y), ha="center",
                          va="center", fontsize="small",
                          bbox={"boxstyle": "round,pad=0.3",
                                "fc": "#f2f2f2", "ec": "grey"})
        from keras_eexit.evaluation.stats import TEST_NAMES

        test = (f"{TEST_NAMES.get(comparison.omnibus, comparison.omnibus)}"
                f" + {TEST_NAMES.get(comparison.posthoc, comparison.posthoc)}")
        axes.set_title(f"{metric}\n{len(pairs)} significant pair(s), "
                       f"{test}", fontsize="small")
        ys = [y for _, y in xy.values()]
        axes.set_xlim(-1.6, 1.6)
        axes.set_ylim(min(ys) - 0.35, max(ys) + 0.35)
        axes.set_aspect("equal")
        axes.axis("off")
    for axes in flat[panels:]:
        axes.axis("off")
    figure.suptitle(f"{title}: arrow A → B = A significantly better "
                    "(label: difference of means)", fontsize="medium")
    _save(figure, path)
    return figure
