"""Exit criteria: each rule defined once, in NumPy and as a TensorFlow graph.

A criterion decides, exit after exit, whether a sample may leave: it turns
an exit's class probabilities into a *score* and compares the score with a
*threshold* (one per exit). A sample no internal exit accepts leaves at the
last exit. Everything that decides exits reads this module: the threshold
sweep (`keras_eexit.evaluation.sweep`), exit policies and their calibration,
batched early exit (`keras_eexit.inference`) and the exported graphs
(`keras_eexit.export`, `keras_eexit.inference.export_saved_model`).

| criterion | score at exit k (0-based)            | exits when    | thresholds   |
|-----------|--------------------------------------|---------------|--------------|
| `max_softmax` | top probability                  | score > t     | [0, 1]       |
| `entropy` | entropy / log(C) of the probabilities| score <= t    | [0, 1]       |
| `patience`| exits in a row (before k) agreeing with exit k's prediction | score >= t | 0..K-1 |
| `static`  | the exit number k + 1                | score >= t    | 1..K (one number) |

Conventions, each stated once here:

* **Float32 comparison.** Float scores are computed from the probabilities
  as given (float16 inputs and quantised values are widened to float32,
  which is exact) and compared with float32 thresholds, as Kubaty et al.'s
  reference (`eval.py`: a float32 softmax against
  `torch.linspace(0, 1, 100)`, strict `>`). `reference_grid` builds that
  grid with torch's formula.
* **No renormalisation.** Probabilities that do not sum to 1 exactly (8-bit
  rounded outputs of an int8 model, float16 softmax) are scored as they
  are: the top probability is the top value and the entropy is
  `-Σ p log p` over the given values (`0 log 0 = 0`). Renormalising would
  move the max-softmax score away from the reference's rule and cost the
  graphs a division; the sweep refuses rows whose sum is off by more than
  `PROB_ATOL` (logits passed by mistake).
* **Entropy direction.** Kubaty et al. (appendix, "Alternative exit
  criterion", Fig. 22) write that "an exit occurs when the entropy surpasses
  a specified threshold"; their public code has no entropy criterion. That
  sentence reverses the usual rule (BranchyNet, Teerapittayanon et al.
  2016: exit when the entropy is *below* the threshold), under which a
  confident, low-entropy exit lets the sample out. This module follows the
  usual rule: normalised entropy `<= t` exits, so a larger threshold exits
  earlier.
* **Patience** (PABEE, Zhou et al. 2020) follows the reference's counter
  (`eval.py`, `PBEE` branch): with `t = 0` every sample leaves at the first
  exit, `t = j` needs the prediction unchanged over `j + 1` consecutive
  exits, `t = K - 1` never exits early.
* **Static** names an exit by its NUMBER 1..K (as `exit_1`..`exit_K`); it
  takes one number, not one per exit.
* **Never-exit value** (`Criterion.never_exit`): a threshold no internal
  exit accepts (int8 calibration of exported graphs feeds it so that every
  stage sees data; calibrated policies use it for exits that take nobody).
  For entropy it is `-1`, outside [0, 1]: a threshold of 0 still lets
  exactly one-hot outputs leave.

Graph forms agree with the NumPy forms on every input the NumPy form sees
(float32, float16, quantised values): max-softmax, patience and static
exactly; entropy exactly in TensorFlow graphs (computed in float64 and
rounded to float32, like the NumPy form) and within 2.4e-7 (two float32
ulps of 1) in LiteRT graphs, whose built-in kernels have no float64 (a
decision can differ only for a score that close to the threshold).

A new criterion is one subclass of `Criterion` (here, or in user code
passed to `register`); every fact other modules need about it — its
comparison, whether its score is continuous (calibration ranks samples by
it), its threshold range, grid, never-exit and eager values, the fewest
exits it needs, its plot label — is an attribute or method of the class,
so sweeps, policies and their calibration, batched early exit, the
SavedModel and LiteRT exports and `keras-eexit evaluate` pick it up. No
code outside this module looks at a criterion's name.
"""

import math
import numbers

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

PROB_ATOL = 1e-3
"""Largest deviation from 1 of a probability row's sum that `sweep` takes
(float32 softmax rows are within ~1e-6; logits are far off)."""

