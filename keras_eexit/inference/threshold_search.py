"""Per-exit thresholds of highest accuracy within a mean-cost budget.

Pure NumPy on cached validation scores. A decision rule is one threshold
per internal exit; a sample leaves at the first exit whose score passes its
threshold (`keras_eexit.criteria`), the last exit takes the rest. For
fixed thresholds at every other exit, the accuracy and the cost of the
rule as a function of exit `k`'s threshold change only where a validation
sample's score at exit `k` lies, so each search step below tries *every*
such cut at once (sorting, `bincount`, a cumulative sum): O(N log N) per
exit, no grid. Accuracy is counted in samples (integers), so ties are
exact.

The search (`search_thresholds`):

1. **The best global threshold, exactly.** One threshold at every exit:
   a sample leaves at the first exit whose running maximum of confidence
   passes it, so each sample's exit is a step function of the threshold
   with at most K - 1 steps; difference arrays over every distinct
   validation score give the accuracy and cost of every global threshold
   in O(NK log NK). The most accurate one within the budget (then the
   costliest) is the starting point and the guarantee: the result is
   never less accurate on validation.
2. **Lagrangian proposals.** For multipliers λ (accuracy traded for
   cost; `LAGRANGE_MULTIPLIERS`, then `BISECTIONS` halvings where the
   budget is spent), coordinate ascent on `correct - λ · cost`, each from
   the best global threshold for that λ: with cost priced, a coordinate
   can trade compute between exits, which a search held to the budget
   cannot do from a point where the budget is spent.
3. **Constrained refinement.** From the global start and each proposal
   that fits, coordinate ascent on accuracy within the budget (a change
   is kept when it is more accurate, or as accurate and costlier within
   the budget). The
   best result then also tries moves of two exits at once (one exit at
   `PAIR_LEVELS` score quantiles, the other searched exactly), each
   followed by coordinate ascent, until neither improves it. The result
   is a coordinate-wise optimum: strictly more accurate than the global
   threshold whenever one exit's threshold alone can do better from
   there. (On random problems of 2-3 exits and 3-7 samples it finds the
   optimum of an exhaustive search: `tests/inference/
   test_threshold_search.py`.)

Between equally accurate rules the search spends more of the budget, as
Kubaty et al.'s budget table (the last sweep point within the budget) and
`budgeted_batch_policy` (the costliest schedule within it) do: validation
accuracy ties on a plateau, and on unseen data more compute is usually
more accurate. Everything is deterministic (fixed multipliers, first-best
ties).

This extends, as our own procedure (no paper defines it), the
calibrations of MSDNet (Huang et al. 2018, budgeted batch classification:
per-exit thresholds from validation data, fixed by a geometric schedule of
exit shares, `budgeted_batch_thresholds`) and of BranchyNet (Teerapittayanon
et al. 2016) and SDN (Kaya et al. 2019), whose thresholds per exit are
set by hand or by one shared confidence level: here they are searched for
the highest validation accuracy within the budget.
"""

import dataclasses

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

SEARCHES = ("per_exit", "global")
"""`search=` values: per-exit thresholds, or one threshold for every exit."""

LAGRANGE_MULTIPLIERS = (0.0, *np.geomspace(1e-3, 1.0, 19).tolist())
"""Prices of the cost (accuracy per unit of `costs[-1] - costs[0]`)."""

BISECTIONS = 8
"""Halvings of the multiplier interval where the budget is spent."""

PAIR_LEVELS = 16
"""Score quantiles tried at one exit in a move of two exits."""

MAX_PASSES = 50
"""Coordinate-ascent rounds at most (each round visits every exit)."""

_RELATIVE = 1e-12  # budget tolerance: mean costs are sums of floats


@dataclasses.dataclass(frozen=True)
class ThresholdSearch:
    """The result of `search_thresholds`.

    Attributes:
        thresholds: `(K,)` float32 thresholds (the last exit's is the
            criterion's eager value: it takes every remaining sample).
        accuracy: accuracy of the rule on the searched samples.
        mean_cost: mean cost per sample (the unit of `costs`).
        global_threshold: the best single threshold within the budget
            (the search's start).
        global_accuracy: its accuracy.
        global_cost: its mean cost.
    """

    thresholds: np.ndarray
    accuracy: float
    mean_cost: float
    global_threshold: float
    global_accuracy: float
    global_cost: float


