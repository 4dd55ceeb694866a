"""Plots write PNGs with the expected curves and bars."""

import numpy as np

from keras_eexit.evaluation import exit_ratio_plot
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation import tradeoff_plot


def _sweeps(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(3, 200, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return threshold_sweep(probs, rng.integers(0, 4, 200), [1e6, 2e6, 3e6],
                           thresholds=20)


def test_tradeoff_plot(tmp_path):
    path = tmp_path / "tradeoff.png"
    figure = tradeoff_plot({"joint": [_sweeps(0), _sweeps(1)],
                            "mixed": [_sweeps(2), _sweeps(3)]}, path,
                           static={"joint static": ([1, 2, 3],
                                                    [0.3, 0.4, 0.5])})
    axes = figure.axes[0]
    assert len(axes.lines) == 3  # two curves + static markers
    assert len(axes.collections) == 2  # the std bands
    assert "MFLOPs" in axes.get_xlabel() and "%" in axes.get_ylabel()
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exit_ratio_plot(tmp_path):
    path = tmp_path / "ratios.png"
    figure = exit_ratio_plot(_sweeps(0), ["exit_1", "exit_2", "exit_3"],
                             path, max_groups=5)
    axes = figure.axes[0]
    assert len(axes.patches) == 3 * 5
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [
        "exit_1", "exit_2", "exit_3"]
    assert path.stat().st_size > 1000


def test_training_curves_plot(tmp_path):
    from keras_eexit.evaluation import training_curves_plot

    history = {"loss": [3, 2], "exit_1_loss": [1.0, 0.8],
               "exit_2_loss": [1.1, 0.7], "val_exit_1_loss": [1.2, 0.9],
               "exit_1_accuracy": [0.5, 0.6], "exit_2_accuracy": [0.4, 0.7],
               "val_exit_2_accuracy": [0.45, 0.65]}
    figure = training_curves_plot(history, tmp_path / "curves.png")
    loss_axes, acc_axes = figure.axes[:2]
    assert len(loss_axes.lines) == 3 and len(acc_axes.lines) == 3
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_gradient_dominance_plot(tmp_path):
    from keras_eexit.evaluation import gradient_dominance_plot

    history = [(0, np.array([0.2, 0.9])), (10, np.array([0.3, 0.8]))]
    figure = gradient_dominance_plot(history, ["exit_1", "exit_2"],
                                     tmp_path / "dom.png")
    assert len(figure.axes[0].lines) == 2
    assert (tmp_path / "dom.png").stat().st_size > 1000
