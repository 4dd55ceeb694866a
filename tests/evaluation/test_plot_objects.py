"""Plots: curves, bars, labels and legends, inspected on the Figure."""

import numpy as np
import pytest

from keras_eexit.evaluation import exit_ratio_plot
from keras_eexit.evaluation import gradient_dominance_plot
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation import tradeoff_plot
from keras_eexit.evaluation import training_curves_plot

PNG = b"\x89PNG\r\n\x1a\n"


def _sweep(seed, criterion="max_softmax", thresholds=25, k=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(k, 150, 5))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return threshold_sweep(probs, rng.integers(0, 5, 150),
                           np.arange(1, k + 1) * 2e6, criterion, thresholds)


def _labelled(axes):
    assert axes.get_xlabel() and axes.get_ylabel() and axes.get_title()
    assert axes.get_legend() is not None


def _png(path):
    content = path.read_bytes()
    assert content[:8] == PNG and len(content) > 1000


def test_tradeoff_curves_bands_and_static_markers(tmp_path):
    path = tmp_path / "t.png"
    figure = tradeoff_plot(
        {"joint": [_sweep(0), _sweep(1), _sweep(2)],
         "mixed": [_sweep(3), _sweep(4), _sweep(5)],
         "single": [_sweep(6)]},
        path, static={"joint (static exits)": ([2, 4, 6, 8],
                                               [.3, .4, .5, .6]),
                      "other": ([1, 2, 3, 4], [.2, .3, .4, .5])})
    axes = figure.axes[0]
    _labelled(axes)
    _png(path)
    lines = axes.get_lines()
    assert len(lines) == 5  # three curves, two marker sets
    assert len(axes.collections) == 3  # one std band per curve
    assert "MFLOPs" in axes.get_xlabel()
    labels = [t.get_text() for t in axes.get_legend().get_texts()]
    assert labels[:3] == ["joint (3 seeds)", "mixed (3 seeds)", "single"]
    # Static markers of a regime take its curve's colour.
    assert lines[3].get_color() == lines[0].get_color()
    assert lines[4].get_color() not in {line.get_color()
                                        for line in lines[:3]}
    # Curves are in MFLOPs and percent; the band is ±1 std (ddof=1).
    x, y = lines[0].get_data()
    sweeps = [_sweep(0), _sweep(1), _sweep(2)]
    order = np.argsort(np.mean([s.mean_flops for s in sweeps], 0),
                       kind="stable")
    np.testing.assert_allclose(
        y, np.mean([s.accuracy for s in sweeps], 0)[order] * 100)
    assert x.max() <= 8.0 + 1e-9


def test_exit_ratio_bars(tmp_path):
    figure = exit_ratio_plot(_sweep(0), ["e1", "e2", "e3", "e4"],
                             tmp_path / "r.png", max_groups=5)
    axes = figure.axes[0]
    _labelled(axes)
    _png(tmp_path / "r.png")
    assert len(axes.patches) == 4 * 5
    heights = np.array([p.get_height() for p in axes.patches]).reshape(4, 5)
    np.testing.assert_allclose(heights.sum(0), 100.0)  # each group sums
    chosen = exit_ratio_plot(_sweep(0), ["e1", "e2", "e3", "e4"],
                             thresholds=[0.5, 0.9])
    assert [t.get_text() for t in chosen.axes[0].get_xticklabels()] == [
        "0.50", "0.92"]  # nearest points of linspace(0, 1, 25)
    patience = exit_ratio_plot(_sweep(0, "patience"),
                               ["e1", "e2", "e3", "e4"])
    assert [t.get_text() for t in patience.axes[0].get_xticklabels()] == [
        "0", "1", "2", "3"]  # patience 0..K-1, as the reference (issue 15)
    assert "patience" in patience.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="3 exit names for 4 exits"):
        exit_ratio_plot(_sweep(0), ["e1", "e2", "e3"])


class _History:
    def __init__(self, history):
        self.history = history


def test_training_curves_per_exit(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5]}
    for k in (1, 2, 10):
        for prefix in ("", "val_"):
            for metric in ("loss", "accuracy"):
                history[f"{prefix}exit_{k}_{metric}"] = list(
                    np.linspace(1, 0.5, 3) * k)
    del history["exit_10_accuracy"]  # validation only for this one
    figure = training_curves_plot(_History(history), tmp_path / "c.png")
    loss_axes, acc_axes = figure.axes
    _png(tmp_path / "c.png")
    for axes in (loss_axes, acc_axes):
        assert axes.get_xlabel() == "epoch" and axes.get_ylabel()
        # The legend sits below the panels, never over the curves.
        assert axes.get_legend() is None
    assert len(loss_axes.lines) == 6 and len(acc_axes.lines) == 5
    (legend,) = figure.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == 6  # every curve of both panels, once
    assert labels[:4] == ["exit_1 train", "exit_1 validation",
                          "exit_2 train", "exit_2 validation"]
    styles = [line.get_linestyle() for line in loss_axes.lines[:2]]
    assert styles == ["-", "--"]
    assert loss_axes.lines[0].get_color() == loss_axes.lines[1].get_color()
    with pytest.raises(ValueError, match="no per-exit keys"):
        training_curves_plot({"loss": [1.0]})


def test_gradient_dominance_from_callback_dict_or_list(tmp_path):
    as_dict = {"steps": [0, 5, 10], "cosines": [[0.1, 0.9], [0.2, 0.8],
                                                [0.4, 0.7]]}
    as_list = [(s, np.array(c)) for s, c in zip(as_dict["steps"],
                                                 as_dict["cosines"])]
    for history in (as_dict, as_list):
        figure = gradient_dominance_plot(history, ["exit_1", "exit_2"],
                                         tmp_path / "g.png")
        axes = figure.axes[0]
        _labelled(axes)
        assert len(axes.lines) == 2
        np.testing.assert_allclose(axes.lines[1].get_ydata(),
                                   [0.9, 0.8, 0.7])
    _png(tmp_path / "g.png")
    with pytest.raises(ValueError, match="no measurements"):
        gradient_dominance_plot({"steps": [], "cosines": []}, ["a"])


def test_plots_leave_pyplot_alone(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    tradeoff_plot({"a": [_sweep(0)]}, tmp_path / "a.png")
    assert plt.get_fignums() == before