class _Rules:
    """Scores in confidence form and the candidate thresholds per exit.

    Confidence `c` is the score, negated for criteria on which a lower
    score is confident, so a sample leaves exit `k` at candidate index
    `m` iff `m < bound[k, n]` (every candidate below `c`, or at most `c`
    for non-strict comparisons, accepts it).
    """

    def __init__(self, criterion, scores, correct, costs, call_costs=None,
                 batch_size=1):
        self.criterion = criterion
        self.num_exits, self.num_samples = correct.shape
        self.correct = correct.astype(np.float64)
        self.sample_costs = costs
        # Costs per row, and each stage's fixed cost per call over the
        # batch size (charged with the chance that a batch runs it).
        self.batch_size = int(batch_size)
        if call_costs is None or self.batch_size == 1:
            self.costs, self.stage_calls = costs, None
        else:
            self.costs = costs - call_costs / self.batch_size
            self.stage_calls = np.diff(call_costs, prepend=0.0) / (
                self.batch_size)
        self.sign = np.float32(1 if criterion.higher_is_confident else -1)
        self.side = "left" if criterion.comparison == ">" else "right"
        low, high = criterion.threshold_range(self.num_exits)
        ends = np.array([low, high, criterion.never_exit(self.num_exits)],
                        np.float32) * self.sign
        inner = np.asarray(scores[:-1], np.float32)
        self.confidence = inner * self.sign
        clipped = np.clip(inner, np.float32(low), np.float32(high)) * self.sign
        self.candidates = [np.unique(np.concatenate([row, ends]))
                           for row in clipped]
        self.bound = np.stack([
            np.searchsorted(cands, conf, self.side)
            for cands, conf in zip(self.candidates, self.confidence)]) \
            if self.num_exits > 1 else np.zeros((0, self.num_samples), int)

    def thresholds(self, theta):
        """Per-exit threshold values (criterion's form) of indices."""
        values = [self.candidates[k][m] * self.sign
                  for k, m in enumerate(theta)]
        eager = self.criterion.eager_threshold(self.num_exits)
        return np.array([*values, eager], np.float32)

    def decisions(self, theta):
        """`(first, after)` of a rule: each sample's exit, and
        `after[k]`, the exit it takes when exits 0..k let it pass."""
        accepted = np.asarray(theta)[:, None] < self.bound
        after = np.empty_like(self.bound)
        nxt = np.full(self.num_samples, self.num_exits - 1)
        for k in range(len(accepted) - 1, -1, -1):
            after[k] = nxt
            nxt = np.where(accepted[k], k, nxt)
        return nxt, after

    def exits(self, theta):
        return self.decisions(theta)[0]

    def fixed(self, reach):
        """The fixed costs per call of rules, summed over the samples:
        `reach[..., j]` samples reach stage `j`."""
        if self.stage_calls is None:
            return 0.0
        from keras_eexit.evaluation.cost import reach_probability

        chance = reach_probability(np.asarray(reach) / self.num_samples,
                                   self.batch_size)
        return self.num_samples * (chance @ self.stage_calls)

    def totals(self, theta):
        """`(correct count, cost sum)` of a rule."""
        exits = self.exits(theta)
        samples = np.arange(self.num_samples)
        reach = [np.count_nonzero(exits >= j) for j in range(self.num_exits)]
        return (float(self.correct[exits, samples].sum()),
                float(self.costs[exits].sum() + self.fixed(reach)))

    def line(self, decisions, k):
        """Correct counts and cost sums of every candidate at exit `k`,
        the other exits' thresholds fixed (`decisions` of the current
        rule): two `(M_k,)` arrays."""
        first, after = decisions
        before = first < k
        later = after[k]
        otherwise = np.where(before, first, later)
        samples = np.arange(self.num_samples)
        base_correct = self.correct[otherwise, samples].sum()
        base_cost = self.costs[otherwise].sum()
        reach_rows = np.flatnonzero(~before)
        bins = self.bound[k, reach_rows]
        size = len(self.candidates[k]) + 1
        gain = np.bincount(bins, self.correct[k, reach_rows]
                           - self.correct[later[reach_rows], reach_rows],
                           size)
        extra = np.bincount(bins, self.costs[k]
                            - self.costs[later[reach_rows]], size)
        # Candidate m accepts the reaching samples whose bound exceeds m.
        gain = np.cumsum(gain[::-1])[::-1][1:]
        extra = np.cumsum(extra[::-1])[::-1][1:]
        cost = base_cost + extra
        if self.stage_calls is not None:
            # Stages up to k: reached by the same samples at every
            # candidate; after k: by those candidate m lets pass (bound
            # at most m) and whose later exit is at or past the stage.
            reach = np.empty((size - 1, self.num_exits))
            for j in range(self.num_exits):
                if j <= k:
                    reach[:, j] = np.count_nonzero(before & (first >= j)) \
                        + len(bins)
                else:
                    passing = np.bincount(
                        bins, (later[reach_rows] >= j).astype(np.float64), size)
                    reach[:, j] = np.cumsum(passing)[:-1]
            cost = cost + self.fixed(reach)
        return np.rint(base_correct + gain), cost

    def global_totals(self):
        """Every distinct global threshold (confidence form, ascending)
        with its correct count and cost sum."""
        values = np.unique(np.concatenate(self.candidates))
        edges = np.searchsorted(
            values, np.maximum.accumulate(self.confidence, axis=0),
            self.side)  # candidates below edges[k] take exit <= k
        lo = np.concatenate([np.zeros((1, self.num_samples), int), edges])
        hi = np.concatenate([edges, np.full((1, self.num_samples),
                                            len(values))])
        size = len(values) + 1

        def spread(weights):
            weights = np.broadcast_to(weights, lo.shape).ravel()
            diff = np.bincount(lo.ravel(), weights, size) - np.bincount(
                hi.ravel(), weights, size)
            return np.cumsum(diff)[:-1]

        cost = spread(self.costs[:, None])
        if self.stage_calls is not None:  # samples whose exit is >= j
            stages = np.arange(self.num_exits)[:, None]
            reach = np.stack([spread((stages >= j).astype(np.float64))
                              for j in range(self.num_exits)], -1)
            cost = cost + self.fixed(np.rint(reach))
        return values, np.rint(spread(self.correct)), cost

    def global_theta(self, value):
        """Per-exit candidate indices deciding as the global `value`."""
        if self.side == "left":  # accept c > value: the largest cand <= it
            return np.array([np.searchsorted(c, value, "right") - 1
                             for c in self.candidates])
        return np.array([np.searchsorted(c, value, "left")
                         for c in self.candidates])


