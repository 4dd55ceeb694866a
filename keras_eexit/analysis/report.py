"""The analyses' report: Kubaty et al.'s figures with their numbers.

`write_analysis_report(models, train, test, out_dir)` runs the chosen
analyses on saved or trained models and writes, atomically, each figure
with its numbers beside it, and `analysis.md` linking them (what
`keras-eexit analyze` writes):

- `ranks.png`, `ranks.json`, `ranks.csv`: numerical rank per backbone layer
  (D.5: operation outputs before BatchNorm/activation, 6000 features, test
  set), one line per model;
- `mutual_information.png`, `.json`, `.csv`: I(X; Z) per layer (§3.4, D.6,
  Jensen estimate by default, test set);
- `landscapes.png`, `landscapes.json`: loss landscapes of every exit on the
  training data (appendix A, D.7), a row per model;
- with two or more models, `paths.png`, `paths.json`: the aligned linear
  paths between every pair and their loss barriers; with three,
  `connectivity.png`, `connectivity.json`: the loss over the plane through
  them, the last two aligned to the first by weight matching (§3.1, D.8).

Each analysis is one section function returning its files and its lines.
This module sits above `keras_eexit.evaluation` (it renders with
`evaluation.reports.text`), as `figures.py` does.
"""

import itertools
import os

import numpy as np

from keras_eexit.analysis.figures import connectivity_plot
from keras_eexit.analysis.figures import landscape_plot
from keras_eexit.analysis.figures import layer_profile_plot
from keras_eexit.analysis.figures import path_plot
from keras_eexit.analysis.loss_landscape import loss_landscape
from keras_eexit.analysis.mode_connectivity import connectivity_plane
from keras_eexit.analysis.mode_connectivity import linear_path
from keras_eexit.analysis.weight_space import BATCHNORM
from keras_eexit.analysis.mutual_information import ESTIMATORS
from keras_eexit.analysis.mutual_information import layer_mutual_information
from keras_eexit.analysis.weight_matching import permutation_spec
from keras_eexit.analysis.weight_space import as_arrays
from keras_eexit.callbacks.numerical_rank import layer_ranks
from keras_eexit.evaluation.reports.text import csv_text
from keras_eexit.evaluation.reports.text import json_text
from keras_eexit.evaluation.reports.text import write_files
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

ANALYSES = ("rank", "mi", "landscape", "connectivity", "paths")
"""The analyses `write_analysis_report` can run."""


def _requested(analyses, count):
    """The analyses named by `analyses` ("auto", a string or a list)."""
    if analyses == "auto":
        chosen = ["rank", "mi", "landscape"]
        if count >= 2:
            chosen.append("paths")
        if count == 3:
            chosen.append("connectivity")
        return chosen
    if isinstance(analyses, str):
        analyses = analyses.split(",")
    chosen = [a.strip() for a in analyses if a.strip()]
    for name in chosen:
        check_choice("analyses", name, ANALYSES)
    return chosen


def choose_analyses(models, analyses="auto", resolution=31,
                    max_samples=None, mi_estimator="jensen"):
    """Checks an analysis request before any work; the analyses to run.

    Args:
        models: `{name: MultiExitModel}`, in the order they are reported.
        analyses: `"auto"` (rank, mutual information and landscapes, plus
            paths with two or more models and the connectivity plane with
            three), a comma-separated string or a list of `ANALYSES`.
        resolution: grid points per axis of landscapes and the plane.
        max_samples: at most this many samples per analysis, or None.
        mi_estimator: one of `mutual_information.ESTIMATORS`.

    Returns:
        The list of analyses to run.

    Raises:
        ValueError: for an unknown analysis, the plane without exactly
            three models, paths with fewer than two, models weight matching
            cannot align, or a bad setting.

    Example:

    ```python
    choose_analyses({"joint": a, "mixed": b})
    # ['rank', 'mi', 'landscape', 'paths']
    ```
    """
    if not isinstance(models, dict) or not models:
        raise invalid_value("models", "a non-empty dict {name: model}",
                            models)
    check_positive_int("resolution", resolution)
    if max_samples is not None:
        check_positive_int("max_samples", max_samples)
    check_choice("mi_estimator", mi_estimator, ESTIMATORS)
    chosen = _requested(analyses, len(models))
    if "connectivity" in chosen and len(models) != 3:
        raise ValueError("The connectivity plane needs exactly three "
                         f"models; received {len(models)}.")
    if "paths" in chosen and len(models) < 2:
        raise ValueError("Linear paths need at least two models.")
    if any(a in chosen for a in ("connectivity", "paths")):
        for model in models.values():
            permutation_spec(model)  # refuse early, clearly
    return chosen


