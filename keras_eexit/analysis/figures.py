"""Figures of Kubaty et al.'s analyses (matplotlib, PNG, written atomically).

`layer_profile_plot` draws a per-layer measure for several models (numerical
rank: their Figure 3; I(X; Z): Figure 5), `landscape_plot` contour maps of
loss landscapes per regime and exit (Figure 17), `connectivity_plot` the
loss over the plane through three models (Figure 2) and `path_plot` the
loss along linear paths between models. Every function returns the
`Figure`; none touches pyplot's global state.
"""

import numpy as np

from keras_eexit.evaluation.plots import check_folder
from keras_eexit.evaluation.plots import new_figure
from keras_eexit.evaluation.plots import save_figure


def layer_profile_plot(profiles, path=None, ylabel="value",
                       title="Per-layer profile"):
    """One line per model over the backbone's layers, in network order.

    Args:
        profiles: `{model or regime name: {layer name: value}}` (every
            model with the same layers, e.g. `layer_ranks` or
            `layer_mutual_information` of one architecture trained under
            several regimes).
        path: where to write the PNG, or None.
        ylabel: the y-axis label.
        title: the axes title.

    Returns:
        The `Figure` (one line per model).
    """
    if not profiles:
        raise ValueError("layer_profile_plot: no profiles to draw.")
    if path is not None:
        check_folder(path)
    layers = list(next(iter(profiles.values())))
    for name, profile in profiles.items():
        if list(profile) != layers:
            raise ValueError(
                f"layer_profile_plot: {name!r} has layers {list(profile)}, "
                f"expected {layers} (one architecture).")
    figure, axes = new_figure(figsize=(max(6.4, 0.45 * len(layers) + 2),
                                       4.2))
    positions = np.arange(1, len(layers) + 1)
    for name, profile in profiles.items():
        axes.plot(positions, [profile[layer] for layer in layers],
                  marker="o", markersize=4, label=name)
    axes.set_xticks(positions)
    axes.set_xticklabels(layers, rotation=60, ha="right",
                         fontsize="x-small")
    axes.set_xlabel("layer (network order)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    save_figure(figure, path)
    return figure


def _levels(grids, vmax):
    finite = np.concatenate([g[np.isfinite(g)].ravel() for g in grids])
    low = max(float(finite.min()), 1e-3) if finite.size else 1e-3
    high = float(vmax) if vmax is not None else float(finite.max())
    high = max(high, low * 1.01)
    return np.geomspace(low, high, 16)


def landscape_plot(landscapes, exits=None, path=None, vmax=None,
                   title="Training loss landscapes"):
    """Contour maps: one row per regime, one column per exit.

    Args:
        landscapes: `{regime: LossLandscape}` (e.g. the same architecture
            trained under each regime).
        exits: the columns: exit numbers 1..K, exit names or `"total"`
            (default: every exit).
        path: where to write the PNG, or None.
        vmax: loss above which the colour saturates (default: the
            largest).
        title: the figure title.

    Returns:
        The `Figure` (one axes per regime and exit, plus colour bars).
    """
    if not landscapes:
        raise ValueError("landscape_plot: no landscapes to draw.")
    if path is not None:
        check_folder(path)
    first = next(iter(landscapes.values()))
    exits = list(exits) if exits is not None else list(
        range(1, len(first.exit_names) + 1))
    rows, cols = len(landscapes), len(exits)
    figure, grid = new_figure(cols, figsize=(3.3 * cols + 0.8,
                                             3.0 * rows + 0.6),
                              nrows=rows, squeeze=False)
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FormatStrFormatter

    # One colour scale per column (exit), shared by the regimes (rows), so
    # regimes compare directly; exits differ too much to share one.
    scales = []
    for exit in exits:
        levels = _levels([ls.loss(exit) for ls in landscapes.values()], vmax)
        scales.append((levels, LogNorm(levels[0], levels[-1])))
    for r, (regime, landscape) in enumerate(landscapes.items()):
        c = landscape.coordinates
        for j, exit in enumerate(exits):
            axes = grid[r, j]
            levels, norm = scales[j]
            values = np.clip(landscape.loss(exit), levels[0], levels[-1])
            mappable = axes.contourf(c, c, values, levels=levels, norm=norm,
                                     cmap="viridis", extend="neither")
            axes.contour(c, c, values, levels=levels[::3], colors="white",
                         linewidths=0.4, alpha=0.6)
            axes.plot([0], [0], "r+", markersize=8)
            label = (exit if isinstance(exit, str)
                     else landscape.exit_names[int(exit) - 1])
            axes.set_title(f"{regime}: {label}", fontsize="small")
            axes.set_aspect("equal")
            if r == rows - 1:
                axes.set_xlabel("δ (filter-normalised)")
            if j == 0:
                axes.set_ylabel("η")
            if r == rows - 1:
                bar = figure.colorbar(mappable, ax=grid[:, j],
                                      orientation="horizontal", shrink=0.9,
                                      label="loss (log scale)")
                bar.set_ticks(np.geomspace(levels[0], levels[-1], 4))
                bar.ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
                bar.ax.xaxis.set_minor_formatter(FormatStrFormatter(""))
    figure.suptitle(f"{title} (+: trained model)")
    save_figure(figure, path)
    return figure


def connectivity_plot(plane, path=None, exit=None, vmax=2.0,
                      title="Mode connectivity"):
    """The loss over the plane through three models (Figure 2 style).

    Losses at or above `vmax` share the top colour (yellow), as in the
    paper (≥ 2.0); the three models are marked and named.

    Args:
        plane: a `ConnectivityPlane`.
        path: where to write the PNG, or None.
        exit: which exit's loss (number 1..K or name; default the final).
        vmax: loss where the colour saturates.
        title: the axes title.

    Returns:
        The `Figure`.
    """
    if path is not None:
        check_folder(path)
    values = plane.loss(exit)
    figure, axes = new_figure(figsize=(6.0, 5.0))
    levels = np.linspace(0.0, vmax, 21)
    mappable = axes.contourf(plane.x, plane.y, np.clip(values, 0.0, vmax),
                             levels=levels, cmap="viridis")
    axes.contour(plane.x, plane.y, values, levels=levels[::4],
                 colors="white", linewidths=0.4, alpha=0.6)
    for (x, y), name in zip(plane.points, plane.names):
        axes.plot([x], [y], "o", color="red", markeredgecolor="white")
        axes.annotate(name, (x, y), textcoords="offset points",
                      xytext=(6, 6), color="white", fontsize="small",
                      fontweight="bold")
    figure.colorbar(mappable, ax=axes, label=f"loss (≥ {vmax:g} saturates)")
    axes.set_aspect("equal")
    axes.set_xlabel("weight-space distance along u")
    axes.set_ylabel("along v")
    index = (len(plane.exit_names) - 1 if exit is None else
             plane.exit_names.index(exit) if isinstance(exit, str)
             else int(exit) - 1)
    aligned = "aligned by weight matching" if plane.aligned else "unaligned"
    axes.set_title(f"{title}: {plane.exit_names[index]} "
                   f"({aligned} to {plane.names[0]})", fontsize="medium")
    save_figure(figure, path)
    return figure


def path_plot(paths, path=None, exit=None, title="Linear interpolation"):
    """Loss along linear paths between models, one line per path.

    Args:
        paths: `{label: LinearPath}`.
        path: where to write the PNG, or None.
        exit: which exit (number 1..K or name; default the final).
        title: the axes title.

    Returns:
        The `Figure` (one line per path; the barrier in each label).
    """
    if not paths:
        raise ValueError("path_plot: no paths to draw.")
    if path is not None:
        check_folder(path)
    figure, axes = new_figure()
    for label, line in paths.items():
        names = list(line.exit_names)
        k = (len(names) - 1 if exit is None else names.index(exit)
             if isinstance(exit, str) else int(exit) - 1)
        axes.plot(line.t, line.losses[:, k], marker=".",
                  label=f"{label} (barrier {line.barrier[k]:.3g})")
    axes.set_xlabel("t (0: first model, 1: second)")
    axes.set_ylabel(f"{names[k]} loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    save_figure(figure, path)
    return figure