def _ascend(rules, theta, choose):
    """Coordinate ascent: `choose(correct, cost, current)` gives exit k's
    new candidate index from its line (or the current one)."""
    theta = np.array(theta)
    for _ in range(MAX_PASSES):
        changed = False
        for k in range(rules.num_exits - 1):
            correct, cost = rules.line(rules.decisions(theta), k)
            new = choose(correct, cost, theta[k])
            if new != theta[k]:
                theta[k], changed = new, True
        if not changed:
            break
    return theta


def _within(limit):
    """The constrained step: most accurate, then costliest, in budget."""
    def choose(correct, cost, current):
        order = np.lexsort((-cost, -correct))
        order = order[cost[order] <= limit]
        best = order[0]
        better = correct[best] > correct[current] or (
            correct[best] == correct[current]
            and cost[best] > cost[current] * (1 + _RELATIVE))
        return int(best) if better else current
    return choose


def _priced(price, scale):
    """The Lagrangian step: most `correct - price * cost`."""
    def choose(correct, cost, current):
        value = correct - price * cost
        best = int(np.argmax(value))
        return best if value[best] > value[current] + 1e-9 * scale else (
            current)
    return choose


def _proposals(rules, values, right, spent, limit):
    """Lagrangian optima that fit the budget: one per multiplier of
    `LAGRANGE_MULTIPLIERS`, then `BISECTIONS` halvings of the interval
    between the smallest multiplier that fits and the one before it
    (where the budget is spent)."""
    scale = max(rules.sample_costs[-1] - rules.sample_costs[0],
                np.finfo(np.float64).tiny)

    def optimum(multiplier):
        price = multiplier / scale
        first = int(np.argmax(right - price * spent))
        theta = _ascend(rules, rules.global_theta(values[first]),
                        _priced(price, rules.num_samples))
        return theta, rules.totals(theta)[1] <= limit

    fitting, low, high = [], None, None
    for multiplier in LAGRANGE_MULTIPLIERS:
        theta, fits = optimum(multiplier)
        if fits:
            fitting.append(theta)
            high = multiplier if high is None else high
        elif high is None:
            low = multiplier
    if low is not None and high is not None:
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            theta, fits = optimum(middle)
            if fits:
                fitting.append(theta)
                high = middle
            else:
                low = middle
    return fitting


