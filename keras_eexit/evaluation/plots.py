"""Plots of the accuracy/compute trade-off (matplotlib, written as PNG)."""

import numpy as np

from keras_eexit.utils.atomic import atomic_path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.2), dpi=120)


def _save(figure, path):
    import matplotlib.pyplot as plt

    if path is not None:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(figure)


def tradeoff_plot(curves, path=None, static=None,
                  title="Accuracy vs compute (early exit)"):
    """FLOPs-vs-accuracy curves with std bands across seeds.

    Args:
        curves: `{label: list of Sweep}` (one sweep per seed, same
            thresholds); the mean curve is drawn with a ±1 std band.
        path: where to write the PNG (atomically), or None.
        static: optional `{label: (mflops per exit, accuracy per exit)}`
            drawn as markers (static exits).
        title: the axes title.

    Returns:
        The matplotlib `Figure` (closed after saving; inspect its axes).
    """
    figure, axes = _figure()
    for label, sweeps in curves.items():
        flops = np.mean([s.mean_flops for s in sweeps], axis=0) / 1e6
        accuracy = np.array([s.accuracy for s in sweeps]) * 100
        mean, std = accuracy.mean(0), accuracy.std(0)
        order = np.argsort(flops)
        (line,) = axes.plot(flops[order], mean[order], label=label)
        axes.fill_between(flops[order], (mean - std)[order],
                          (mean + std)[order], alpha=0.2,
                          color=line.get_color())
    for label, (mflops, accuracy) in (static or {}).items():
        axes.plot(mflops, np.asarray(accuracy) * 100, "o", label=label)
    axes.set_xlabel("mean compute per sample (MFLOPs)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)
    return figure


def exit_ratio_plot(result, exit_names, path=None, max_groups=6,
                    title="Share of samples per exit"):
    """Exit ratios per threshold as grouped bars (EWC/LwF paper, fig. 3).

    Args:
        result: a `Sweep`.
        exit_names: names of the exits.
        path: where to write the PNG (atomically), or None.
        max_groups: how many thresholds (evenly picked) to draw.
        title: the axes title.

    Returns:
        The matplotlib `Figure`.
    """
    figure, axes = _figure()
    picks = np.unique(np.linspace(0, len(result.thresholds) - 1,
                                  max_groups).astype(int))
    width = 0.8 / len(exit_names)
    positions = np.arange(len(picks))
    for k, name in enumerate(exit_names):
        axes.bar(positions + k * width, result.exit_ratios[picks, k] * 100,
                 width, label=name)
    axes.set_xticks(positions + width * (len(exit_names) - 1) / 2)
    axes.set_xticklabels([f"{result.thresholds[i]:.2f}" for i in picks])
    axes.set_xlabel(f"threshold ({result.criterion})")
    axes.set_ylabel("samples leaving at the exit (%)")
    axes.set_title(title)
    axes.legend()
    _save(figure, path)
    return figure


def training_curves_plot(history, path=None, title="Per-exit training"):
    """Per-exit loss and accuracy per epoch, training and validation.

    Args:
        history: a `History.history` dict (keys like `exit_1_loss`,
            `val_exit_1_accuracy`).
        path: where to write the PNG (atomically), or None.
        title: the figure title.

    Returns:
        The matplotlib `Figure` with two axes (loss, accuracy).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 4),
                                                 dpi=120)
    names = sorted({k[len("val_"):] if k.startswith("val_") else k
                    for k in history if k.startswith(("exit_", "val_exit_"))})
    for axes, suffix, label in ((loss_axes, "_loss", "loss"),
                                (acc_axes, "_accuracy", "accuracy")):
        for name in (n for n in names if n.endswith(suffix)):
            exit_name = name[: -len(suffix)]
            (line,) = axes.plot(np.arange(1, len(history[name]) + 1),
                                history[name], label=f"{exit_name} train")
            if f"val_{name}" in history:
                axes.plot(np.arange(1, len(history[f"val_{name}"]) + 1),
                          history[f"val_{name}"], "--",
                          color=line.get_color(),
                          label=f"{exit_name} validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
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
        history: `GradientDominance.history` (list of `(step, cosines)`).
        exit_names: names of the exits.
        path: where to write the PNG (atomically), or None.
        title: the axes title.

    Returns:
        The matplotlib `Figure`.
    """
    figure, axes = _figure()
    steps = np.array([step for step, _ in history])
    values = np.array([cosines for _, cosines in history])
    for k, name in enumerate(exit_names):
        axes.plot(steps, values[:, k], label=name)
    axes.set_xlabel("training step")
    axes.set_ylabel("cosine(exit gradient, total gradient)")
    axes.set_ylim(-1.05, 1.05)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)
    return figure
