"""Input checks inside exported early-exit graphs (SavedModel, LiteRT).

Clients of an exported file may never import keras_eexit, so the checks
that matter are in the graph itself. Three things make an early-exit call
meaningless: thresholds that are not one valid number per exit, a sample
with NaN or Inf, and an input of the wrong shape (for LiteRT's `one_row`
signature: any batch but one row).

* SavedModel graphs reject such a call: `tf.debugging.Assert` raises
  `InvalidArgumentError` with a message naming the problem
  (`assert_valid_call`).
* LiteRT has no assert among its built-in ops, so its graphs flag instead
  (`flag_invalid`): an invalid row gets exit index `INVALID_EXIT` (-1) and
  NaN probabilities; an invalid call flags every row.

Every check reads the IEEE-754 bit patterns of the float32 inputs
(`tf.bitcast` to int32, as `Criterion.graph_accepts` does), so an int8
converter cannot quantise a check away: a NaN, an Inf or a threshold of 1.5
stays what it is.

Example:

```python
checks = InputChecks("max_softmax", num_exits=3, input_shape=(8, 8, 1),
                     dtype="float32")
rows, safe = checks.flags(x, thresholds)   # inside a tf.function
```
"""

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.inference.compaction import EXIT_INDEX
from keras_eexit.inference.compaction import PROBABILITIES

INVALID_EXIT = -1
"""Exit index of a row that a LiteRT early-exit file flags as invalid."""

_INT32_MIN = -(2**31)
_MAX_FINITE_KEY = int(np.float32(np.finfo(np.float32).max).view(np.int32))
_NAN_BITS = 0x7FC00000  # a quiet float32 NaN read as int32


def float_key(value):
    """The int32 ordering key of a float32 constant (see `order_keys`)."""
    bits = int(np.float32(value).view(np.int32))
    return _INT32_MIN - bits if bits < 0 else bits


def order_keys(values):
    """Int32 keys that order like the float32 `values` (a tensor).

    Non-negative floats keep their bit pattern; negative ones map below
    zero in reverse (`-0.0` to `0`, like `+0.0`). Finite values have keys
    within `±_MAX_FINITE_KEY`; infinities and NaNs lie outside.
    """
    import tensorflow as tf

    bits = tf.bitcast(tf.cast(values, tf.float32), tf.int32)
    return tf.where(bits < 0, tf.constant(_INT32_MIN, tf.int32) - bits,
                    bits)


