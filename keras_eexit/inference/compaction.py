"""Batched early exit by compaction: the TensorFlow graph, built once.

After stage k the rows its exit accepts are done; every tensor of the state
(a tuple for MSDNet, RANet, text models), the criterion's carry and the
rows' original positions are gathered down to the rows still running, so
stage k + 1 computes only those. The graph is plain TensorFlow, traced by
`predict_early_exit` (Keras layers), `export_saved_model` (a SavedModel
signature) and `export_litert(mode="early_exit")` (frozen layers, LiteRT
built-in ops).

At batch 1 there is nothing to compact: `EarlyExitGraph.one_row` is the
same decisions as a chain of nested `tf.cond`s on the row's decision, with
no gather, scatter or data-dependent shape (the LiteRT file's batch-1
signature: static shapes, so the runtime prepares each branch once).
"""

import keras

from keras_eexit import chain
from keras_eexit import criteria as criteria_lib

PROBABILITIES = "probabilities"
EXIT_INDEX = "exit_index"


def _frozen_call(layer, inputs, training):
    return layer(inputs, training=training)


def _gather_rows(structure, rows):
    import tensorflow as tf

    return keras.tree.map_structure(lambda t: tf.gather(t, rows), structure)


class EarlyExitGraph:
    """Stage-by-stage early exit of a batch, with compaction.

    Args:
        model: a built `MultiExitModel`.
        criterion: a criterion name or `keras_eexit.criteria.Criterion`.
        call: optional `call(layer, inputs, training)` running a segment or
            head (export passes frozen copies; see `chain.run_stage`).
        precision: `"float64"` or `"float32"` (LiteRT) for the scores (see
            `Criterion.graph_score`).
        observe: optional `observe(index, num_rows)` called in the graph
            with the number of rows stage `index` receives (tests count
            them).
    """

    def __init__(self, model, criterion="max_softmax", call=None,
                 precision="float64", observe=None):
        self.model = model
        self.criterion = criteria_lib.get(criterion)
        self.call = call or _frozen_call
        self.precision = precision
        self.observe = observe
        self.num_exits = model.num_exits

    def class_probabilities(self, index, logits, temperatures=None):
        """Float32 softmax over the classes of exit `index`'s logits."""
        import tensorflow as tf

        logits = chain.class_logits(self.model.heads[index], logits)
        logits = tf.cast(logits, tf.float32)
        if temperatures is not None:
            logits = logits / temperatures[index]
        return tf.nn.softmax(logits, axis=-1)

    def __call__(self, x, thresholds, temperatures=None):
        """Runs the chain on a batch `x`.

        Args:
            x: a batch of inputs.
            thresholds: float32 `(num_exits,)` per-exit thresholds.
            temperatures: optional float32 `(num_exits,)` temperatures
                (logits are divided by them before the softmax).

        Returns:
            A dict: `probabilities` `(batch, C)` float32 of the exit each
            sample took, `exit_index` `(batch,)` int32 (0-based).
        """
        import tensorflow as tf

        batch = tf.shape(x)[0]
        carry = self.criterion.initial_carry(batch)
        positions, probs, index = self._rest(0, x, carry, tf.range(batch),
                                             thresholds, temperatures)
        where = tf.expand_dims(positions, -1)
        probs = tf.scatter_nd(where, probs,
                              tf.stack([batch, tf.shape(probs)[-1]]))
        index = tf.scatter_nd(where, index, tf.reshape(batch, [1]))
        return {PROBABILITIES: probs, EXIT_INDEX: index}

    def one_row(self, x, thresholds, temperatures=None):
        """The same decisions for a batch of exactly one row, no compaction.

        Stage `k + 1` runs inside a `tf.cond` on the row's decision at
        exit `k`: no gather, scatter or shape that depends on the data.

        Args:
            x: a batch of one input, `(1,) + input_shape`.
            thresholds, temperatures: as `__call__`.

        Returns:
            The dict of `__call__`: `probabilities` `(1, C)` and
            `exit_index` `(1,)`.
        """
        probs, index = self._one_row(0, x, self.criterion.initial_carry(1),
                                     thresholds, temperatures)
        return {PROBABILITIES: probs, EXIT_INDEX: index}

    def _one_row(self, k, state, carry, thresholds, temperatures):
        """Stages `k..K-1` for a batch of one row: nested `tf.cond`s.

        Returns the row's probabilities `(1, C)` and exit index `(1,)`.
        """
        import tensorflow as tf

        if self.observe is not None:
            self.observe(k, tf.constant(1))
        state, logits = chain.run_stage(self.model, k, state,
                                        training=False, call=self.call)
        probs = self.class_probabilities(k, logits, temperatures)
        index = tf.fill([1], k)
        if k == self.num_exits - 1:
            return probs, index
        score, carry = self.criterion.graph_score(probs, k, carry,
                                                  self.precision)
        accept = self.criterion.graph_accepts(score, thresholds[k])[0]
        return tf.cond(
            accept, lambda: (tf.identity(probs), tf.identity(index)),
            lambda: self._one_row(k + 1, state, carry, thresholds,
                                  temperatures))

    def _rest(self, k, state, carry, positions, thresholds, temperatures):
        """Stages `k..K-1` for the rows `positions` that reach stage `k`.

        Returns the rows' positions, probabilities and exit indices in the
        order they finished. Stage `k + 1` runs inside a `tf.cond` taken
        only when some row remains (LiteRT `If`; zero-row batches never
        reach a kernel).
        """
        import tensorflow as tf

        if self.observe is not None:
            self.observe(k, tf.shape(positions)[0])
        state, logits = chain.run_stage(self.model, k, state,
                                        training=False, call=self.call)
        probs = self.class_probabilities(k, logits, temperatures)
        if k == self.num_exits - 1:
            return positions, probs, tf.fill(tf.shape(positions), k)
        score, carry = self.criterion.graph_score(probs, k, carry,
                                                  self.precision)
        accept = self.criterion.graph_accepts(score, thresholds[k])
        leave = tf.reshape(tf.where(accept), [-1])
        stay = tf.reshape(tf.where(tf.logical_not(accept)), [-1])
        num_classes = int(probs.shape[-1])
        # The branch below runs only when rows stay; when none does, its
        # (untaken) graph still sees one row, so that runtimes preparing
        # both branches of an `If` (LiteRT's XNNPACK) never get a
        # zero-row convolution.
        padded = tf.concat([stay, tf.zeros(
            [1 - tf.minimum(tf.size(stay), 1)], stay.dtype)], 0)

        def deeper():
            return self._rest(k + 1, _gather_rows(state, padded),
                              _gather_rows(carry, padded),
                              tf.gather(positions, padded), thresholds,
                              temperatures)

        def nobody():
            return (tf.zeros([0], tf.int32),
                    tf.zeros([0, num_classes], tf.float32),
                    tf.zeros([0], tf.int32))

        rest = tf.cond(tf.size(stay) > 0, deeper, nobody)
        return (tf.concat([tf.gather(positions, leave), rest[0]], 0),
                tf.concat([tf.gather(probs, leave), rest[1]], 0),
                tf.concat([tf.fill(tf.shape(leave), k), rest[2]], 0))
