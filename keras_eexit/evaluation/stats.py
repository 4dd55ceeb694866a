"""Multi-seed comparison of regimes: assumption checks, omnibus, post hoc.

The protocol of "Strategies at a glance" (§5.6): one-way ANOVA across
strategies, Tukey's HSD post hoc at α = 0.05, after checking normality and
homogeneity of variances. Its "Assumption Validation" paragraph: "Normality
of residuals was tested using the Shapiro–Wilk test [...] Homogeneity of
variances was assessed using Levene's test". So by default
(`normality="residuals"`) Shapiro–Wilk tests the ANOVA's residuals (each
value minus its regime's mean, all regimes pooled); `normality="per_group"`
tests each regime's values on their own (this library's former check; the
p-values the paper quotes per strategy, e.g. "Joint: p = 0.8794", are of
this kind, since Shapiro–Wilk ignores a shift by the group mean). Where a
check fails `compare` does not run the ANOVA regardless (the paper kept it,
arguing robustness with equal group sizes) but falls back:

- normal residuals, unequal variances: Welch's ANOVA with Games–Howell
  pairwise tests;
- residuals that are not normal: Kruskal–Wallis with Dunn's pairwise tests
  (Holm-adjusted);
- no spread within any regime but different means (every seed of a regime
  gave the same value): the ANOVA is undefined (zero within-group
  variance) while the rank test is not, so Kruskal–Wallis and Dunn.

`Comparison.omnibus` and `Comparison.posthoc` name the tests used and
`Comparison.assumptions` holds the checks' p-values.

Notation of the orderings (after Table 5 of the paper): regimes are listed
from the best to the worst mean, and each neighbouring pair is joined by

- `≫`: the left regime is better and the post-hoc test finds the
  difference significant at `alpha` (0.05 by default);
- `>`: the left regime has the better mean, but the difference is not
  significant (or cannot be tested);
- `=`: the means are equal.

Only neighbours are tested in the string; every pair's p-value is in
`Comparison.pairwise_p` (and `significance_plot` draws every significant
pair, as the paper's Fig. 11). When every regime gives the same value on
every seed every test is undefined: the p-values are NaN (never 0), the
ordering uses `=` only, and `note` says so.
"""

import dataclasses
import itertools
import numbers
import warnings

import numpy as np
from scipy import stats as scipy_stats

from keras_eexit.utils.validation import invalid_value

OMNIBUS = ("anova", "welch_anova", "kruskal")
NORMALITY = ("residuals", "per_group")
POSTHOC = {"anova": "tukey_hsd", "welch_anova": "games_howell",
           "kruskal": "dunn_holm"}
TEST_NAMES = {"anova": "ANOVA", "welch_anova": "Welch's ANOVA",
              "kruskal": "Kruskal–Wallis", "none": "no test",
              "tukey_hsd": "Tukey HSD", "games_howell": "Games–Howell",
              "dunn_holm": "Dunn (Holm)"}
"""Readable names of the tests, for reports and figures."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric compared across regimes.

    Attributes:
        names: regime names, best mean first.
        means: `(R,)` means over seeds, in `names` order.
        stds: `(R,)` standard deviations (ddof=1).
        omnibus: the omnibus test run: `"anova"`, `"welch_anova"`,
            `"kruskal"`, or `"none"` when no test is defined.
        omnibus_p: its p-value (NaN when undefined).
        posthoc: the pairwise test: `"tukey_hsd"`, `"games_howell"`,
            `"dunn_holm"` or `"none"`.
        pairwise_p: `(R, R)` pairwise p-values, in `names` order (NaN where
            undefined, 1 on the diagonal).
        ordering: e.g. `"joint ≫ mixed > two_stage"` (see the module
            docstring for the notation).
        note: why a test was changed or is undefined, or `""`.
        assumptions: `{"normality": "residuals" or "per_group",
            "residual_shapiro_p": p or None, "shapiro_p": {name: p or
            None}, "levene_p": p or None, "normal": bool,
            "equal_variances": bool}` (see `assumption_checks`).
        alpha: the significance level.
    """

    names: tuple
    means: np.ndarray
    stds: np.ndarray
    omnibus: str
    omnibus_p: float
    posthoc: str
    pairwise_p: np.ndarray
    ordering: str
    note: str = ""
    assumptions: dict = dataclasses.field(default_factory=dict)
    alpha: float = 0.05

    @property
    def anova_p(self):
        """The omnibus p-value (the name of the original protocol)."""
        return self.omnibus_p

    @property
    def tukey_p(self):
        """The pairwise p-values (Tukey HSD unless a fallback ran)."""
        return self.pairwise_p

    def significant_pairs(self):
        """`[(better, worse, mean difference, p)]` for every pair the
        post-hoc test separates at `alpha`."""
        pairs = []
        for i, j in itertools.combinations(range(len(self.names)), 2):
            p = self.pairwise_p[i, j]
            if np.isfinite(p) and p < self.alpha and (
                    self.means[i] != self.means[j]):
                pairs.append((self.names[i], self.names[j],
                              float(self.means[i] - self.means[j]),
                              float(p)))
        return pairs


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


