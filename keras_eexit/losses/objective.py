"""Objectives: the training loss of a multi-exit model as a sum of terms."""

from keras import ops

from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy


def _replica_fraction():
    """1 / number of replicas under a `tf.distribute` strategy, else 1."""
    import tensorflow as tf

    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


class Objective:
    """A sum of loss terms over the exit outputs.

    Each term is a callable `term(model, x, y, y_pred, sample_weight)`
    returning `(scalar, per_exit)`, where `per_exit` maps exit names to that
    exit's part of the term. Every term has a `name`; the cross-entropy
    term's per-exit values are logged as `exit_k_loss` (unweighted), every
    other term as `<name>_loss` (its weighted total). The total is divided by
    the number of replicas under a distribution strategy, so that gradients
    summed across replicas are those of the global batch.

    Args:
        terms: a list of terms with distinct names.

    Example:

    ```python
    model.set_objective(Objective([ExitCrossEntropy(),
                                   Distillation(students=[0, 1])]))
    ```
    """

    def __init__(self, terms):
        self.terms = list(terms)
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Objective terms need distinct names: {names}.")

    @classmethod
    def cross_entropy(cls, loss=None):
        """The joint objective: weighted cross-entropy over all exits."""
        return cls([ExitCrossEntropy(loss)])

    @property
    def extra_names(self):
        """Names of the terms other than the per-exit cross-entropy."""
        return [t.name for t in self.terms if t.name != ExitCrossEntropy.name]

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(total, per-exit cross-entropies, {term name: value})`.

        The total is scaled for distribution; the logged values are the
        unscaled batch means, per-exit ones in exit order (zero when no
        cross-entropy term is present).
        """
        total = 0.0
        per_exit = [0.0] * model.num_exits
        extras = {}
        for term in self.terms:
            value, exits = term(model, x, y, y_pred, sample_weight)
            total = total + value
            if term.name == ExitCrossEntropy.name:
                per_exit = [exits.get(n, 0.0) for n in model.exit_names]
            else:
                extras[term.name] = value
        total = ops.convert_to_tensor(total) * _replica_fraction()
        return total, per_exit, extras
