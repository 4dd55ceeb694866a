"""Multi-seed comparison of regimes: mean ± std, ANOVA and Tukey HSD."""

import dataclasses

import numpy as np
from scipy import stats as scipy_stats

from keras_eexit.utils.validation import invalid_value


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric compared across regimes.

    Attributes:
        names: regime names, best mean first.
        means: `(R,)` means over seeds, in `names` order.
        stds: `(R,)` standard deviations (ddof=1).
        anova_p: p-value of the one-way ANOVA across regimes.
        tukey_p: `(R, R)` Tukey HSD p-values, in `names` order.
        ordering: e.g. `"joint ≫ mixed > two_stage"`.
    """

    names: tuple
    means: np.ndarray
    stds: np.ndarray
    anova_p: float
    tukey_p: np.ndarray
    ordering: str


def compare(results, alpha=0.05, higher_is_better=True):
    """Compares one metric across regimes, each measured over several seeds.

    The ordering lists regimes from best to worst mean; between neighbours,
    `≫` means Tukey's HSD finds the difference significant at `alpha`, `>`
    that it does not (the notation of Table 5 of "Strategies at a glance").

    Args:
        results: `{regime name: [value per seed, ...]}`, at least two
            regimes with at least two seeds each.
        alpha: significance level.
        higher_is_better: order by descending mean (accuracy) or ascending
            (FLOPs, time).

    Returns:
        A `Comparison`.

    Example:

    >>> compare({"joint": [.95, .96, .95], "two_stage": [.90, .91, .90]}
    ...         ).ordering
    'joint ≫ two_stage'
    """
    if len(results) < 2 or any(len(v) < 2 for v in results.values()):
        raise invalid_value(
            "results", "at least two regimes with at least two seeds each",
            {k: len(v) for k, v in results.items()})
    if not 0 < alpha < 1:
        raise invalid_value("alpha", "a number in (0, 1)", alpha)
    names = list(results)
    samples = [np.asarray(results[n], dtype=np.float64) for n in names]
    means = np.array([s.mean() for s in samples])
    order = np.argsort(-means if higher_is_better else means, kind="stable")
    names = [names[i] for i in order]
    samples = [samples[i] for i in order]
    anova = scipy_stats.f_oneway(*samples)
    tukey = scipy_stats.tukey_hsd(*samples).pvalue
    parts = [names[0]]
    for i in range(1, len(names)):
        parts.append("≫" if tukey[i - 1, i] < alpha else ">")
        parts.append(names[i])
    return Comparison(
        names=tuple(names),
        means=np.array([s.mean() for s in samples]),
        stds=np.array([s.std(ddof=1) for s in samples]),
        anova_p=float(anova.pvalue),
        tukey_p=np.asarray(tukey),
        ordering=" ".join(parts),
    )


def mean_std(values):
    """`"mean ± std"` (ddof=1) of per-seed values, for report tables."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{values.mean():.4f} ± {std:.4f}"