def _shapiro(values):
    """Shapiro–Wilk p-value, or None without 3 values and some spread."""
    if values.size < 3 or np.ptp(values) <= 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.shapiro(values).pvalue)


def assumption_checks(groups, names, alpha=0.05, normality="residuals"):
    """Shapiro–Wilk on the ANOVA residuals (or per group) and Levene.

    "Strategies at a glance" §5, Assumption Validation: "Normality of
    residuals was tested using the Shapiro–Wilk test". The residuals are
    every value minus its group's mean, all groups pooled
    (`residual_shapiro_p`). Every group is also tested on its own
    (`shapiro_p`); which of the two decides `normal` is `normality`.
    Shapiro–Wilk needs at least 3 values and some spread; a sample without
    them is not tested (`None`) and does not count against normality.
    Levene's test is the original one (deviations from the group means,
    `center="mean"`).

    Args:
        groups: per-regime arrays of per-seed values.
        names: their names.
        alpha: significance level of the checks.
        normality: `"residuals"` (the paper's check) or `"per_group"`.

    Returns:
        A dict, see `Comparison.assumptions`.

    Example:

    >>> checks = assumption_checks(
    ...     [np.array([.90, .90, .91]), np.array([.80, .81, .82])],
    ...     ["joint", "two_stage"])
    >>> checks["normal"], checks["shapiro_p"]["joint"] is not None
    (True, True)
    """
    if normality not in NORMALITY:
        raise invalid_value("normality", f"one of {NORMALITY}", normality)
    shapiro = {name: _shapiro(group) for name, group in zip(names, groups)}
    residual = _shapiro(np.concatenate([g - g.mean() for g in groups]))
    if normality == "residuals":
        normal = residual is None or residual > alpha
    else:
        normal = all(p is None or p > alpha for p in shapiro.values())
    levene = None
    if any(np.ptp(g) > 0 for g in groups):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(scipy_stats.levene(*groups, center="mean").pvalue)
        levene = value if np.isfinite(value) else None
    return {
        "normality": normality,
        "residual_shapiro_p": residual,
        "shapiro_p": shapiro,
        "levene_p": levene,
        "normal": normal,
        "equal_variances": levene is None or levene > alpha,
    }


def welch_anova(*groups):
    """Welch's one-way ANOVA for unequal variances (Welch, 1951).

    Every group needs at least 2 values and a positive variance.

    Args:
        *groups: 1-D arrays.

    Returns:
        `(F, p)`.
    """
    k = len(groups)
    n = np.array([len(g) for g in groups], dtype=np.float64)
    means = np.array([np.mean(g) for g in groups])
    variances = np.array([np.var(g, ddof=1) for g in groups])
    w = n / variances
    grand = np.sum(w * means) / np.sum(w)
    a = np.sum(w * (means - grand) ** 2) / (k - 1)
    lam = np.sum((1 - w / w.sum()) ** 2 / (n - 1))
    b = 1 + 2 * (k - 2) / (k ** 2 - 1) * lam
    f = a / b
    df2 = (k ** 2 - 1) / (3 * lam)
    return float(f), float(scipy_stats.f.sf(f, k - 1, df2))


def games_howell(*groups):
    """Games–Howell pairwise p-values (unequal variances and sizes).

    Args:
        *groups: 1-D arrays, each with a positive variance.

    Returns:
        `(R, R)` p-values (1 on the diagonal).
    """
    k = len(groups)
    out = np.ones((k, k))
    for i, j in itertools.combinations(range(k), 2):
        a, b = groups[i], groups[j]
        va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
        se = np.sqrt((va + vb) / 2)
        q = abs(np.mean(a) - np.mean(b)) / se
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (
            len(b) - 1))
        p = float(scipy_stats.studentized_range.sf(q, k, df))
        out[i, j] = out[j, i] = min(1.0, p)
    return out


def dunn_holm(*groups):
    """Dunn's pairwise tests on mid-ranks, Holm-adjusted (Dunn, 1964).

    Args:
        *groups: 1-D arrays.

    Returns:
        `(R, R)` adjusted p-values (1 on the diagonal).
    """
    k = len(groups)
    values = np.concatenate(groups)
    ranks = scipy_stats.rankdata(values)
    total = len(values)
    _, ties = np.unique(values, return_counts=True)
    tie = np.sum(ties ** 3 - ties) / (12 * (total - 1))
    bounds = np.cumsum([0] + [len(g) for g in groups])
    mean_ranks = [ranks[bounds[i]:bounds[i + 1]].mean() for i in range(k)]
    pairs = list(itertools.combinations(range(k), 2))
    raw = []
    for i, j in pairs:
        variance = (total * (total + 1) / 12 - tie) * (
            1 / len(groups[i]) + 1 / len(groups[j]))
        z = abs(mean_ranks[i] - mean_ranks[j]) / np.sqrt(variance) if (
            variance > 0) else 0.0
        raw.append(2 * scipy_stats.norm.sf(z))
    order = np.argsort(raw)
    adjusted = np.empty(len(raw))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        adjusted[index] = running
    out = np.ones((k, k))
    for (i, j), p in zip(pairs, adjusted):
        out[i, j] = out[j, i] = p
    return out


