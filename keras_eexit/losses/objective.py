"""Objectives: the training loss of a multi-exit model as a sum of terms."""

from keras import ops

from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy


def _replica_fraction():
    """1 / number of replicas under a `tf.distribute` strategy, else 1."""
    import tensorflow as tf

    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


class Objective:
    """A sum of loss terms over the exit outputs.

    Each term is a callable `term(model, y, y_pred, sample_weight)` returning
    `(scalar, per_exit)` where `per_exit` maps exit names to that exit's
    unweighted loss (or is empty). The objective adds the scalars and sums
    the per-exit values by exit for logging. The total is divided by the
    number of replicas under a distribution strategy, so gradients summed
    across replicas are those of the global batch.

    Args:
        terms: a list of terms.

    Example:

    ```python
    model.objective = Objective([ExitCrossEntropy()])
    ```
    """

    def __init__(self, terms):
        self.terms = list(terms)

    @classmethod
    def cross_entropy(cls, loss=None):
        """The joint objective: weighted cross-entropy over all exits."""
        return cls([ExitCrossEntropy(loss)])

    def __call__(self, model, y, y_pred, sample_weight=None):
        """Returns `(total loss scaled for distribution, per-exit losses)`.

        Per-exit losses are the unscaled batch means, in exit order.
        """
        total = 0.0
        per_exit = {name: 0.0 for name in model.exit_names}
        for term in self.terms:
            value, exits = term(model, y, y_pred, sample_weight)
            total = total + value
            for name, loss in exits.items():
                per_exit[name] = per_exit[name] + loss
        total = ops.convert_to_tensor(total) * _replica_fraction()
        return total, [per_exit[name] for name in model.exit_names]
