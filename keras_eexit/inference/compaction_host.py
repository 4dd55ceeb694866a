"""Batched early exit with decisions on the host: JAX and PyTorch.

The counterpart of `compaction.py` (the TensorFlow graph), chosen by
`predict_early_exit` on the JAX and PyTorch backends. Each stage
(segment and head, `chain.run_stage`) runs on the rows still undecided;
between stages the host decides which rows exit and gathers the state of
the others (every tensor of a tuple state, the exit memory of heads that
read earlier exits) down to them.

* JAX: XLA compiles one program per input shape, so the continuing rows
  are gathered into a *bucket*: the next power of two at or above their
  number, the extra rows copies of the first continuing row whose
  results are dropped. Stage `k` is one `jax.jit` program per bucket
  size it meets, at most `log2(batch) + 1` of them; the gather is
  another small program per pair of sizes.
* PyTorch: eager, so the state is gathered to exactly the continuing
  rows (no padding) and each stage runs under `torch.no_grad`
  (`utils.compiled.compile_layers_call`).

Decisions use the criterion's NumPy form, the code
`evaluation.threshold_sweep` and `ExitPolicy` run: `Criterion.scores` on
the probabilities of the exits each row passed (temperatures applied as
`ExitPolicy.probabilities` does, `softmax(log p / T)`), then
`Criterion.accepts`. On the probabilities `evaluation.collect` computes,
the exits are therefore the sweep's own, for every criterion, registered
ones included (their `scores` must read exit `k` from exits `0..k` only,
as any early-exit rule does).

Example:

```python
runner = HostEarlyExit(model)
out = runner(x_batch, "entropy", np.full(3, 0.2, "float32"))
out["exit_index"]  # (batch,) int32
```
"""

import collections
import weakref

import keras
import numpy as np

from keras_eexit import chain
from keras_eexit import criteria as criteria_lib
from keras_eexit.inference.policy import scale_probabilities
from keras_eexit.utils.compiled import compile_layers_call

PROBABILITIES = "probabilities"
EXIT_INDEX = "exit_index"


def bucket_size(rows):
    """The bucket of `rows` rows: the smallest power of two >= `rows`.

    Args:
        rows: a number of rows, >= 1.

    Returns:
        An int.

    Example:

    >>> [bucket_size(n) for n in (1, 2, 3, 5, 64, 65)]
    [1, 2, 4, 8, 64, 128]
    """
    return 1 << (int(rows) - 1).bit_length()


def bucket_rows(rows):
    """Row indices `rows` padded to their bucket by repeating the first.

    Args:
        rows: a non-empty int array of row indices.

    Returns:
        An int32 array of length `bucket_size(len(rows))`.

    Example:

    >>> bucket_rows(np.array([4, 7, 9])).tolist()
    [4, 7, 9, 4]
    """
    pad = bucket_size(len(rows)) - len(rows)
    return np.concatenate([rows, np.repeat(rows[:1], pad)]).astype(np.int32)


def _gather(structure, rows):
    return keras.tree.map_structure(
        lambda t: keras.ops.take(t, rows, axis=0), structure)


class HostEarlyExit:
    """Stage-by-stage early exit of a batch, compacted between stages.

    Buckets (powers of two) on JAX, exact rows on PyTorch (see the
    module's docstring).

    The compiled stages do not depend on the decision rule: one runner
    serves every criterion, threshold and temperature.

    Args:
        model: a built `MultiExitModel` (held by a weak reference).
        observe: optional `observe(index, num_rows)` called on the host
            with the number of real rows stage `index` receives.

    Attributes:
        bucketed: whether rows are padded to buckets (JAX).
        traces: a `collections.Counter` of `(stage index, bucket size)`:
            how often each stage was traced (compiled) at each size (on
            PyTorch, eager: how often it ran at each size).
    """

    def __init__(self, model, observe=None):
        self.bucketed = keras.backend.backend() == "jax"
        self._model = weakref.ref(model)
        self.observe = observe
        self.num_exits = model.num_exits
        self.traces = collections.Counter()
        self._stages = [
            compile_layers_call(model, self._stage_function(k))
            for k in range(self.num_exits)]
        self._gather = _gather
        if self.bucketed:
            import jax

            self._gather = jax.jit(_gather)

    def _rows(self, rows):
        return bucket_rows(rows) if self.bucketed else rows.astype(np.int32)

    def _stage_function(self, index):
        def stage(state):
            model = self._model()
            rows = keras.tree.flatten(state)[0].shape[0]
            self.traces[(index, rows)] += 1  # runs when traced only
            state, logits = chain.run_stage(model, index, state,
                                            training=False)
            logits = chain.class_logits(model.heads[index], logits)
            return state, keras.ops.cast(logits, "float32")
        return stage

    def __call__(self, x, criterion, thresholds, temperatures=None):
        """Runs the chain on a batch `x`.

        Args:
            x: a NumPy batch of inputs, `(batch,) + input_shape`.
            criterion: a criterion name or `Criterion`.
            thresholds: float32 `(num_exits,)` per-exit thresholds.
            temperatures: optional float32 `(num_exits,)` temperatures.

        Returns:
            A dict of NumPy arrays: `probabilities` `(batch, C)` float32
            of the exit each sample took (temperature-scaled), and
            `exit_index` `(batch,)` int32 (0-based).
        """
        criterion = criteria_lib.get(criterion)
        batch = len(x)
        positions = np.arange(batch)
        state = np.asarray(x)[self._rows(positions)]
        seen = None  # (K, batch, C) probabilities of the exits passed
        probs_out = index_out = None
        for k in range(self.num_exits):
            if self.observe is not None:
                self.observe(k, len(positions))
            state, logits = self._stages[k](state)
            # The same softmax as `evaluation.collect`'s, then a bucket's
            # padding rows dropped.
            probs = keras.ops.convert_to_numpy(
                keras.ops.softmax(logits))[:len(positions)]
            if seen is None:
                seen = np.zeros((self.num_exits, batch, probs.shape[-1]),
                                np.float32)
                probs_out = np.zeros((batch, probs.shape[-1]), np.float32)
                index_out = np.zeros(batch, np.int32)
            seen[k, positions] = probs
            passed = seen[:k + 1, positions]
            if temperatures is not None:
                passed = scale_probabilities(passed, temperatures[:k + 1])
            if k == self.num_exits - 1:
                accept = np.ones(len(positions), bool)
            else:
                scores = criterion.scores(passed)[k]
                accept = criterion.accepts(scores, thresholds[k])
            probs_out[positions[accept]] = passed[k][accept]
            index_out[positions[accept]] = k
            stay = np.flatnonzero(~accept)
            if not stay.size:
                break
            state = self._gather(state, self._rows(stay))
            positions = positions[stay]
        return {PROBABILITIES: probs_out, EXIT_INDEX: index_out}