def _better(found, cost, than):
    """Whether `(found, cost)` beats `than`: more correct, or as many
    with more of the budget spent."""
    return found > than[0] or (found == than[0]
                               and cost > than[1] * (1 + _RELATIVE))


def _pair_moves(rules, theta, limit):
    """Coordinate ascent, then moves of two exits at once, until neither
    improves: exit `i` set to each of `PAIR_LEVELS` score quantiles, exit
    `j` searched exactly; the best such move is taken (it trades the
    budget between two exits, which a single exit's move cannot when the
    budget is spent)."""
    within = _within(limit)
    theta = _ascend(rules, theta, within)
    for _ in range(MAX_PASSES):
        best, move = rules.totals(theta), None
        for i in range(rules.num_exits - 1):
            levels = np.unique(np.linspace(
                0, len(rules.candidates[i]) - 1, PAIR_LEVELS).round())
            for level in levels.astype(int):
                if level == theta[i]:
                    continue
                trial = theta.copy()
                trial[i] = level
                decisions = rules.decisions(trial)
                for j in range(rules.num_exits - 1):
                    if j == i:
                        continue
                    correct, cost = rules.line(decisions, j)
                    fits = np.flatnonzero(cost <= limit)
                    if not fits.size:
                        continue
                    pick = fits[np.lexsort((-cost[fits], -correct[fits]))[0]]
                    if _better(correct[pick], cost[pick], best):
                        best = (correct[pick], cost[pick])
                        move = (i, level, j, pick)
        if move is None:
            return theta
        i, level, j, pick = move
        theta[i], theta[j] = level, pick
        theta = _ascend(rules, theta, within)
    return theta