class InputChecks:
    """The checks of one exported early-exit graph.

    Args:
        criterion: a criterion name or `keras_eexit.criteria.Criterion`.
        num_exits: the model's number of exits.
        input_shape: the input shape without the batch axis.
        dtype: the input dtype (integer inputs, such as token ids, have no
            NaN to check).
    """

    def __init__(self, criterion, num_exits, input_shape, dtype):
        self.criterion = criteria_lib.get(criterion)
        self.num_exits = int(num_exits)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.floating = np.issubdtype(np.dtype(dtype), np.floating)

    # -------------------------------------------------------- messages
    def thresholds_expected(self):
        """What a valid `thresholds` input is, in words."""
        k = self.num_exits
        return f"{k} float32 " + criteria_lib.describe_thresholds(
            self.criterion, k, kind_suffix=" (one per exit)")

    def input_expected(self, one_row=False):
        """What a valid input is, in words."""
        batch = "1" if one_row else "batch"
        shape = ", ".join(map(str, (batch,) + self.input_shape))
        finite = ", finite (no NaN or Inf)" if self.floating else ""
        return f"shape ({shape}){finite}"

    # ---------------------------------------------------------- checks
    def finite_rows(self, x):
        """`(batch,)` bool: whether each row of `x` is all finite."""
        import tensorflow as tf

        batch = tf.shape(x)[0]
        if not self.floating:
            return tf.fill([batch], True)
        keys = order_keys(x)
        finite = (keys >= -_MAX_FINITE_KEY) & (keys <= _MAX_FINITE_KEY)
        return tf.reduce_all(tf.reshape(finite, [batch, -1]), axis=1)

    def shape_ok(self, x):
        """Scalar bool: whether `x` is `(batch,) + input_shape`."""
        import tensorflow as tf

        dims = tf.shape(x)[1:]
        want = tf.constant(self.input_shape, tf.int32)
        n = len(self.input_shape)
        same_rank = tf.equal(tf.size(dims), n)
        # (Concatenating first: never a broadcast error on another rank.)
        head = tf.concat([dims, want], 0)[:n]
        return same_rank & tf.reduce_all(tf.equal(head, want))

    def thresholds_ok(self, thresholds):
        """`(ok, safe)`: whether `thresholds` is valid (scalar bool), and
        float32 `(num_exits,)` thresholds always safe to run with (the
        given ones when valid, else the most eager: the fewest stages).
        """
        import tensorflow as tf

        c, k = self.criterion, self.num_exits
        keys = order_keys(thresholds)
        flat = tf.reshape(keys, [-1])
        ok = tf.equal(tf.size(tf.shape(keys)), 1) & tf.equal(tf.size(flat),
                                                             k)
        eager = float_key(c.eager_threshold(k))
        flat = tf.concat([flat, tf.fill([k], eager)], 0)[:k]
        low, high = c.threshold_range(k)
        never = float_key(c.never_exit(k))
        if c.integer:
            allowed = sorted({float_key(v) for v in range(int(low),
                                                          int(high) + 1)}
                             | {never})
            valid = tf.reduce_any(tf.equal(
                flat[:, None], tf.constant(allowed, tf.int32)[None]), axis=1)
        else:
            valid = ((flat >= float_key(low)) & (flat <= float_key(high))
                     | tf.equal(flat, never))
        ok = ok & tf.reduce_all(valid)
        safe = tf.where(ok, flat, tf.fill([k], eager))
        # Back from keys to float32 bit patterns (the inverse map).
        bits = tf.where(safe < 0, tf.constant(_INT32_MIN, tf.int32) - safe,
                        safe)
        return ok, tf.bitcast(bits, tf.float32)

    # ------------------------------------------------------- SavedModel
    def assert_valid_call(self, x, thresholds=None):
        """Asserts (SavedModel graphs) that a call is valid.

        Args:
            x: the batch of inputs.
            thresholds: the per-exit thresholds input, if the signature
                takes one.

        Returns:
            `(x, thresholds)` with the assertions as control dependencies
            (the thresholds as float32 `(num_exits,)`, or `None`).

        Raises:
            InvalidArgumentError: when the graph runs on an invalid call:
                "Invalid value received for input ..." naming the input,
                what it must be and what it holds.
        """
        import tensorflow as tf

        asserts = [tf.debugging.Assert(self.shape_ok(x), [
            "Invalid value received for input `inputs`. Expected "
            f"{self.input_expected()}. Received: inputs with shape",
            tf.shape(x)])]
        with tf.control_dependencies(asserts):
            rows = self.finite_rows(x)
        asserts.append(tf.debugging.Assert(tf.reduce_all(rows), [
            "Invalid value received for input `inputs`. Expected finite "
            "numbers (no NaN or Inf). Received: NaN or Inf in rows",
            tf.reshape(tf.where(tf.logical_not(rows)), [-1])],
            summarize=10))
        if thresholds is not None:
            ok, safe = self.thresholds_ok(thresholds)
            asserts.append(tf.debugging.Assert(ok, [
                "Invalid value received for input `thresholds`. Expected "
                f"{self.thresholds_expected()}. Received: thresholds =",
                thresholds], summarize=20))
            thresholds = safe
        with tf.control_dependencies(asserts):
            x = tf.identity(x)
            if thresholds is not None:
                thresholds = tf.identity(thresholds)
        return x, thresholds

    # ----------------------------------------------------------- LiteRT
    def flags(self, x, thresholds, one_row=False):
        """Validity flags (LiteRT graphs, where asserts are unavailable).

        Args:
            x: the batch of inputs.
            thresholds: the per-exit thresholds input.
            one_row: whether the signature takes exactly one row.

        Returns:
            `(rows, thresholds)`: `(batch,)` bool, whether each row is
            valid (finite, in a valid call), and float32 `(num_exits,)`
            thresholds safe to run with.
        """
        import tensorflow as tf

        ok, safe = self.thresholds_ok(thresholds)
        ok = ok & self.shape_ok(x)
        if one_row:
            ok = ok & tf.equal(tf.shape(x)[0], 1)
        return self.finite_rows(x) & ok, safe


def flag_invalid(outputs, rows):
    """Marks the invalid rows of an early-exit graph's outputs.

    Args:
        outputs: the dict of `EarlyExitGraph`: `probabilities` `(batch, C)`
            and `exit_index` `(batch,)`.
        rows: `(batch,)` bool, whether each row is valid.

    Returns:
        The same dict with exit index `INVALID_EXIT` and NaN probabilities
        on the invalid rows (set through bit patterns: an int8 converter
        cannot quantise the NaN away).
    """
    import tensorflow as tf

    index = tf.where(rows, outputs[EXIT_INDEX],
                     tf.constant(INVALID_EXIT, tf.int32))
    bits = tf.bitcast(outputs[PROBABILITIES], tf.int32)
    bits = tf.where(rows[:, None], bits,
                    tf.fill(tf.shape(bits), tf.constant(_NAN_BITS, tf.int32)))
    return {PROBABILITIES: tf.bitcast(bits, tf.float32), EXIT_INDEX: index}
