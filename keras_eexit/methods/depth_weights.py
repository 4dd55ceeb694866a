"""Depth-proportional exit weights: PABEE's (and GPF's) weighted average."""

import dataclasses

import numpy as np

from keras_eexit.losses.exit_weights import exit_weights


def depth_weighted(weights, num_exits):
    """Exit weights `w` multiplied by the exit number, same total.

    `w'_k = w_k · k · Σ_j w_j / Σ_j (w_j · j)` (k = 1..K): the exits a
    phase trains keep their total weight and share it in proportion to
    their depth. From uniform weights this is PABEE's loss
    `Σ_k k·L_k / Σ_k k` (Zhou et al., 2020; `AlbertForSequenceClassification`
    in JetRunner/PABEE) under `Joint()`'s mean over exits (with uniform
    weights summing to K, the `"linear"` scheme with `scale=K`); a phase
    that trains one exit is unchanged.

    Args:
        weights: a scheme name, a list of `num_exits` weights, or a function
            `f(epoch_in_phase, phase_epochs) -> list` (a schedule).
        num_exits: K.

    Returns:
        A list of K floats, or a function of the same kind for a schedule.

    Example:

    >>> depth_weighted("uniform", 3)
    [0.5, 1.0, 1.5]
    """
    if callable(weights):
        def schedule(epoch, epochs):
            return depth_weighted(weights(epoch, epochs), num_exits)

        return schedule
    w = np.asarray(exit_weights(weights, num_exits), dtype="float64")
    scaled = w * np.arange(1, num_exits + 1)
    return [float(v) for v in scaled * (w.sum() / scaled.sum())]


def depth_weighted_phases(phases, num_exits):
    """Every phase of a regime with depth-weighted exit weights."""
    return [dataclasses.replace(p, weights=depth_weighted(p.weights,
                                                          num_exits))
            for p in phases]