def compare(results, alpha=0.05, higher_is_better=True,
            normality="residuals"):
    """Compares one metric across regimes, each measured over several seeds.

    Checks normality (Shapiro–Wilk on the ANOVA residuals, as the paper's
    §5 "Assumption Validation") and equal variances (Levene), then runs
    one-way ANOVA with Tukey's HSD, or the fallback the failed check (or a
    sample without any within-regime spread) calls for (see the module
    docstring), and summarises the result as an ordering string.

    Args:
        results: `{regime name: [value per seed, ...]}`, at least two
            regimes with at least two seeds each.
        alpha: significance level (checks and tests).
        higher_is_better: order by descending mean (accuracy) or ascending
            (FLOPs, time, memory, energy).
        normality: `"residuals"` (default, the paper's check) or
            `"per_group"` (Shapiro–Wilk on each regime's values).

    Returns:
        A `Comparison`.

    Example:

    >>> compare({"joint": [.95, .96, .95], "two_stage": [.90, .91, .90]}
    ...         ).ordering
    'joint ≫ two_stage'

    References:
        - Rahmath P et al. Strategies at a glance (§5.6, Table 5, Fig. 11).
    """
    samples = _check_results(results, alpha)
    names = list(samples)
    means = np.array([samples[n].mean() for n in names])
    order = np.argsort(-means if higher_is_better else means, kind="stable")
    names = [names[i] for i in order]
    groups = [samples[n] for n in names]
    means = means[order]
    checks = assumption_checks(groups, names, alpha, normality)
    spread = [np.ptp(g) > 0 for g in groups]
    note = ""
    if np.ptp(np.concatenate(groups)) == 0:
        omnibus, posthoc = "none", "none"
        omnibus_p = float("nan")
        pairwise = np.full((len(names), len(names)), np.nan)
        np.fill_diagonal(pairwise, 1.0)
        note = ("no spread at all (every seed of every regime gave the "
                "same value): the tests are undefined, no difference is "
                "marked significant; check that the seeds really vary the "
                "runs")
    elif not any(spread):
        omnibus, posthoc = "kruskal", "dunn_holm"
        omnibus_p = float(scipy_stats.kruskal(*groups).pvalue)
        pairwise = dunn_holm(*groups)
        note = ("no spread within any regime (each regime gave one value "
                "on every seed): ANOVA is undefined, Kruskal–Wallis and "
                "Dunn's tests (Holm-adjusted) on the ranks instead; check "
                "that the seeds really vary the runs")
    elif checks["normal"] and checks["equal_variances"]:
        omnibus, posthoc = "anova", "tukey_hsd"
        omnibus_p = float(scipy_stats.f_oneway(*groups).pvalue)
        pairwise = np.asarray(scipy_stats.tukey_hsd(*groups).pvalue)
    elif checks["normal"] and all(spread):
        omnibus, posthoc = "welch_anova", "games_howell"
        omnibus_p = welch_anova(*groups)[1]
        pairwise = games_howell(*groups)
        note = (f"Levene p = {checks['levene_p']:.3g} < α: unequal "
                "variances, Welch's ANOVA and Games–Howell instead of "
                "ANOVA and Tukey HSD")
    else:
        omnibus, posthoc = "kruskal", "dunn_holm"
        omnibus_p = float(scipy_stats.kruskal(*groups).pvalue)
        pairwise = dunn_holm(*groups)
        if not checks["normal"] and normality == "residuals":
            reason = ("Shapiro–Wilk rejects normality of the residuals "
                      f"(p = {checks['residual_shapiro_p']:.3g})")
        elif not checks["normal"]:
            failed = [n for n, p in checks["shapiro_p"].items()
                      if p is not None and p <= alpha]
            reason = f"Shapiro–Wilk rejects normality for {failed}"
        else:
            reason = "unequal variances with a regime without spread"
        note = (f"{reason}: Kruskal–Wallis and Dunn's tests "
                "(Holm-adjusted) instead of ANOVA and Tukey HSD")
    parts = [names[0]]
    for i in range(1, len(names)):
        p = pairwise[i - 1, i]
        if means[i - 1] == means[i]:
            parts.append("=")
        else:
            parts.append("≫" if np.isfinite(p) and p < alpha else ">")
        parts.append(names[i])
    return Comparison(
        names=tuple(names),
        means=means,
        stds=np.array([g.std(ddof=1) for g in groups]),
        omnibus=omnibus,
        omnibus_p=omnibus_p,
        posthoc=posthoc,
        pairwise_p=pairwise,
        ordering=" ".join(parts),
        note=note,
        assumptions=checks,
        alpha=float(alpha),
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