def _profile(kind, values, title, caption, out_dir, ylabel):
    """A per-layer profile: figure, JSON, CSV and its section."""
    layer_profile_plot(values, os.path.join(out_dir, f"{kind}.png"),
                       ylabel=ylabel, title=title)
    rows = [{"model": m, "layer": layer, "value": v}
            for m, profile in values.items()
            for layer, v in profile.items()]
    files = write_files(out_dir, {f"{kind}.json": json_text(values),
                                  f"{kind}.csv": csv_text(rows)})
    files[f"{kind}.png"] = os.path.join(out_dir, f"{kind}.png")
    return files, [f"## {title}", "", caption, "",
                   f"![{title}]({kind}.png)", ""]


def _rank_section(models, test_x, out_dir, seed):
    ranks = {name: layer_ranks(m, test_x, seed=seed)
             for name, m in models.items()}
    return _profile(
        "ranks", ranks, "Numerical rank per layer",
        f"Test set ({len(test_x)} samples), convolution and dense outputs "
        "before BatchNorm and activation, 6000 sampled features (Kubaty et "
        "al. D.5).", out_dir, ylabel="numerical rank")


def _mi_section(models, test_x, out_dir, seed, estimator):
    mi = {name: layer_mutual_information(m, test_x, estimator=estimator,
                                         seed=seed)
          for name, m in models.items()}
    return _profile(
        "mutual_information", mi, "Mutual information per layer",
        f"Test set ({len(test_x)} samples), {estimator} estimate through "
        "Gaussian noise of 0.1 × the layer's total variance; at most log N "
        f"= {np.log(len(test_x)):.2f} nats (Kubaty et al. §3.4, D.6).",
        out_dir, ylabel="I(X; Z) (nats)")


def _figure_and_numbers(out_dir, stem, draw, numbers):
    """Draws `stem.png`, then writes `stem.json`; both paths."""
    png = os.path.join(out_dir, f"{stem}.png")
    draw(png)
    return {f"{stem}.png": png,
            **write_files(out_dir, {f"{stem}.json": json_text(numbers)})}


def _landscape_section(models, train, out_dir, seed, resolution, span):
    landscapes = {name: loss_landscape(m, train, resolution=resolution,
                                       span=span, seed=seed)
                  for name, m in models.items()}
    files = _figure_and_numbers(
        out_dir, "landscapes", lambda png: landscape_plot(landscapes,
                                                          path=png),
        {name: ls.to_dict() for name, ls in landscapes.items()})
    return files, [
        "## Loss landscapes", "",
        f"Training data ({len(train[0])} samples), every exit, "
        f"{resolution} × {resolution} grid over [-{span:g}, {span:g}]² "
        "along two filter-normalised Gaussian directions (Li et al. 2018; "
        "Kubaty et al. appendix A).", "",
        "![Loss landscapes](landscapes.png)", ""]


def _paths_section(models, train, out_dir, batchnorm):
    paths = {f"{a} → {b}": linear_path(models[a], models[b], train,
                                       batchnorm=batchnorm)
             for a, b in itertools.combinations(models, 2)}
    files = _figure_and_numbers(
        out_dir, "paths", lambda png: path_plot(paths, png),
        {label: p.to_dict() for label, p in paths.items()})
    return files, [
        "## Linear paths (aligned by weight matching)", "",
        *(f"- {label}: final-exit loss barrier {p.barrier[-1]:.4f}"
          for label, p in paths.items()),
        "", f"BatchNorm moving statistics: {batchnorm}d at every point.",
        "", "![Linear paths](paths.png)", ""]


