"""Multi-seed comparison of regimes: mean ± std, ANOVA and Tukey HSD.

Notation of the orderings (after Table 5 of "Strategies at a glance"):
regimes are listed from the best to the worst mean, and each neighbouring
pair is joined by

- `≫`: the left regime is better and Tukey's HSD finds the difference
  significant at `alpha` (0.05 by default);
- `>`: the left regime has the better mean, but the difference is not
  significant;
- `=`: the means are equal.

Only neighbours are tested in the string; every pair's p-value is in
`Comparison.tukey_p`. With equally many seeds per regime Tukey's critical
difference is the same for every pair, so a pair further apart in the
ordering is at least as significant as any neighbouring pair between them.
"""

import dataclasses
import numbers

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
        anova_p: p-value of the one-way ANOVA across regimes (NaN when every
            value of every regime is equal).
        tukey_p: `(R, R)` Tukey HSD p-values, in `names` order.
        ordering: e.g. `"joint ≫ mixed > two_stage"` (see the module
            docstring for the notation).
        note: why the tests were degenerate, or `""`.
    """

    names: tuple
    means: np.ndarray
    stds: np.ndarray
    anova_p: float
    tukey_p: np.ndarray
    ordering: str
    note: str = ""


def _check_results(results, alpha):
    if not isinstance(results, dict):
        raise invalid_value("results",
                            "a dict {regime: [value per seed, ...]}",
                            type(results).__name__)
    if len(results) < 2 or any(np.size(v) < 2 for v in results.values()):
        raise invalid_value(
            "results", "at least two regimes with at least two seeds each",
            {k: int(np.size(v)) for k, v in results.items()})
    if (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real)
            or not 0 < alpha < 1):
        raise invalid_value("alpha", "a number in (0, 1)", alpha)
    samples = {}
    for name, values in results.items():
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            array = np.array([np.nan])
        if not np.all(np.isfinite(array)):
            raise invalid_value(
                "results", f"finite numbers for every regime (regime "
                f"{name!r} has a NaN, an infinity or a non-number)",
                list(np.ravel(values)))
        samples[str(name)] = array
    return samples


def compare(results, alpha=0.05, higher_is_better=True):
    """Compares one metric across regimes, each measured over several seeds.

    Runs `scipy.stats.f_oneway` (one-way ANOVA) and
    `scipy.stats.tukey_hsd` on the per-seed values and summarises them as
    an ordering string (notation in the module docstring). When every
    regime's values are constant across seeds the tests are undefined
    (zero within-group variance): then regimes with different values are
    reported as significantly different (p = 0), equal ones as not
    (p = 1), ANOVA's p is 0 or NaN, and `note` says so.

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
    samples = _check_results(results, alpha)
    names = list(samples)
    means = np.array([samples[n].mean() for n in names])
    order = np.argsort(-means if higher_is_better else means, kind="stable")
    names = [names[i] for i in order]
    groups = [samples[n] for n in names]
    means = means[order]
    note = ""
    if all(np.ptp(g) == 0 for g in groups):
        differ = means[:, None] != means[None, :]
        tukey = np.where(differ, 0.0, 1.0)
        anova_p = 0.0 if differ.any() else float("nan")
        note = ("no spread across seeds: ANOVA and Tukey HSD are undefined; "
                "different values are marked significant")
    else:
        anova_p = float(scipy_stats.f_oneway(*groups).pvalue)
        tukey = np.asarray(scipy_stats.tukey_hsd(*groups).pvalue)
    parts = [names[0]]
    for i in range(1, len(names)):
        if means[i - 1] == means[i]:
            parts.append("=")
        else:
            parts.append("≫" if tukey[i - 1, i] < alpha else ">")
        parts.append(names[i])
    return Comparison(
        names=tuple(names),
        means=means,
        stds=np.array([g.std(ddof=1) for g in groups]),
        anova_p=anova_p,
        tukey_p=tukey,
        ordering=" ".join(parts),
        note=note,
    )


def mean_std(values, digits=4):
    """`"mean ± std"` (ddof=1) of per-seed values, for report tables.

    Any NaN (e.g. a budget that no sweep point of some seed fits) gives
    `"n/a"`: a mean over the remaining seeds would be biased.

    Args:
        values: per-seed values.
        digits: decimals.

    Returns:
        A string such as `"0.9512 ± 0.0021"`.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0 or np.isnan(values).any():
        return "n/a"
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"
