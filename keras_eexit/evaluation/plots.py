"""Plots of early-exit evaluation and training (matplotlib, PNG).

Every function builds a `matplotlib.figure.Figure` on the Agg canvas
(headless, no pyplot state), writes it atomically as PNG when given a path,
and returns it so callers and tests can inspect its axes.
"""

import re

import numpy as np

from keras_eexit.utils.atomic import atomic_path


def _figure(ncols=1, figsize=(6.4, 4.2)):
    """A figure on the Agg canvas, outside pyplot's global state.

    Building `matplotlib.figure.Figure` directly leaves the user's pyplot
    backend and open figures alone, and nothing needs closing.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=120, layout="constrained")
    return figure, figure.subplots(1, ncols)


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _save(figure, path):
    if path is not None:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", bbox_inches="tight")


def tradeoff_plot(curves, path=None, static=None,
                  title="Accuracy vs compute (early exit)"):
    """FLOPs-vs-accuracy curves with std bands across seeds.

    Kubaty et al. fig. 6 style: one line per model/regime (the mean over
    seeds of accuracy against mean MFLOPs per sample along the sweep), a
    ±1 std band over seeds, and each model's static exits as markers.

    Args:
        curves: `{label: list of Sweep}` (one sweep per seed, same
            thresholds); the mean curve is drawn with a ±1 std band.
        path: where to write the PNG (atomically), or None.
        static: optional `{label: (mflops per exit, accuracy per exit)}`
            drawn as markers (static exits); a label that is a curve's
            label, or starts with it followed by a space, takes that
            curve's colour.
        title: the axes title.

    Returns:
        The matplotlib `Figure` (inspect its axes:
        one line per curve and per static set, one band per curve).
    """
    figure, axes = _figure()
    colours = {}
    for label, sweeps in curves.items():
        sweeps = list(sweeps)
        if not sweeps:
            raise ValueError(f"tradeoff_plot: no sweeps for {label!r}.")
        flops = np.mean([s.mean_flops for s in sweeps], axis=0) / 1e6
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
    axes.set_xlabel("mean compute per sample (MFLOPs)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)
    return figure


def exit_ratio_plot(result, exit_names, path=None, max_groups=6,
                    thresholds=None, title="Share of samples per exit"):
    """Exit ratios per threshold as grouped bars (EWC/LwF paper, fig. 3).

    Args:
        result: a `Sweep`.
        exit_names: names of the exits.
        path: where to write the PNG (atomically), or None.
        max_groups: how many thresholds (evenly picked along the sweep) to
            draw when `thresholds` is None.
        thresholds: optional threshold values to draw (the nearest sweep
            point of each).
        title: the axes title.

    Returns:
        The matplotlib `Figure` (one bar per exit per threshold group).
    """
    exit_names = list(exit_names)
    ratios = np.asarray(result.exit_ratios)
    if ratios.shape[1] != len(exit_names):
        raise ValueError(
            f"exit_ratio_plot: {len(exit_names)} exit names for "
            f"{ratios.shape[1]} exits.")
    values = np.asarray(result.thresholds, dtype=np.float64)
    if thresholds is None:
        picks = np.unique(np.linspace(0, len(values) - 1,
                                      max_groups).round().astype(int))
    else:
        picks = np.array([int(np.abs(values - t).argmin())
                          for t in np.ravel(thresholds)])
    figure, axes = _figure()
    width = 0.8 / len(exit_names)
    positions = np.arange(len(picks))
    for k, name in enumerate(exit_names):
        axes.bar(positions + k * width, ratios[picks, k] * 100, width,
                 label=name)
    axes.set_xticks(positions + width * (len(exit_names) - 1) / 2)
    integral = np.all(values == np.round(values))
    axes.set_xticklabels([f"{values[i]:.0f}" if integral
                          else f"{values[i]:.2f}" for i in picks])
    names = {"max_softmax": "max-softmax threshold",
             "entropy": "normalised-entropy threshold",
             "patience": "patience (exits)", "static": "static exit number"}
    axes.set_xlabel(names.get(result.criterion, f"{result.criterion} "
                              "threshold"))
    axes.set_ylabel("samples leaving at the exit (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16),
                ncol=min(len(exit_names), 6), fontsize="small", frameon=False)
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
    figure, (loss_axes, acc_axes) = _figure(2, figsize=(10, 4))
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
        if axes.lines:
            axes.legend(fontsize="small")
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
