"""Two toy criteria registered by the tests, one per direction.

The margin between the two top probabilities (`>`: a higher score is
confident) and "least confidence", `1 - max p` (`<=`: a lower score is
confident). TensorFlow is imported by their graph forms only, so the JAX
tests register them without it.
"""

import numpy as np

from keras_eexit import criteria


class TopTwoMargin(criteria.Criterion):
    """Exit when the top probability exceeds the second by more than t."""

    name = "test_top2_margin"
    rule = "exit when top-1 minus top-2 probability is > threshold"
    comparison = ">"
    default = 0.5
    threshold_label = "top-2 margin threshold"

    def never_exit(self, num_exits):
        return 1.0

    def scores(self, probs):
        top = np.sort(np.asarray(probs).astype(np.float32), axis=-1)
        return top[..., -1] - top[..., -2]

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        top = tf.math.top_k(tf.cast(probs, tf.float32), k=2).values
        return top[:, 0] - top[:, 1], carry


class LeastConfidence(criteria.Criterion):
    """Exit when `1 - max p` is at most t (a lower score is confident)."""

    name = "test_least_confidence"
    rule = "exit when 1 - top probability is <= threshold"
    comparison = "<="
    default = 0.1

    def never_exit(self, num_exits):
        return -1.0

    def scores(self, probs):
        top = np.asarray(probs).astype(np.float32).max(axis=-1)
        return np.float32(1.0) - top

    def graph_score(self, probs, index, carry, precision="float64"):
        import tensorflow as tf

        top = tf.reduce_max(tf.cast(probs, tf.float32), axis=-1)
        return tf.constant(1.0, tf.float32) - top, carry