_INF_BITS = 0x7F800000  # float32 +inf as int32: larger patterns are NaNs
_NEGATIVE_ZERO_BITS = -(2**31)  # float32 -0.0 read as int32


def reference_grid(count):
    """`count` thresholds evenly spaced over [0, 1], float32, as torch does.

    `torch.linspace(0, 1, count)` (aten `RangeFactoriesKernel`): step
    `1 / (count - 1)` in float32, the first half `i * step`, the second
    half `1 - (count - 1 - i) * step`. Ten of the 100 default values
    differ by one ulp from `numpy.linspace(0, 1, 100)` rounded to float32,
    enough to change a decision on a probability equal to a grid value.

    Args:
        count: number of thresholds, >= 2.

    Returns:
        A float32 array of shape `(count,)`, from exactly 0 to exactly 1.
    """
    steps = np.arange(count)
    step = np.float32(1.0) / np.float32(count - 1)
    low = step * steps.astype(np.float32)
    high = np.float32(1.0) - step * (count - 1 - steps).astype(np.float32)
    return np.where(steps < count // 2, low, high).astype(np.float32)


def _float32(probs):
    probs = np.asarray(probs)
    if probs.dtype.kind not in "f":
        probs = probs.astype(np.float64)  # quantised integers etc.
    return probs.astype(np.float32)


class Criterion:
    """One exit rule: a score per exit and how it compares with thresholds.

    Subclasses define `scores` (NumPy) and `graph_score` (TensorFlow); the
    comparison (`comparison`: `">"`, `"<="` or `">="`), the threshold range
    and the never-exit value are attributes, so NumPy and graph forms share
    them.

    Attributes:
        name: the criterion's name.
        rule: one line saying when a sample exits.
        comparison: `">"`, `"<="` or `">="`: exit when `score <op> t`.
        integer: whether scores and thresholds are integers (otherwise
            the score is continuous: see `continuous`).
        per_exit: whether a threshold per exit is meaningful.
        default: the default threshold of exports and runners.
        min_exits: the fewest exits a model needs for the rule to mean
            something (patience compares consecutive exits: 2).
        quantizable: whether `graph_score` survives full-integer (int8)
            LiteRT conversion (entropy's does not: the converter cannot
            quantise its select, so `export_litert` refuses it).
        threshold_label: how plots name the threshold axis
            (`"<name> threshold"` unless a subclass says otherwise).

    Example:

    >>> class Margin(Criterion):
    ...     name = "top2_margin"
    ...     rule = "exit when top-1 minus top-2 probability is > threshold"
    ...     comparison = ">"
    ...     default = 0.5
    ...     def never_exit(self, num_exits):
    ...         return 1.0
    ...     def scores(self, probs):
    ...         top = np.sort(np.asarray(probs, np.float32), axis=-1)
    ...         return top[..., -1] - top[..., -2]
    ...     def graph_score(self, probs, index, carry, precision="float64"):
    ...         import tensorflow as tf
    ...         top = tf.math.top_k(tf.cast(probs, tf.float32), k=2).values
    ...         return top[:, 0] - top[:, 1], carry
    >>> margin = register(Margin())
    >>> first_exit(np.array([[[0.6, 0.4]], [[0.9, 0.1]]]), margin,
    ...            0.5).tolist()
    [1]
    >>> unregister("top2_margin")
    """

    name = None
    rule = None
    comparison = None
    integer = False
    per_exit = True
    default = None
    min_exits = 1
    quantizable = True

    @property
    def threshold_label(self):
        """How plots name the threshold axis."""
        return f"{self.name} threshold"

    @property
    def continuous(self):
        """Whether the score is a real number that ranks samples by
        confidence: calibration (`keras_eexit.inference`) places
        thresholds between samples' scores only for such criteria."""
        return not self.integer

    @property
    def higher_is_confident(self):
        """Whether a higher score is more confident (`>` or `>=` exits):
        then a larger threshold is more conservative."""
        return self.comparison != "<="

    def threshold_range(self, num_exits):
        """`(low, high)`: the closed range of meaningful thresholds."""
        return (0.0, 1.0)

    def never_exit(self, num_exits):
        """A threshold at which no internal exit accepts any sample."""
        raise NotImplementedError

    def eager_threshold(self, num_exits):
        """The most eager threshold of the range (the most samples exit):
        its low end when a higher score is confident, else its high end
        (max-softmax 0, entropy 1, patience 0, static 1)."""
        low, high = self.threshold_range(num_exits)
        return low if self.higher_is_confident else high

    def sweep_values(self, count, num_exits):
        """The thresholds of a `count`-point sweep, in ascending order
        (`conservative_order` walks them from eager to conservative)."""
        return reference_grid(count)

    def conservative_order(self, thresholds):
        """Indices of `thresholds` from the most eager to the most
        conservative (samples leave later along it): ascending when a
        higher score is confident, descending otherwise (a larger entropy
        threshold lets more samples out early)."""
        keys = np.asarray(thresholds, dtype=np.float64)
        if not self.higher_is_confident:
            keys = -keys
        return np.argsort(keys, kind="stable")

    def check_exits(self, num_exits):
        """Raises `ValueError` when a model of `num_exits` exits has too
        few for this criterion (`min_exits`)."""
        if num_exits < self.min_exits:
            raise ValueError(
                f"criterion={self.name!r} needs at least {self.min_exits} "
                f"exits ({self.rule}); the outputs have {num_exits}.")

    # ------------------------------------------------------------ NumPy
    def scores(self, probs):
        """Scores of every exit: `(K, ..., C)` probabilities -> `(K, ...)`."""
        raise NotImplementedError

    def accepts(self, scores, thresholds):
        """Whether each score lets its sample leave (float32 comparison).

        Args:
            scores: array of scores (from `scores`).
            thresholds: thresholds broadcastable against `scores`.

        Returns:
            A boolean array.
        """
        scores = np.asarray(scores)
        thresholds = np.asarray(thresholds, dtype=np.float32)
        if scores.dtype.kind == "f":
            scores = scores.astype(np.float32)
        if self.comparison == ">":
            return scores > thresholds
        if self.comparison == "<=":
            return scores <= thresholds
        return scores >= thresholds

    # -------------------------------------------------------- TensorFlow
    def initial_carry(self, batch_size):
        """Per-sample values a criterion carries from exit to exit."""
        return ()

    def graph_score(self, probs, index, carry, precision="float64"):
        """TensorFlow form of `scores` for exit `index` of a batch.

        Args:
            probs: `(batch, C)` float32 probabilities of exit `index`.
            index: the exit's 0-based position (a Python int).
            carry: what `initial_carry` / the previous exit returned.
            precision: `"float64"` (TensorFlow graphs: entropy identical to
                the NumPy form) or `"float32"` (LiteRT built-in kernels).

        Returns:
            `(score, carry)`: `(batch,)` scores and the carry for the next
            exit.
        """
        raise NotImplementedError

    def graph_accepts(self, score, threshold):
        """TensorFlow form of `accepts` for scores of `graph_score`.

        Float scores are compared on their IEEE-754 bit patterns read as
        int32 (`tf.bitcast`, monotonic for non-negative floats; `-0.0` is
        taken as `+0.0`, NaN never exits). An int8 converter cannot
        quantise a bitcast, so a run-time threshold stays an exact float32
        even in int8 LiteRT models.

        Args:
            score: `(batch,)` scores.
            threshold: a float32 scalar (or `(batch,)`) tensor.

        Returns:
            A `(batch,)` boolean tensor.
        """
        import tensorflow as tf

        if score.dtype.is_integer:
            score = tf.cast(score, tf.float32)  # small integers: exact
        bits = tf.maximum(tf.bitcast(score, tf.int32), 0)
        t_bits = tf.bitcast(tf.cast(threshold, tf.float32), tf.int32)
        # -0.0 (the only pattern equal to INT32_MIN) compares as +0.0.
        t_bits = tf.where(tf.equal(t_bits, _NEGATIVE_ZERO_BITS),
                          tf.zeros_like(t_bits), t_bits)
        if self.comparison == ">":
            return (bits > t_bits) & (bits <= _INF_BITS)
        if self.comparison == "<=":
            return bits <= t_bits
        # ">=": integer scores (>= 0); a negative threshold accepts all.
        return (bits >= t_bits) | (t_bits < 0)

    def __repr__(self):
        return f"<criterion {self.name!r}: {self.rule}>"


class MaxSoftmax(Criterion):
    """Exit when the top class probability is strictly above the threshold.

    The strict `>` of Kubaty et al.'s `eval.py`: threshold 0 sends every
    sample out at exit 1, threshold 1 sends every sample to the last exit.
    """

    name = "max_softmax"
    rule = "exit when the top probability is > threshold"
    comparison = ">"
    default = 0.9
    threshold_label = "max-softmax threshold"

    def never_exit(self, num_exits):
        return 1.0

    def scores(self, probs):
        return _float32(probs).max(axis=-1)

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        return tf.reduce_max(tf.cast(probs, tf.float32), axis=-1), carry


class Entropy(Criterion):
    """Exit when the normalised entropy `H(p) / log C` is at most the
    threshold (low entropy = confident; see the module notes for the
    direction)."""

    name = "entropy"
    rule = "exit when the normalised entropy is <= threshold"
    comparison = "<="
    default = 0.1
    threshold_label = "normalised-entropy threshold"
    quantizable = False

    def never_exit(self, num_exits):
        return -1.0

    def sweep_values(self, count, num_exits):
        return reference_grid(count)

    def scores(self, probs):
        p = _float32(probs).astype(np.float64)
        terms = p * np.log(np.where(p > 0, p, 1.0))
        entropy = -terms.sum(axis=-1) / math.log(p.shape[-1])
        return entropy.astype(np.float32)

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        dtype = tf.float64 if precision == "float64" else tf.float32
        p = tf.cast(probs, dtype)
        terms = p * tf.math.log(tf.where(p > 0, p, tf.ones_like(p)))
        log_c = tf.constant(math.log(int(probs.shape[-1])), dtype)
        entropy = -tf.reduce_sum(terms, axis=-1) / log_c
        return tf.cast(entropy, tf.float32), carry


class Patience(Criterion):
    """PABEE (Zhou et al. 2020): exit once the prediction has stayed the
    same over `t + 1` consecutive exits (the reference's counter)."""

    name = "patience"
    rule = ("exit when the prediction equals those of the previous "
            "`threshold` exits")
    comparison = ">="
    integer = True
    default = 1
    min_exits = 2
    threshold_label = "patience (exits)"

    def threshold_range(self, num_exits):
        return (0, num_exits - 1)

    def never_exit(self, num_exits):
        return num_exits - 1

    def sweep_values(self, count, num_exits):
        return np.arange(num_exits)

    def scores(self, probs):
        predictions = _float32(probs).argmax(-1)
        runs = np.zeros(predictions.shape, dtype=np.int32)
        for k in range(1, len(predictions)):
            same = predictions[k] == predictions[k - 1]
            runs[k] = np.where(same, runs[k - 1] + 1, 0)
        return runs

    def initial_carry(self, batch_size):
        import tensorflow as tf

        return (tf.fill([batch_size], tf.constant(-1, tf.int32)),
                tf.zeros([batch_size], tf.int32))

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        previous, run = carry
        prediction = tf.cast(tf.argmax(probs, axis=-1), tf.int32)
        run = tf.where(tf.equal(prediction, previous), run + 1,
                       tf.zeros_like(run))
        return run, (prediction, run)


class Static(Criterion):
    """Every sample leaves at the exit whose NUMBER (1..K) is the
    threshold."""

    name = "static"
    rule = "exit at exit number `threshold` (1..K)"
    comparison = ">="
    integer = True
    per_exit = False
    default = 1
    threshold_label = "static exit number"

    def threshold_range(self, num_exits):
        return (1, num_exits)

    def never_exit(self, num_exits):
        return num_exits

    def sweep_values(self, count, num_exits):
        return np.arange(1, num_exits + 1)

    def scores(self, probs):
        probs = np.asarray(probs)
        shape = (probs.shape[0],) + (1,) * (probs.ndim - 2)
        numbers_ = np.arange(1, probs.shape[0] + 1, dtype=np.int32)
        return np.broadcast_to(numbers_.reshape(shape), probs.shape[:-1])

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        batch = tf.shape(probs)[0]
        return tf.fill([batch], tf.constant(index + 1, tf.int32)), carry


CRITERIA = {c.name: c for c in (MaxSoftmax(), Entropy(), Patience(),
                                Static())}
"""Every exit criterion by name (`register` adds one)."""

DEFAULT = "max_softmax"
"""The criterion of every decision rule that names none."""

BUILT_IN = tuple(CRITERIA)
"""The names of the criteria defined in this module (never unregistered)."""


def register(criterion):
    """Adds a criterion to `CRITERIA`, so every consumer finds it by name.

    A LiteRT export or a saved `ExitPolicy` records the criterion's name:
    register it again before loading them in another process.

    Args:
        criterion: a `Criterion` instance whose `name` is not taken.

    Returns:
        `criterion`.

    Raises:
        ValueError: for something else than a `Criterion`, or a name that
            is already registered.

    Example:

    ```python
    register(Margin())  # a Criterion subclass
    sweep(outputs, criterion="top2_margin")
    ```
    """
    if not isinstance(criterion, Criterion) or not isinstance(
            criterion.name, str) or not criterion.name:
        raise invalid_value("criterion", "a Criterion instance with a name",
                            criterion)
    if criterion.comparison not in (">", "<=", ">="):
        raise invalid_value(
            "criterion", "a Criterion whose `comparison` is '>', '<=' or "
            "'>='", criterion.comparison)
    if criterion.name in CRITERIA:
        raise invalid_value("criterion", "a name not yet registered "
                            f"(registered: {', '.join(CRITERIA)})",
                            criterion.name)
    CRITERIA[criterion.name] = criterion
    return criterion


def unregister(name):
    """Removes a criterion added by `register` (built-in ones stay).

    Args:
        name: the criterion's name.

    Raises:
        ValueError: for a built-in or unknown name.
    """
    if name in BUILT_IN or name not in CRITERIA:
        added = [n for n in CRITERIA if n not in BUILT_IN]
        raise invalid_value(
            "name", f"a registered criterion that is not built in "
            f"({', '.join(added) or 'none registered'})", name)
    del CRITERIA[name]


def get(criterion):
    """The `Criterion` named `criterion` (or `criterion` itself).

    Raises:
        ValueError: for an unknown name (listing the valid ones).
    """
    if isinstance(criterion, Criterion):
        return criterion
    return CRITERIA[check_choice("criterion", criterion, CRITERIA)]


def continuous_names():
    """Names of the registered criteria with a continuous score (those
    calibration can rank samples by)."""
    return tuple(n for n, c in CRITERIA.items() if c.continuous)


def describe_thresholds(criterion, num_exits, kind_suffix=""):
    """What valid thresholds of `criterion` are, in words (for messages).

    Args:
        criterion: a `Criterion`.
        num_exits: the model's number of exits.
        kind_suffix: words after "numbers"/"integers" (e.g. " (one per
            exit)").

    Returns:
        A phrase such as "numbers between 0 and 1 for criterion ...".
    """
    low, high = criterion.threshold_range(num_exits)
    kind = "integers" if criterion.integer else "numbers"
    never = criterion.never_exit(num_exits)
    extra = "" if low <= never <= high else f"; {never:g}: never exit"
    return (f"{kind}{kind_suffix} between {low:g} and {high:g} for "
            f"criterion {criterion.name!r} ({criterion.rule}{extra})")


def _valid(criterion, values, num_exits):
    low, high = criterion.threshold_range(num_exits)
    never = criterion.never_exit(num_exits)
    ok = np.isfinite(values) & (((values >= low) & (values <= high))
                                | (values == never))
    if criterion.integer:
        ok &= values == np.round(values)
    return bool(np.all(ok))


def check_thresholds(criterion, thresholds, num_exits, argument="thresholds"):
    """One decision rule's thresholds, one per exit, checked.

    Args:
        criterion: a name or `Criterion`.
        thresholds: a number (every exit) or a sequence of `num_exits`
            numbers (the last exit's is never used: that exit takes every
            remaining sample).
        num_exits: the model's number of exits.
        argument: the argument name for messages.

    Returns:
        A float32 array of shape `(num_exits,)`.

    Raises:
        ValueError: naming the criterion, its rule and its range, or the
            expected length.
    """
    criterion = get(criterion)
    criterion.check_exits(num_exits)
    if isinstance(thresholds, (bool, str, bytes)) or thresholds is None:
        raise invalid_value(argument, describe_thresholds(criterion, num_exits),
                            thresholds)
    try:
        values = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid_value(argument, describe_thresholds(criterion, num_exits),
                            thresholds) from None
    if values.ndim == 1 and not criterion.per_exit:
        raise invalid_value(
            argument, f"one exit number for criterion {criterion.name!r} "
            "(a per-exit list has no meaning for a static exit)",
            thresholds)
    if values.ndim > 1 or (values.ndim == 1 and len(values) != num_exits):
        raise invalid_value(
            argument, f"a number or a list of {num_exits} numbers (one per "
            f"exit) for a model with {num_exits} exits",
            thresholds)
    if not _valid(criterion, values, num_exits):
        raise invalid_value(argument, describe_thresholds(criterion, num_exits),
                            thresholds)
    return (np.broadcast_to(values, (num_exits,)) + 0.0).astype(np.float32)


def check_sweep_thresholds(criterion, thresholds, num_exits):
    """The rows of a sweep: `(T,)` scalars or `(T, K)` per-exit rows.

    Args:
        criterion: a name or `Criterion`.
        thresholds: a count (the criterion's `sweep_values`), a 1-D array
            of thresholds (one per sweep point, every exit), or a 2-D array
            `(points, num_exits)` of per-exit thresholds.
        num_exits: the number of exits.

    Returns:
        `(values, per_exit)`: the float32 array as given (1-D or 2-D) and
        whether it holds per-exit rows.
    """
    criterion = get(criterion)
    criterion.check_exits(num_exits)
    if isinstance(thresholds, numbers.Integral) and not isinstance(
            thresholds, bool):
        if thresholds < 2 and not criterion.integer:
            raise invalid_value("thresholds", "a count >= 2 or an array",
                                thresholds)
        return criterion.sweep_values(int(thresholds), num_exits).astype(
            np.float32), False
    try:
        values = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim == 0:
        values = values.reshape(1)
    per_exit = values.ndim == 2
    if values.size == 0 or values.ndim > 2 or (
            per_exit and values.shape[1] != num_exits):
        raise invalid_value(
            "thresholds", f"a count, an array of thresholds or an array "
            f"(points, {num_exits}) of per-exit thresholds", thresholds)
    if per_exit and not criterion.per_exit:
        raise invalid_value(
            "thresholds", f"exit numbers (a 1-D array) for criterion "
            f"{criterion.name!r}", thresholds)
    if not _valid(criterion, values, num_exits):
        raise invalid_value(
            "thresholds", "a count, or " + describe_thresholds(criterion, num_exits),
            thresholds)
    return values.astype(np.float32), per_exit


def exit_indices(probs, criterion, thresholds):
    """The exit each sample leaves at, for every row of thresholds.

    Args:
        probs: `(K, N, C)` probabilities.
        criterion: a name or `Criterion`.
        thresholds: `(T,)` (every exit) or `(T, K)` (per exit) thresholds,
            already checked.

    Returns:
        `(T, N)` int array of 0-based exit indices.
    """
    criterion = get(criterion)
    num_exits = np.shape(probs)[0]
    thresholds = np.asarray(thresholds, dtype=np.float32)
    if thresholds.ndim == 1:
        thresholds = np.repeat(thresholds[:, None], num_exits, axis=1)
    scores = criterion.scores(probs)[None]  # (1, K, N)
    accept = criterion.accepts(scores, thresholds[:, :, None])
    accept[:, num_exits - 1, :] = True
    return accept.argmax(axis=1)


def first_exit(probs, criterion, thresholds):
    """The exit each sample takes under one decision rule.

    Args:
        probs: `(K, N, C)` probabilities of every exit.
        criterion: a name or `Criterion`.
        thresholds: a number or one per exit.

    Returns:
        Int array `(N,)` of 0-based exit indices.

    Example:

    >>> p = np.array([[[0.6, 0.4]], [[0.9, 0.1]]])
    >>> first_exit(p, "max_softmax", 0.5).tolist()
    [0]
    """
    probs = np.asarray(probs)
    values = check_thresholds(criterion, thresholds, probs.shape[0])
    return exit_indices(probs, criterion, values[None])[0]
