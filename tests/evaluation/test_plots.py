"""Plots write PNGs with the expected curves and bars."""

import numpy as np

from keras_eexit.evaluation import exit_ratio_plot
from keras_eexit.evaluation import sweep
from keras_eexit.evaluation import tradeoff_plot


def _sweeps(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(3, 200, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return sweep(probs, rng.integers(0, 4, 200), [1e6, 2e6, 3e6],
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