def _check(scores, correct, costs, budget, call_costs, batch_size):
    scores = np.asarray(scores)
    correct = np.asarray(correct, bool)
    costs = np.asarray(costs, np.float64).reshape(-1)
    if scores.ndim != 2 or correct.shape != scores.shape or 0 in (
            scores.shape):
        raise invalid_value(
            "scores", "a (exits, samples) array of scores with `correct` "
            "of the same shape", f"shapes {scores.shape} and "
            f"{correct.shape}")
    if costs.shape != (scores.shape[0],) or not np.all(np.isfinite(costs)) \
            or np.any(np.diff(costs) < 0) or costs[0] < 0:
        raise invalid_value(
            "costs", f"{scores.shape[0]} finite, non-negative, "
            "non-decreasing cumulative costs (one per exit)",
            costs.tolist())
    if isinstance(budget, bool) or not isinstance(
            budget, (int, float, np.number)) or not np.isfinite(budget) \
            or budget < costs[0]:
        raise invalid_value(
            "budget", "a mean cost per sample of at least the first exit's "
            f"cost ({costs[0]:.6g})", budget)
    if call_costs is None:
        if batch_size is not None:
            raise invalid_value("call_costs", "the fixed costs per call that "
                                "`batch_size` divides", call_costs)
        return scores, correct, costs, float(budget), None, 1
    if (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise invalid_value("batch_size", "an integer >= 1 (the batch size "
                            "`call_costs` are paid per)", batch_size)
    try:
        calls = np.asarray(call_costs, np.float64).reshape(-1)
    except (TypeError, ValueError):
        calls = np.array([np.nan])
    if calls.shape != costs.shape or not np.all(np.isfinite(calls)) or (
            np.any(calls < 0) or np.any(np.diff(calls) < 0)
            or np.any(calls > costs * batch_size * (1 + 1e-9))):
        raise invalid_value(
            "call_costs", f"None or {costs.size} finite, non-negative, "
            "non-decreasing cumulative fixed costs per call (one per exit, "
            "each at most `costs * batch_size`)", call_costs)
    return scores, correct, costs, float(budget), calls, int(batch_size)


def search_thresholds(scores, correct, costs, budget,
                      criterion="max_softmax", search="per_exit",
                      call_costs=None, batch_size=None):
    """The thresholds of highest accuracy whose mean cost fits `budget`.

    Starts from the exact best global threshold (every distinct score
    tried), then, with `search="per_exit"`, searches each exit's threshold
    over every validation score (Lagrangian proposals, then coordinate
    ascent within the budget; see the module notes). The result is never
    less accurate than the best global threshold, is strictly more
    accurate whenever changing one exit's threshold from the global start
    can raise the accuracy within the budget, and stops at a point that no
    single exit's threshold can improve. Ties go to the costlier rule
    within the budget, then to the first found: the search is
    deterministic. An extension of ours of MSDNet's budgeted-batch
    calibration and of BranchyNet/SDN per-exit thresholds (not a paper's
    procedure).

    Args:
        scores: `(K, N)` scores of every exit (`criterion.scores` of the
            probabilities, temperatures applied first).
        correct: `(K, N)` booleans: exit k classifies sample n correctly.
        costs: `(K,)` cumulative cost per sample of reaching each exit, in
            any unit (FLOPs, seconds).
        budget: the mean cost per sample allowed, in the unit of `costs`
            (at least `costs[0]`).
        criterion: a criterion with a continuous score (name or
            `Criterion`).
        search: `"per_exit"` (the full search) or `"global"` (stop at the
            best single threshold).
        call_costs: optional `(K,)` cumulative fixed cost per call of
            reaching each exit (`CostProfile.seconds_per_call`), part of
            `costs * batch_size`: a rule's mean cost then charges each
            stage's fixed cost over `batch_size` with the chance that a
            batch of `batch_size` samples reaches it
            (`CostProfile.mean_cost`), not for every sample.
        batch_size: the rows per call `call_costs` are paid for (with
            `call_costs` only).

    Returns:
        A `ThresholdSearch`.

    Raises:
        ValueError: for misshaped inputs, a budget below `costs[0]`, or a
            budget no rule meets (a criterion whose most eager threshold
            still lets some sample past exit 1), naming the cheapest.

    Example:

    Exit 1 is confident about every sample and right about half; exit 2
    is right about all: one threshold sends everyone out at exit 1 or
    (over budget) to exit 3; per exit, exit 1 takes no one and exit 2
    everyone.

    >>> scores = np.full((3, 4), 0.9, np.float32)
    >>> correct = np.array([[True, False, True, False], [True] * 4,
    ...                     [True] * 4])
    >>> found = search_thresholds(scores, correct, [1.0, 2.0, 3.0], 2.0)
    >>> found.accuracy, found.global_accuracy, found.mean_cost
    (1.0, 0.5, 2.0)
    >>> [round(float(t), 2) for t in found.thresholds]  # exit 1: no one
    [0.9, 0.0, 0.0]
    """
    criterion = criteria_lib.get(criterion)
    check_choice("search", search, SEARCHES)
    scores, correct, costs, budget, call_costs, batch_size = _check(
        scores, correct, costs, budget, call_costs, batch_size)
    rules = _Rules(criterion, scores, correct, costs, call_costs, batch_size)
    num_samples = rules.num_samples
    if rules.num_exits == 1:
        total = float(correct[0].mean())
        eager = criterion.eager_threshold(1)
        return ThresholdSearch(np.array([eager], np.float32), total,
                               float(costs[0]), eager, total,
                               float(costs[0]))
    limit = budget * num_samples * (1 + _RELATIVE)
    values, right, spent = rules.global_totals()
    order = np.lexsort((-spent, -right))
    fitting = order[spent[order] <= limit]
    if not fitting.size:
        raise invalid_value(
            "budget", "a mean cost per sample at least that of the most "
            f"eager {criterion.name!r} rule ({spent.min() / num_samples:.6g}"
            "; its eager threshold lets some samples past exit 1)", budget)
    start = rules.global_theta(values[fitting[0]])
    best = (right[fitting[0]], spent[fitting[0]])
    global_threshold = float(values[fitting[0]] * rules.sign)
    theta = start
    if search == "per_exit":
        starts = [start]
        for proposal in _proposals(rules, values, right, spent, limit):
            if not any(np.array_equal(proposal, s) for s in starts):
                starts.append(proposal)
        for candidate in starts:
            candidate = _ascend(rules, candidate, _within(limit))
            found, cost = rules.totals(candidate)
            if _better(found, cost, best):
                theta, best = candidate, (found, cost)
        theta = _pair_moves(rules, theta, limit)
    found, cost = rules.totals(theta)
    thresholds = rules.thresholds(theta)
    if search == "global":  # the value itself at every internal exit
        thresholds[:-1] = global_threshold
    return ThresholdSearch(
        thresholds, found / num_samples, cost / num_samples,
        global_threshold, float(right[fitting[0]]) / num_samples,
        float(spent[fitting[0]]) / num_samples)