def _connectivity_section(models, train, out_dir, resolution, batchnorm):
    plane = connectivity_plane(models, train, resolution=resolution,
                               batchnorm=batchnorm)
    files = _figure_and_numbers(
        out_dir, "connectivity", lambda png: connectivity_plot(plane, png),
        plane.to_dict())
    return files, [
        "## Mode connectivity", "",
        "Final-exit training loss over the plane through the three models, "
        f"{plane.names[1]} and {plane.names[2]} aligned to {plane.names[0]} "
        "by weight matching (Kubaty et al. §3.1, Figure 2).", "",
        "![Mode connectivity](connectivity.png)", ""]


def _sections(chosen, models, train, test_x, out_dir, settings):
    """Runs the chosen analyses in the report's order, one by one."""
    seed, resolution = settings["seed"], settings["resolution"]
    runs = {
        "rank": lambda: _rank_section(models, test_x, out_dir, seed),
        "mi": lambda: _mi_section(models, test_x, out_dir, seed,
                                  settings["mi_estimator"]),
        "landscape": lambda: _landscape_section(
            models, train, out_dir, seed, resolution, settings["span"]),
        "paths": lambda: _paths_section(models, train, out_dir,
                                        settings["batchnorm"]),
        "connectivity": lambda: _connectivity_section(
            models, train, out_dir, resolution, settings["batchnorm"]),
    }
    return [runs[name]() for name in runs if name in chosen]


def _settings(**settings):
    """The analyses' settings, checked (`choose_analyses` checks the rest)."""
    check_choice("batchnorm", settings["batchnorm"], BATCHNORM)
    return settings


def write_analysis_report(models, train, test, out_dir, analyses="auto",
                          dataset=None, resolution=31, span=1.0,
                          max_samples=None, mi_estimator="jensen", seed=0,
                          batchnorm="interpolate"):
    """Runs the analyses and writes their figures, numbers and summary.

    Args:
        models: `{name: MultiExitModel}` (e.g. one per regime), in order.
        train: labelled training data (a `tf.data.Dataset` of `(x, y)` or
            arrays `(x, y)`) for landscapes, paths and the plane.
        test: labelled test data, the same kinds (rank, MI).
        out_dir: the output directory (created if needed).
        analyses: see `choose_analyses`.
        dataset: the data set's name in the heading, or None.
        resolution: grid points per axis of landscapes and the plane (the
            paper: 100 and 150).
        span: landscapes cover `[-span, span]` along both directions.
        max_samples: at most this many samples of each split, or None.
        mi_estimator: `"jensen"` or `"monte_carlo"`.
        seed: seed of landscape directions and sampled features.
        batchnorm: `"interpolate"` or `"recompute"` BatchNorm statistics
            on paths and the plane (`mode_connectivity.linear_path`).

    Returns:
        `{file name: path}` of every file written, `analysis.md` last.

    Example:

    ```python
    splits = keras_eexit.data.load("digits")
    write_analysis_report({"joint": joint, "mixed": mixed}, splits.train,
                          splits.test, "runs/analyze", dataset="digits")
    ```
    """
    chosen = choose_analyses(models, analyses, resolution, max_samples,
                             mi_estimator)
    test_x, _ = as_arrays(test, max_samples)
    train = as_arrays(train, max_samples)
    os.makedirs(out_dir, exist_ok=True)
    settings = _settings(seed=seed, resolution=resolution, span=span,
                         mi_estimator=mi_estimator, batchnorm=batchnorm)
    written = {}
    lines = ["# Analyses" + (f" on {dataset}" if dataset else ""), "",
             "Models: " + ", ".join(models) + ".", ""]
    for files, section in _sections(chosen, models, train, test_x, out_dir,
                                    settings):
        written.update(files)
        lines += section
    written.update(write_files(out_dir, {"analysis.md": "\n".join(lines)}))
    return written
