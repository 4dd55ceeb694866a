"""Threshold sweeps and budget tables against per-sample references."""

import numpy as np
import pytest

from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import threshold_sweep


def _random_outputs(k=4, n=300, c=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(k, n, c))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, c, n)
    flops = np.cumsum(rng.integers(10, 100, k))
    return probs, labels, flops


def _reference_exit(p, criterion, t):
    """One sample, written as a plain loop over exits."""
    k = len(p)
    for j in range(k):
        if criterion == "max_softmax" and p[j].max() > t:
            return j
        if criterion == "entropy":
            h = -(p[j] * np.log(np.clip(p[j], 1e-12, 1))).sum() / np.log(
                p.shape[-1])
            if h <= t:
                return j
        if criterion == "patience" and j >= t and all(  # t = 0: exit 1
            p[j - i].argmax() == p[j].argmax() for i in range(1, t + 1)
        ):
            return j
        if criterion == "static" and j + 1 == t:  # exit NUMBER t
            return j
    return k - 1


@pytest.mark.parametrize("criterion,thresholds", [
    ("max_softmax", 21), ("entropy", 21), ("patience", 3), ("static", 4),
])
def test_sweep_equals_brute_force(criterion, thresholds):
    probs, labels, flops = _random_outputs()
    result = threshold_sweep(probs, labels, flops, criterion, thresholds)
    for t_index, t in enumerate(result.thresholds):
        exits = np.array([_reference_exit(probs[:, i], criterion, t)
                          for i in range(probs.shape[1])])
        correct = probs[exits, np.arange(len(exits))].argmax(-1) == labels
        assert result.accuracy[t_index] == pytest.approx(correct.mean())
        assert result.mean_flops[t_index] == pytest.approx(
            flops[exits].mean())
        np.testing.assert_allclose(
            result.exit_ratios[t_index],
            np.bincount(exits, minlength=len(flops)) / len(exits))


def test_extreme_thresholds():
    probs, labels, flops = _random_outputs()
    result = threshold_sweep(probs, labels, flops, "max_softmax", [0.0, 1.0])
    np.testing.assert_allclose(result.exit_ratios[0], [1, 0, 0, 0])
    np.testing.assert_allclose(result.exit_ratios[1], [0, 0, 0, 1])
    assert result.mean_flops[1] == flops[-1]


def test_budget_table_on_a_hand_made_case():
    class Fake:
        accuracy = np.array([0.5, 0.6, 0.7, 0.8, 0.75])
        mean_flops = np.array([10.0, 30.0, 55.0, 80.0, 100.0])

    table = budget_table(Fake(), [10, 40, 70, 100])
    # "max" is the most conservative point (Kubaty et al.'s reference).
    assert table == {"25%": 0.5, "50%": 0.6, "75%": 0.7, "100%": 0.75,
                     "max": 0.75}
    # Last point within budget, not the best one: 0.75 although 0.8 fits.
    assert budget_table(Fake(), [10, 400])["25%"] == 0.75
    tight = budget_table(Fake(), [1, 20])  # 25% of 20 FLOPs: nothing fits
    assert np.isnan(tight["25%"]) and tight["100%"] == 0.5


@pytest.mark.parametrize("kwargs,match", [
    ({"thresholds": [0.5, 1.5]}, r"numbers between 0 and 1"),
    ({"criterion": "margin"}, "Unknown criterion"),
    ({"criterion": "patience", "thresholds": [4]},
     r"integers between 0 and 3"),
    ({"criterion": "static", "thresholds": [0]}, r"integers between 1 and 4"),
    ({"probs_scale": 2.0}, "sum to 1"),
    ({"labels_cut": 1}, "Label count mismatch"),
    ({"flops_cut": 1}, "FLOPs list of the wrong length"),
    ({"empty": True}, "non-empty"),
])
def test_bad_input(kwargs, match):
    probs, labels, flops = _random_outputs()
    if kwargs.pop("probs_scale", None):
        probs = probs * 2.0
    if kwargs.pop("labels_cut", None):
        labels = labels[:-1]
    if kwargs.pop("flops_cut", None):
        flops = flops[:-1]
    if kwargs.pop("empty", None):
        probs = probs[:, :0]
        labels = labels[:0]
    with pytest.raises(ValueError, match=match):
        threshold_sweep(probs, labels, flops, **kwargs)


def test_accuracy_at_reads_the_curve_as_drawn():
    from keras_eexit.evaluation import Sweep
    from keras_eexit.evaluation import accuracy_at

    result = Sweep("max_softmax", np.zeros(4, np.float32),
                   np.array([0.5, 0.9, 0.7, 0.8]),
                   np.array([10.0, 30.0, 20.0, 20.0]), np.zeros((4, 2)))
    assert accuracy_at(result, 15.0) == pytest.approx(0.65)
    # Equal costs count with their best accuracy; no extrapolation.
    np.testing.assert_allclose(accuracy_at(result, [5, 10, 20, 25, 30, 31]),
                               [np.nan, 0.5, 0.8, 0.85, 0.9, np.nan])
